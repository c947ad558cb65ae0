"""The pytest plugin (``atlassian_playbook.pytest_plugin``), run as a user would: an inner test
session through ``pytester`` that asks for the fixture, with a world file of its own.

Inner sessions run in a subprocess: in-process, pytester drops the modules a run imported, and
httpx (which imports httpcore lazily) was left mapping exceptions of a discarded httpcore, so a
later test elsewhere saw ``httpcore.ReadTimeout`` where ``httpx.ReadTimeout`` was due."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

README = Path(__file__).parents[1] / "README.md"
README_SECTION = "## Test your own integration against the emulator"

WORLD = """\
users:
  - account_id: 6a1b2c3d4e5f60718293a4b5
    name: Test Person
    email: test.person@example.com
    nickname: tester
sites:
  - name: {site}
    products: [jira]
    members: [tester]
apps:
  - name: My integration under test
    client_id: {client_id}
    owner: tester
    apis: [identity, jira]
    callback_urls: [http://127.0.0.1:9999/oauth/callback]
"""

# An inner test that runs the whole flow against the fixture's emulator, then records its
# ports; a second one records them and fails, to show the fixture stops on failure too.
SERVING_TESTS = """\
import base64, json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest


def record(emu):
    with open("ports.jsonl", "a") as out:
        out.write(json.dumps([urlsplit(emu.auth_base_url).port,
                              urlsplit(emu.api_base_url).port]) + "\\n")


@pytest.mark.atlassian_world("worlds/world.yaml")
def test_the_flow_against_my_world(atlassian_emulator):
    emu = atlassian_emulator
    info = emu.connection_info()
    assert info["client_id"] == "my-integration"
    assert [site["name"] for site in info["sites"]] == ["widgets"]
    secret = emu.default_client.client_secret.reveal()
    with httpx.Client(trust_env=False, timeout=10) as http:
        answer = http.get(info["authorize_url"], params={
            "audience": "api.atlassian.com", "client_id": info["client_id"],
            "scope": "read:me offline_access", "redirect_uri": info["callback_urls"][0],
            "state": "s1", "response_type": "code", "prompt": "consent"})
        assert answer.status_code == 302
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        basic = base64.b64encode(f"{info['client_id']}:{secret}".encode()).decode()
        token = http.post(info["token_url"], headers={"Authorization": f"Basic {basic}"},
                          data={"grant_type": "authorization_code", "code": code,
                                "redirect_uri": info["callback_urls"][0]})
        assert token.status_code == 200, token.text
        me = http.get(f"{info['api_base_url']}/me",
                      headers={"Authorization": f"Bearer {token.json()['access_token']}"})
        assert me.json()["nickname"] == "tester"
    record(emu)


def test_a_failing_test_still_stops_its_emulator(atlassian_emulator):
    record(atlassian_emulator)
    assert False, "this test fails on purpose"
"""

SITE_NAME_TEST = """\
def test_site(atlassian_emulator):
    assert [s["name"] for s in atlassian_emulator.sites] == {expected!r}
"""


@pytest.fixture(autouse=True)
def plugins_autoload(monkeypatch):
    """The plugin reaches the inner session through its entry point, as it does for users."""
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)


def write_world(pytester, path="worlds/world.yaml", site="widgets", client_id="my-integration"):
    target = pytester.path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(WORLD.format(site=site, client_id=client_id))
    return target


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_the_plugin_is_registered_through_the_pytest11_entry_point(request):
    [entry] = [e for e in entry_points(group="pytest11") if e.name == "atlassian_emulator"]
    assert entry.value == "atlassian_playbook.pytest_plugin"
    import atlassian_playbook.pytest_plugin as plugin

    assert request.config.pluginmanager.get_plugin("atlassian_emulator") is plugin


def test_importing_the_plugin_loads_neither_httpx_nor_the_emulator():
    probe = (
        "import sys, pytest, atlassian_playbook.pytest_plugin\n"
        "heavy = [m for m in ('httpx', 'papermill', 'yaml', 'atlassian_playbook.emulator')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_fixture_serves_a_custom_world_and_stops_after_each_test(pytester):
    write_world(pytester)
    pytester.makepyfile(test_inner=SERVING_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=1, failed=1)
    ports = [json.loads(line) for line in (pytester.path / "ports.jsonl").read_text().splitlines()]
    assert len(ports) == 2 and ports[0] != ports[1]  # an emulator per test
    for port in (port for pair in ports for port in pair):
        assert refuses_connections(port), f"port {port} still answers after the test"


@pytest.mark.parametrize("how", ["option", "ini"])
def test_the_world_comes_from_the_option_or_the_ini_file(pytester, how):
    write_world(pytester, "worlds/option.yaml", site="optioned")
    pytester.makepyfile(SITE_NAME_TEST.format(expected=["optioned"]))
    if how == "option":
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "--atlassian-emulator-world", "worlds/option.yaml"
        )
    else:
        pytester.makeini("[pytest]\natlassian_emulator_world = worlds/option.yaml\n")
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_marker_wins_over_the_option_and_the_default_world_is_used_otherwise(pytester):
    write_world(pytester, "worlds/option.yaml", site="optioned")
    write_world(pytester, "marked.yaml", site="marked")
    pytester.makepyfile(
        test_marked='import pytest\n\n@pytest.mark.atlassian_world("marked.yaml")\n'
        + SITE_NAME_TEST.format(expected=["marked"]),
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--atlassian-emulator-world", "worlds/option.yaml"
    )
    result.assert_outcomes(passed=1)
    pytester.makepyfile(test_marked=SITE_NAME_TEST.format(expected=["acme", "globex", "initech"]))
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_missing_world_file_fails_the_test_that_asked_for_it(pytester):
    pytester.makepyfile(
        'import pytest\n\n@pytest.mark.atlassian_world("nowhere.yaml")\n'
        "def test_x(atlassian_emulator):\n    pass\n\n"
        "def test_y():\n    pass\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*nowhere.yaml does not exist*"])


def test_the_env_fixture_describes_the_same_emulator(pytester):
    pytester.makepyfile(
        """
        import httpx

        def test_env(atlassian_emulator, atlassian_emulator_env, monkeypatch):
            emu, env = atlassian_emulator, atlassian_emulator_env
            assert set(env) == {"ATLASSIAN_CLIENT_ID", "ATLASSIAN_CLIENT_SECRET",
                                "ATLASSIAN_AUTH_BASE_URL", "ATLASSIAN_API_BASE_URL",
                                "ATLASSIAN_REDIRECT_URI"}
            assert env["ATLASSIAN_CLIENT_ID"] == emu.default_client.client_id
            assert env["ATLASSIAN_CLIENT_SECRET"] == emu.default_client.client_secret.reveal()
            assert env["ATLASSIAN_REDIRECT_URI"] in emu.default_client.redirect_uris
            assert (env["ATLASSIAN_AUTH_BASE_URL"], env["ATLASSIAN_API_BASE_URL"]) == (
                emu.auth_base_url, emu.api_base_url)
            health = httpx.get(env["ATLASSIAN_AUTH_BASE_URL"] + "/_emulator/health",
                               headers={"Authorization": f"Bearer {emu.admin_token}"},
                               trust_env=False)
            assert health.json()["default_client_id"] == env["ATLASSIAN_CLIENT_ID"]
            for name, value in env.items():
                monkeypatch.setenv(name, value)
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_session_that_does_not_ask_for_the_fixture_gets_nothing(pytester):
    pytester.makepyfile(
        """
        import sys

        def test_plain(request):
            assert request.config.pluginmanager.get_plugin("atlassian_emulator") is not None
            assert "atlassian_playbook.emulator" not in sys.modules
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=1)
    assert "--atlassian-emulator-world" in pytester.runpytest_subprocess("--help").stdout.str()


def test_the_readme_examples_run(pytester, monkeypatch):
    """The README's section shows working code: each of its Python blocks is run as a test
    file of its own against the plugin."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # loopback only, whatever the shell
    section = README.read_text().split(README_SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 3
    pytester.makepyfile(**{f"test_readme_{n}": block for n, block in enumerate(blocks)})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=len(re.findall(r"^def test_", "\n".join(blocks), re.M)))
