"""The emulator's console from a terminal: the trailing-slash trap rehearsed with the CLI, the
Authorization tab (`emulator callbacks`), the admin setting, the world, the connection info."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from atlassian_playbook import cli
from atlassian_playbook.emulator import load_world

from .conftest import free_port
from .test_cli import cli_env, run_cli


def test_a_callback_that_differs_by_a_slash_fails_doctor_and_login_until_it_is_registered(
    tmp_path,
):
    port = free_port()
    registered = f"http://127.0.0.1:{port}/callback"
    env = cli_env(tmp_path, ATLASSIAN_REDIRECT_URI=registered + "/")
    added = run_cli(["emulator", "callbacks", "add", registered], env, tmp_path)
    assert added.returncode == 0, added.stderr
    assert registered in added.stdout

    doctor = run_cli(["doctor"], env, tmp_path)
    assert doctor.returncode == 1
    line = next(x for x in doctor.stdout.splitlines() if "callback registered" in x)
    assert line.startswith("FAILED")
    assert f"differs from the registered {registered} only by a trailing slash" in line

    login = run_cli(["login", "--no-browser"], env, tmp_path)
    assert login.returncode == 1
    assert "redirect_uri_mismatch" in login.stderr
    assert "trailing slash" in login.stderr  # the hint
    assert not (tmp_path / "store" / "tokens.json").exists()

    # The deliberate act, as on the console: add the slashed URL too. Then both pass.
    run_cli(["emulator", "callbacks", "add", registered + "/"], env, tmp_path)
    assert run_cli(["doctor"], env, tmp_path).returncode == 0
    login = run_cli(["login", "--no-browser"], env, tmp_path)
    assert login.returncode == 0, login.stderr


def test_editing_env_never_registers_a_callback(tmp_path):
    env = cli_env(tmp_path, ATLASSIAN_REDIRECT_URI=f"http://127.0.0.1:{free_port()}/cb")
    for _ in range(2):  # doctor and login start the embedded emulator on the same state
        run_cli(["doctor"], env, tmp_path)
    listed = run_cli(["emulator", "callbacks", "list", "--json"], env, tmp_path)
    assert env["ATLASSIAN_REDIRECT_URI"] not in json.loads(listed.stdout)["callback_urls"]


def test_callbacks_remove_and_errors_carry_the_fix(tmp_path):
    env = cli_env(tmp_path)
    removed = run_cli(["emulator", "callbacks", "remove", "http://localhost:8765/callback",
                       "--json"], env, tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert "http://localhost:8765/callback" not in json.loads(removed.stdout)["callback_urls"]
    missing = run_cli(["emulator", "callbacks", "remove", "http://nowhere/"], env, tmp_path)
    assert missing.returncode == 1 and "callbacks list" in missing.stderr
    fragment = run_cli(["emulator", "callbacks", "add", "http://127.0.0.1:1/cb#x"], env, tmp_path)
    assert fragment.returncode == 1 and "fragment" in fragment.stderr
    assert "unexpected" not in fragment.stderr


def test_user_installed_apps_is_the_admin_setting_of_a_site(tmp_path):
    env = cli_env(tmp_path)
    allowed = run_cli(["emulator", "user-installed-apps", "initech", "allow"], env, tmp_path)
    assert allowed.returncode == 0 and "initech: user-installed apps Allowed" in allowed.stdout
    blocked = run_cli(["emulator", "user-installed-apps", "initech", "block"], env, tmp_path)
    assert "not allowed" in blocked.stdout
    unknown = run_cli(["emulator", "user-installed-apps", "umbrella", "block"], env, tmp_path)
    assert unknown.returncode == 1 and "acme" in unknown.stderr


def test_emulator_world_prints_the_built_in_world(tmp_path):
    printed = run_cli(["emulator", "world"], cli_env(tmp_path), tmp_path)
    assert printed.returncode == 0
    world_file = tmp_path / "world.yaml"
    world_file.write_text(printed.stdout)
    world = load_world(world_file)
    assert len(world["users"]) >= 2 and len(world["sites"]) >= 2
    assert yaml.safe_load(printed.stdout)["apps"][0]["callback_urls"]


def test_emulator_serve_prints_what_a_client_needs_and_no_secret(tmp_path):
    world = tmp_path / "world.yaml"
    world.write_text(
        "users: [{account_id: acc-000001, name: Test User, email: t@example.com}]\n"
        "sites: [{name: testsite, products: [jira]}]\n"
        "apps: [{name: My app, client_id: my-client, client_secret: my-secret-value-123,\n"
        "        callback_urls: ['https://example.com/cb']}]\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "atlassian_playbook", "emulator", "--world", str(world),
         "--json"], env=cli_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        info = json.loads(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert info["client_id"] == "my-client"
    assert info["callback_urls"] == ["https://example.com/cb"]
    assert info["auth_base_url"].startswith("http://127.0.0.1:")
    assert info["api_base_url"].startswith("http://127.0.0.1:")
    assert "/_emulator/clients/my-client" in info["client_secret"]
    assert "Authorization: Bearer <admin_token>" in info["client_secret"]
    assert len(info["admin_token"]) >= 32
    assert "my-secret-value-123" not in json.dumps(info)
    assert [s["name"] for s in info["sites"]] == ["testsite"]


def test_a_broken_world_file_is_one_line_naming_the_line(tmp_path):
    world = tmp_path / "world.yaml"
    world.write_text(
        "users: [{account_id: acc-000001, name: T, email: t@example.com}]\n"
        "sites:\n  - name: acme\n    products: [jira, confluense]\n"
        "apps: [{name: A, callback_urls: ['https://example.com/cb']}]\n"
    )
    env = cli_env(tmp_path, ATLASSIAN_EMULATOR_WORLD=str(world))
    result = run_cli(["doctor"], env, tmp_path)
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "line 4" in text and "sites[0].products[1]" in text and "confluense" in text
    assert "unexpected" not in text


@pytest.mark.parametrize(("port", "says"), [
    ("70000", "Port 70000 is not a port: give a number from 0 to 65535."),
    ("-5", "Port -5 is not a port: give a number from 0 to 65535."),
    ("65535", "Port 65535 leaves no port for the emulator's API server"),
])
def test_emulator_port_out_of_range_is_one_line_with_the_fix(tmp_path, monkeypatch, capsys, port,
                                                             says):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["emulator", "--port", port]) == 1
    out, err = capsys.readouterr()
    assert says in err and "--port 0" in err
    assert "unexpected" not in err and out == ""


def test_emulator_on_a_corrupt_state_file_names_it_and_leaves_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    state = tmp_path / "emulator-state.json"
    state.write_text('{"version": 2, "clients": {')  # cut short
    for command in (["emulator", "--state", str(state)],
                    ["emulator", "callbacks", "list", "--state", str(state)]):
        assert cli.main(command) == 1
        err = capsys.readouterr().err
        assert f"The emulator state file {state} is not JSON" in err
        assert f"hint: Delete {state}" in err and "unexpected" not in err
    assert state.read_text() == '{"version": 2, "clients": {'
