"""The CLI end to end, as a user (or an outside checker) runs it: real processes, real emulator.

Two set-ups: no credentials (each command starts the embedded emulator on a shared state file)
and credentials pointing at an emulator the test runs (exactly how an outside strict
implementation of FACTS.md would be configured: only through the ATLASSIAN_* settings).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from atlassian_playbook import manifest
from atlassian_playbook.emulator import Emulator, read_state

from .conftest import assert_no_secrets, free_port, loopback_callback, secrets_in_store


def cli_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """A clean environment with a store in ``tmp_path`` and a loopback callback on a free port,
    registered on the embedded emulator's app (parallel suites must never share 8765)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATLASSIAN_")}
    env["ATLASSIAN_TOKEN_STORE"] = str(tmp_path / "store" / "tokens.json")
    if "ATLASSIAN_REDIRECT_URI" not in settings:
        env["ATLASSIAN_REDIRECT_URI"] = loopback_callback(
            Emulator(state_path=tmp_path / "store" / "emulator-state.json"))
    env.update(settings)
    return env


def run_cli(args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "atlassian_playbook", *args],
        env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=timeout,
    )


def start_login(args: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen, str]:
    """Start `login`, return the process and the authorization URL it printed on its own line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "atlassian_playbook", "login", *args],
        env=env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip()
    assert "/authorize?" in url, url
    return proc, url


@pytest.fixture
def external(tmp_path):
    """An emulator the test runs, plus settings that point the CLI at it like real credentials."""
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/callback"
    with Emulator(auto_consent=True) as emu:
        client = emu.register_client(redirect_uris=(redirect,))
        env = cli_env(
            tmp_path,
            ATLASSIAN_CLIENT_ID=client.client_id,
            ATLASSIAN_CLIENT_SECRET=client.client_secret.reveal(),
            ATLASSIAN_REDIRECT_URI=redirect,
            ATLASSIAN_AUTH_BASE_URL=emu.auth_base_url,
            ATLASSIAN_API_BASE_URL=emu.api_base_url,
            ATLASSIAN_SCOPES="read:me read:jira-user read:confluence-space.summary offline_access",
        )
        yield emu, client, env


def test_embedded_emulator_full_flow_login_verify_refresh(tmp_path):
    env = cli_env(tmp_path)
    login = run_cli(["login", "--no-browser"], env, tmp_path)
    assert login.returncode == 0, login.stderr
    lines = login.stdout.splitlines()
    assert lines[0].startswith("http://127.0.0.1:")
    assert "/authorize?audience=api.atlassian.com" in lines[0]
    assert "refresh token present" in login.stdout

    verify = run_cli(["verify", "--json"], env, tmp_path)
    assert verify.returncode == 0, verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"] is True
    assert {c["name"]: c["status"] for c in report["checks"]}["Jira myself"] == "ok"

    store = tmp_path / "store" / "tokens.json"
    before = secrets_in_store(store)
    refresh = run_cli(["refresh", "--json"], env, tmp_path)
    assert refresh.returncode == 0, refresh.stderr
    data = json.loads(refresh.stdout)
    assert data["rotated"] is True
    after = secrets_in_store(store)
    assert after and after != before  # the rotated refresh token was saved
    assert oct(store.stat().st_mode & 0o777) == "0o600"

    # verify again in a new process: the stored, rotated tokens work
    assert run_cli(["verify"], env, tmp_path).returncode == 0

    state = read_state(tmp_path / "store" / "emulator-state.json")
    client_secrets = {c.get("client_secret") for c in state["clients"].values()}
    outputs = [login.stdout, login.stderr, verify.stdout, refresh.stdout, refresh.stderr]
    assert_no_secrets(outputs, before | after | client_secrets)


def test_external_server_login_prints_url_alone_and_listener_catches_the_code(tmp_path, external):
    emu, client, env = external
    proc, url = start_login(["--no-browser"], env, tmp_path)
    assert url.startswith(f"{emu.auth_base_url}/authorize?audience=api.atlassian.com&client_id=")
    assert "&response_type=code&prompt=consent" in url
    landed = httpx.get(url, timeout=10).headers["location"]  # the user's browser, hop by hop
    code = httpx.URL(landed).params["code"]
    httpx.get(landed, timeout=10)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Logged in as account" in out

    refresh = run_cli(["refresh"], env, tmp_path)
    assert refresh.returncode == 0, refresh.stderr
    store = tmp_path / "store" / "tokens.json"
    assert_no_secrets([out, err, refresh.stdout, refresh.stderr],
                      secrets_in_store(store) | {client.client_secret.reveal(), code})


def test_paste_mode_reads_the_redirected_url_from_stdin(tmp_path, external):
    emu, client, env = external
    proc, url = start_login(["--no-browser", "--paste"], env, tmp_path)
    landed = httpx.get(url, follow_redirects=False, timeout=10).headers["location"]
    out, err = proc.communicate(input=f"  '{landed}'  \n", timeout=30)
    assert proc.returncode == 0, err
    assert "refresh token present" in out
    assert "Paste the full URL" in err


def test_wrong_secret_fails_with_one_line_and_the_fix(tmp_path, external):
    emu, client, env = external
    wrong = "wrong-secret-value-0123456789"
    env["ATLASSIAN_CLIENT_SECRET"] = wrong
    proc, url = start_login(["--no-browser"], env, tmp_path)
    httpx.get(url, follow_redirects=True, timeout=10)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert "hint:" in error_lines[0] and "ATLASSIAN_CLIENT_SECRET" in error_lines[0]
    assert "Consenting again will not help" in error_lines[0]
    assert_no_secrets([out, err], {wrong, client.client_secret.reveal()})


def test_denied_consent_is_reported_with_what_to_do(tmp_path, external):
    emu, client, env = external
    emu.auto_consent = False
    proc, url = start_login(["--no-browser"], env, tmp_path)
    with httpx.Client(timeout=10) as browser:
        page = browser.get(url)
        assert page.status_code == 200 and 'id="deny"' in page.text
        request_id = page.text.split('name="consent_request" value="')[1].split('"')[0]
        denied = browser.post(f"{emu.auth_base_url}/authorize/decision",
                              data={"consent_request": request_id, "decision": "deny"},
                              follow_redirects=True)
        assert "denied" in denied.text.lower()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "error:" in err and "Accept" in err


def test_unregistered_callback_never_redirects_and_login_times_out_with_a_hint(tmp_path, external):
    emu, client, env = external
    env["ATLASSIAN_REDIRECT_URI"] = f"http://127.0.0.1:{free_port()}/other"
    proc, url = start_login(["--no-browser", "--timeout", "1"], env, tmp_path)
    page = httpx.get(url, follow_redirects=False, timeout=10)
    assert page.status_code == 400 and "location" not in page.headers
    assert "redirect_uri" in page.text
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "error:" in err and "--paste" in err


def test_expired_access_token_is_refreshed_by_verify_and_stored(tmp_path, external):
    emu, client, env = external
    proc, url = start_login(["--no-browser"], env, tmp_path)
    httpx.get(url, follow_redirects=True, timeout=10)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    store = tmp_path / "store" / "tokens.json"
    before = secrets_in_store(store)
    emu.advance_clock(3700)
    verify = run_cli(["verify", "--json"], env, tmp_path)
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["ok"] is True
    assert secrets_in_store(store).isdisjoint(before)  # both tokens replaced, and saved


def test_rate_limit_and_server_errors_are_retried(tmp_path, external):
    emu, client, env = external
    proc, url = start_login(["--no-browser"], env, tmp_path)
    httpx.get(url, follow_redirects=True, timeout=10)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    emu.inject_fault("/ex/jira/", status=429, retry_after=0.01, times=1)
    emu.inject_fault("/me", status=503, times=1)
    verify = run_cli(["verify", "--json"], env, tmp_path)
    assert verify.returncode == 0, verify.stderr
    statuses = [status for _, path, status in emu.request_log
                if path.startswith(("/me", "/ex/jira/"))]
    assert 429 in statuses and 503 in statuses


def test_reused_refresh_token_needs_a_new_login(tmp_path, external):
    emu, client, env = external
    proc, url = start_login(["--no-browser"], env, tmp_path)
    httpx.get(url, follow_redirects=True, timeout=10)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    emu.revoke(client.client_id)  # the user removed the app in "connected apps"
    refresh = run_cli(["refresh"], env, tmp_path)
    assert refresh.returncode == 1
    assert "login" in refresh.stderr and "hint:" in refresh.stderr


def test_scopes_commands(tmp_path):
    env = cli_env(tmp_path)
    listing = run_cli(["scopes", "list", "--api", "confluence", "--json"], env, tmp_path)
    names = {s["name"] for s in json.loads(listing.stdout)}
    assert "read:confluence-space.summary" in names and "read:jira-work" not in names

    typo = run_cli(["scopes", "check", "read:jira-usr"], env, tmp_path)
    assert typo.returncode == 1 and "read:jira-user" in typo.stderr

    commas = run_cli(["scopes", "check", "read:me,offline_access"], env, tmp_path)
    assert commas.returncode == 1 and "spaces" in commas.stderr

    warn = run_cli(["scopes", "check", "read:me"], env, tmp_path)
    assert warn.returncode == 0 and "offline_access" in warn.stdout

    merge = run_cli(["scopes", "preset", "merge"], env, tmp_path).stdout.split()
    assert "offline_access" in merge and "report:personal-data" in merge


def test_checklist_for_merge_names_the_callback_and_policy(tmp_path):
    result = run_cli(["checklist", "--profile", "merge"], cli_env(tmp_path), tmp_path)
    assert result.returncode == 0
    assert "https://app.merge.dev/oauth/callback" in result.stdout
    assert "Sharing" in result.stdout


def test_doctor_reports_bad_configuration_by_setting(tmp_path):
    env = cli_env(tmp_path, ATLASSIAN_REDIRECT_URI="localhost:8765/callback")
    result = run_cli(["doctor"], env, tmp_path)
    assert result.returncode == 1
    assert "ATLASSIAN_REDIRECT_URI" in result.stdout

    ok = run_cli(["doctor", "--json"], cli_env(tmp_path), tmp_path)
    assert ok.returncode == 0, ok.stdout
    assert json.loads(ok.stdout)["ok"] is True


def test_verify_without_a_login_says_to_log_in(tmp_path):
    result = run_cli(["verify"], cli_env(tmp_path), tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error:") and "login" in result.stderr


def test_demo_runs_the_whole_playbook_and_says_where_its_output_is(demo_run):
    """What `make demo` runs: every notebook headless, executed copies and an HTML site."""
    result, cwd = demo_run
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("  ok  ") == len(manifest.notebooks())
    executed = sorted(p.name for p in (cwd / "out" / "notebooks").glob("*.ipynb"))
    assert executed == sorted(nb.file for nb in manifest.notebooks())
    assert str((cwd / "out" / "site" / "index.html").resolve()) in result.stdout
    # The demo's own workspace is temporary; its secrets are masked tokens in the outputs.
    text = "".join(p.read_text() for p in (cwd / "out").rglob("*") if p.is_file())
    assert "«secret:" in text  # masked values are shown ...
    # ... never the tokens themselves (the wire panels show the token response, masked)
    assert not re.search(r'"access_token": "(?!«secret:)', text)


def test_debug_trace_shows_the_http_exchange_without_any_secret(tmp_path, external):
    emu, client, env = external
    proc, url = start_login(["--no-browser"], {**env, "ATLASSIAN_PLAYBOOK_DEBUG": "1"}, tmp_path)
    landed = httpx.get(url, timeout=10).headers["location"]  # the browser, one hop at a time
    code = httpx.URL(landed).params["code"]
    httpx.get(landed, timeout=10)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    refresh = run_cli(["--debug", "refresh"], env, tmp_path)
    assert refresh.returncode == 0, refresh.stderr
    assert "POST" in err and "/oauth/token" in err  # the trace is there ...
    assert "POST" in refresh.stderr and "«secret:" in refresh.stderr  # ... masked
    store = tmp_path / "store" / "tokens.json"
    assert_no_secrets([out, err, refresh.stdout, refresh.stderr],
                      secrets_in_store(store) | {client.client_secret.reveal(), code})


def test_debug_headless_login_never_prints_the_authorization_code(tmp_path):
    # Headless against the embedded emulator the CLI itself receives the redirect that carries
    # the code; HTTP libraries' own DEBUG logs would print it.
    result = run_cli(["--debug", "login", "--no-browser"], cli_env(tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "/authorize" in result.stderr  # the trace is there
    assert not re.search(r"code=(?!«)[A-Za-z0-9_-]{16,}", result.stderr + result.stdout)


def test_login_json_says_whether_a_refresh_token_came(tmp_path):
    result = run_cli(["login", "--no-browser", "--json"], cli_env(tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.split("\n", 1)[1])["refresh_token_issued"] is True
    without = run_cli(["login", "--no-browser", "--json", "--scopes", "read:me"],
                      cli_env(tmp_path), tmp_path)
    assert json.loads(without.stdout.split("\n", 1)[1])["refresh_token_issued"] is False
