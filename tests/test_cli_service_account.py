"""`atlassian-playbook login --client-credentials`, `verify` and `refresh --json` for a service
account, through the real CLI (subprocesses) against the real loopback emulator: embedded (the
emulator's service account, ATLASSIAN_GRANT) and as a user runs it against Atlassian (the
credential in .env, the base URLs pointing at an emulator this test holds)."""

from __future__ import annotations

import json
import os

import pytest

from atlassian_playbook.emulator import Emulator
from atlassian_playbook.tokens import TokenStore

from .conftest import assert_no_secrets, secrets_in_store
from .test_cli import run_cli


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without ATLASSIAN_* names, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATLASSIAN_")}
    return {**env, **settings}


@pytest.fixture
def emulator_as_atlassian(tmp_path):
    """An emulator this test holds, and a workspace whose .env names its service account's
    credential as a user names Atlassian's (no ATLASSIAN_GRANT: the stored entry says it)."""
    with Emulator(state_path=tmp_path / "emu" / "emulator-state.json") as emu:
        sa = emu.service_account
        (tmp_path / ".env").write_text(
            f"ATLASSIAN_CLIENT_ID={sa.client_id}\n"
            f"ATLASSIAN_CLIENT_SECRET={sa.client_secret.reveal()}\n"
            f"ATLASSIAN_AUTH_BASE_URL={emu.auth_base_url}\n"
            f"ATLASSIAN_API_BASE_URL={emu.api_base_url}\n"
            "ATLASSIAN_SITE=acme\n"
        )
        yield emu


def test_login_verify_and_refresh_with_client_credentials(tmp_path, emulator_as_atlassian):
    emu = emulator_as_atlassian
    env = clean_env()
    login = run_cli(["login", "--client-credentials", "--json"], env, tmp_path)
    assert login.returncode == 0, login.stderr
    data = json.loads(login.stdout)
    assert data["grant"] == "client_credentials"
    assert data["refresh_token_issued"] is False
    assert data["account_id"] == emu.service_account.account_id
    assert data["site"]["name"] == "acme"
    assert {s["name"] for s in data["sites"]} == {"acme"}
    # No browser, no callback: only the token endpoint and the gateway were asked.
    assert not any(path.startswith("/authorize") for _, path, _ in emu.request_log)

    store = TokenStore(tmp_path / ".playbook" / "tokens.json")
    first = store.get().tokens.access_token
    verify = run_cli(["verify"], env, tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "Jira myself  Nightly sync bot" in verify.stdout

    refresh = run_cli(["refresh", "--json"], env, tmp_path)
    assert refresh.returncode == 0, refresh.stderr
    renewed = json.loads(refresh.stdout)
    assert renewed["grant"] == "client_credentials"
    assert renewed["refresh_token_issued"] is False and renewed["new_access_token"] is True
    assert "no refresh token" in renewed["note"]
    assert store.get().tokens.access_token != first
    grants = [status for _, path, status in emu.request_log if path == "/oauth/token"]
    assert grants == [200, 200]  # login and refresh, both client credentials

    # The expired token is replaced by itself on the next call (the emulator's hour is over).
    emu.advance_clock(3601)
    assert run_cli(["verify"], env, tmp_path).returncode == 0
    assert [s for _, p, s in emu.request_log if p == "/oauth/token"] == [200, 200, 200]

    secrets = secrets_in_store(store.path) | {emu.service_account.client_secret.reveal()}
    assert_no_secrets([login.stdout, login.stderr, verify.stdout, verify.stderr,
                       refresh.stdout, refresh.stderr], secrets)


def test_the_embedded_emulator_lends_its_service_account(tmp_path):
    env = clean_env(ATLASSIAN_GRANT="client_credentials", ATLASSIAN_SITE="acme")
    login = run_cli(["login", "--client-credentials"], env, tmp_path)
    assert login.returncode == 0, login.stderr
    assert "service account" in login.stdout and "refresh token: none" in login.stdout
    assert run_cli(["verify"], env, tmp_path).returncode == 0
    refresh = run_cli(["refresh"], env, tmp_path)
    assert refresh.returncode == 0, refresh.stderr
    assert "Fetched a new access token for service account" in refresh.stdout


def test_without_the_grant_setting_the_embedded_login_says_what_to_set(tmp_path):
    login = run_cli(["login", "--client-credentials"], clean_env(ATLASSIAN_SITE="acme"),
                    tmp_path)
    assert login.returncode == 0, login.stderr
    assert "set ATLASSIAN_GRANT=client_credentials" in login.stdout


def test_a_refresh_grant_sent_with_a_service_accounts_credential_is_refused_clearly(
    tmp_path, emulator_as_atlassian
):
    """A connection stored without its grant (a store from before the field, or written by
    hand) holding a refresh token: the refresh grant goes out, and the answer says why it
    cannot work and what to do."""
    assert run_cli(["login", "--client-credentials"], clean_env(), tmp_path).returncode == 0
    path = tmp_path / ".playbook" / "tokens.json"
    data = json.loads(path.read_text())
    (entry,) = data["entries"].values()
    del entry["grant"]
    entry["tokens"]["refresh_token"] = "a-refresh-token-from-somewhere"
    path.write_text(json.dumps(data))
    refresh = run_cli(["refresh"], clean_env(), tmp_path)
    assert refresh.returncode != 0
    assert "unauthorized_client" in refresh.stderr
    assert "service accounts have no refresh token: fetch a new token with the client " \
        "credentials" in refresh.stderr.replace("\n", " ").lower()
    assert "login --client-credentials" in refresh.stderr
