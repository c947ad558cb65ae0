"""The user's real path, from a terminal: which Atlassian, which workspace, what a typo does.

Real CLI processes in a workspace folder (no ATLASSIAN_TOKEN_STORE: the workspace rule decides),
against the embedded emulator or an emulator the test runs as if it were Atlassian.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from dotenv import dotenv_values

from atlassian_playbook import cli
from atlassian_playbook.batch.workspace import store_entries
from atlassian_playbook.config import load_workspace_settings

from .conftest import assert_no_secrets, secrets_in_store
from .notebook_helpers import new_workspace

SECRET = "ws-secret-value-0123456789abcdef"


def clean_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATLASSIAN_")}
    env.update(settings)
    return env


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None,
        timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "atlassian_playbook", *args],
                          env=env or clean_env(), cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize(
    ("env_text", "missing"),
    [
        ("ATLASSIAN_CLIENT_ID=abc123\n", "ATLASSIAN_CLIENT_SECRET"),
        (f"ATLASSIAN_CLIENT_ID=abc123\nATLASSIAN_CLIENT_SECRT={SECRET}\n",
         "ATLASSIAN_CLIENT_SECRET"),
        (f"ATLASSIAN_CLIENT_SECRET={SECRET}\n", "ATLASSIAN_CLIENT_ID"),
    ],
)
def test_a_half_filled_env_never_falls_back_to_the_emulator(tmp_path, env_text, missing):
    (tmp_path / ".env").write_text(env_text)
    doctor = run(["doctor"], tmp_path)
    assert doctor.returncode == 1
    assert "All checks passed" not in doctor.stdout
    assert missing in doctor.stdout and "emulator" not in doctor.stdout.split("\n")[0].lower()
    for command in (["verify"], ["login", "--no-browser"], ["refresh"]):
        result = run(command, tmp_path)
        assert result.returncode == 1, command
        assert result.stderr.count("error:") == 1 and missing in result.stderr
        assert "unexpected" not in result.stderr
    assert not (tmp_path / ".playbook").exists()  # no emulator was started
    assert_no_secrets([doctor.stdout, doctor.stderr], {SECRET})


def test_an_unknown_atlassian_name_warns_from_every_command_and_fails_doctor(tmp_path):
    (tmp_path / ".env").write_text("ATLASSIAN_SCOPE=read:me offline_access\n")
    env = clean_env(ATLASSIAN_REDIRECT_URL="http://127.0.0.1:9/callback")
    for command in (["scopes", "list", "--api", "identity"], ["checklist"], ["doctor"],
                    ["verify"]):
        result = run(command, tmp_path, env)
        assert "warning: ATLASSIAN_SCOPE in " in result.stderr, command
        assert "did you mean ATLASSIAN_SCOPES?" in result.stderr, command
        assert "did you mean ATLASSIAN_REDIRECT_URI?" in result.stderr, command
    doctor = run(["doctor", "--json"], tmp_path, env)
    report = json.loads(doctor.stdout)
    assert doctor.returncode == 1 and report["ok"] is False
    failed = {c["name"] for c in report["checks"] if c["ok"] is False}
    assert failed == {"setting ATLASSIAN_SCOPE", "setting ATLASSIAN_REDIRECT_URL"}


def test_every_command_says_first_which_atlassian_and_doctor_which_files(tmp_path):
    new_workspace(tmp_path)
    login = run(["login", "--no-browser"], tmp_path)
    assert login.returncode == 0, login.stderr
    assert login.stderr.startswith("Target: the embedded Atlassian emulator on http://127.0.0.1:")
    assert "/authorize?" in login.stdout.splitlines()[0]  # stdout's first line stays the URL
    for command in (["verify"], ["refresh"], ["doctor"], ["emulator", "rehearse",
                                                          "callback-mismatch"]):
        result = run(command, tmp_path)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        assert result.stdout.startswith("Target: the embedded Atlassian emulator"), command
    doctor = run(["doctor"], tmp_path).stdout.splitlines()
    assert doctor[1] == f"Settings: {tmp_path / '.env'}"
    assert doctor[2] == f"Token store: {tmp_path / '.playbook' / 'tokens.json'}"


def test_verify_json_names_the_connection_it_checked(tmp_path):
    new_workspace(tmp_path)
    assert run(["login", "--no-browser"], tmp_path).returncode == 0
    report = json.loads(run(["verify", "--json"], tmp_path).stdout)
    assert report["account"] == {"account_id": "5b10ac8d82e05b22cc7d4ef5", "name": "Ada Lovelace",
                                 "email": "ada.lovelace@example.com"}
    assert report["site"] == {"cloud_id": "3f9c1a52-7d4e-4b8a-9e21-6c0d5b7a8e14",
                              "name": "acme", "url": "https://acme.atlassian.net"}
    entry = store_entries(tmp_path)[0]
    assert (report["client_id"], report["account"]["account_id"]) == (entry.client_id,
                                                                    entry.account_id)
    text = run(["verify"], tmp_path).stdout.splitlines()
    assert text[1] == ("Connection: Ada Lovelace <ada.lovelace@example.com> "
                       "(5b10ac8d82e05b22cc7d4ef5) on acme (https://acme.atlassian.net)")


def test_paste_mode_completes_against_the_embedded_emulator(tmp_path):
    """`login --paste --no-browser`: whoever opens the URL pastes where the browser landed."""
    callback = dotenv_values(new_workspace(tmp_path) / ".env")["ATLASSIAN_REDIRECT_URI"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "atlassian_playbook", "login", "--paste", "--no-browser"],
        env=clean_env(), cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    assert "/authorize?" in url
    # The browser: the embedded emulator consents at once and redirects to the callback,
    # where nothing listens in paste mode; the address bar shows this URL.
    landed = httpx.get(url, follow_redirects=False, timeout=30).headers["location"]
    assert landed.startswith(f"{callback}?code=")
    out, err = proc.communicate(input=landed + "\n", timeout=90)
    assert proc.returncode == 0, err
    assert "Logged in as account 5b10ac8d82e05b22cc7d4ef5" in out
    assert "ConnectError" not in err
    code = httpx.URL(landed).params["code"]
    assert_no_secrets([out, err], secrets_in_store(tmp_path / ".playbook" / "tokens.json") |
                      {code})


def test_a_cli_login_is_the_notebooks_and_the_batch_s_from_the_same_folder(tmp_path):
    new_workspace(tmp_path)
    assert run(["login", "--no-browser"], tmp_path).returncode == 0
    settings = load_workspace_settings(tmp_path)  # what open_session and batch resolve
    assert settings.token_store == tmp_path / ".playbook" / "tokens.json"
    assert [e.account_id for e in store_entries(tmp_path)] == ["5b10ac8d82e05b22cc7d4ef5"]
    other = tmp_path / "elsewhere"
    other.mkdir()
    assert run(["--env-file", str(tmp_path / ".env"), "verify"], other).returncode == 0


def test_the_workspace_store_is_never_committed_by_the_user_s_own_git(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text(".env\n")
    new_workspace(tmp_path)
    assert run(["login", "--no-browser"], tmp_path).returncode == 0
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                            cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert ".playbook" not in status
    assert (tmp_path / ".playbook" / "tokens.json").is_file()


def test_doctor_fails_on_a_store_folder_it_cannot_write(tmp_path):
    (tmp_path / "blocked").write_text("a file where the store's folder should be")
    env = clean_env(ATLASSIAN_TOKEN_STORE=str(tmp_path / "blocked" / "tokens.json"))
    # A real app (an emulator the test runs stands in for Atlassian), so no embedded emulator
    # needs the folder first.
    from atlassian_playbook.emulator import Emulator

    with Emulator() as emu:
        client = emu.default_client
        env.update(ATLASSIAN_CLIENT_ID=client.client_id,
                   ATLASSIAN_CLIENT_SECRET=client.client_secret.reveal(),
                   ATLASSIAN_AUTH_BASE_URL=emu.auth_base_url,
                   ATLASSIAN_API_BASE_URL=emu.api_base_url)
        result = run(["doctor", "--json"], tmp_path, env)
        report = json.loads(result.stdout)
        check = next(c for c in report["checks"] if c["name"] == "token store folder")
        assert result.returncode == 1 and check["ok"] is False
        assert str(tmp_path / "blocked") in check["detail"]
        assert "ATLASSIAN_TOKEN_STORE" in check["hint"]
        assert_no_secrets([result.stdout, result.stderr], {client.client_secret.reveal()})


def test_doctor_never_prints_a_value_that_equals_a_secret(tmp_path):
    # The classic slip: the secret pasted into the client id's line as well.
    (tmp_path / ".env").write_text(
        f"ATLASSIAN_CLIENT_ID={SECRET}\nATLASSIAN_CLIENT_SECRET={SECRET}\n"
        f"ATLASSIAN_SITE={SECRET}\n")
    for command in (["doctor"], ["doctor", "--json"]):
        result = run(command, tmp_path)
        assert "«secret:" in result.stdout
        assert_no_secrets([result.stdout, result.stderr], {SECRET})


def test_bad_user_input_gets_its_own_error_not_report_it(tmp_path):
    (tmp_path / ".env").write_bytes(b"ATLASSIAN_SITE=caf\xe9\n")
    result = run(["doctor"], tmp_path)
    assert result.returncode == 1 and "not UTF-8" in result.stdout
    result = run(["verify"], tmp_path)
    assert "not UTF-8" in result.stderr and "unexpected" not in result.stderr
    (tmp_path / ".env").unlink()
    for timeout in ("-1", "nan", "0", "inf"):
        result = run(["login", "--no-browser", "--timeout", timeout], tmp_path)
        assert result.returncode == 2 and "positive number of seconds" in result.stderr, timeout
    result = run(["batch", "--from-store", "--workers", "0"], tmp_path)
    assert result.returncode == 2 and "at least 1" in result.stderr


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    result = subprocess.run(
        f"{sys.executable} -m atlassian_playbook scopes list --json | head -c 10",
        shell=True, env=clean_env(), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.stdout == "[\n  {\n    "
    assert result.stderr == ""


def test_a_full_disk_anywhere_is_named_with_its_fix(tmp_path, monkeypatch, capsys):
    import errno

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out.json"))

    monkeypatch.setattr(cli.configure, "cmd_scopes_list", full)
    assert cli.main(["--env-file", str(tmp_path / ".env"), "scopes", "list"]) == 1
    err = capsys.readouterr().err
    assert err == (f"error: No space left on device ({tmp_path / 'out.json'})  hint: free some "
                   "space on that disk, then run the command again\n")


def test_batch_says_each_workspace_s_target_and_takes_max_runs(tmp_path):
    (tmp_path / "plan.yaml").write_text(
        "name: many\nnotebook: 11-health-check.ipynb\n"
        f"product:\n  workspace: ['{tmp_path}']\n  account_id: [a, b, c]\n")
    refused = run(["batch", "plan.yaml", "--max-runs", "2"], tmp_path)
    assert refused.returncode == 1
    assert "expands to 3 runs, more than the limit of 2" in refused.stderr
    assert "--max-runs 3" in refused.stderr
    assert not (tmp_path / "output").exists()
    new_workspace(tmp_path)
    assert run(["login", "--no-browser"], tmp_path).returncode == 0
    batch = run(["batch", "--from-store", "--output", str(tmp_path / "out")], tmp_path,
                timeout=300)
    assert batch.returncode == 0, batch.stderr
    assert batch.stdout.startswith(
        f"Target of {tmp_path}: the embedded Atlassian emulator (no credentials set in .env)")
