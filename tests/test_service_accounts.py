"""Service accounts with OAuth 2.0 client credentials (issue 12): the emulator's grant, the
package's client, the token store's grant field and the source that fetches a new token
instead of refreshing (authlib's client-credentials auto-fetch), all against the real loopback
emulator."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from atlassian_playbook import connection
from atlassian_playbook.emulator import Emulator, load_world
from atlassian_playbook.emulator._world import WorldError
from atlassian_playbook.errors import GrantNotAllowed, InvalidClient, OAuthError, TokenStoreError
from atlassian_playbook.oauth import OAuthClient
from atlassian_playbook.redact import Secret
from atlassian_playbook.target import Target, emulator_settings
from atlassian_playbook.tokens import (
    AUTHORIZATION_CODE,
    CLIENT_CREDENTIALS,
    TokenEntry,
    TokenStore,
)

ACME = "3f9c1a52-7d4e-4b8a-9e21-6c0d5b7a8e14"
GLOBEX = "8b2e6d14-0c3f-4e7a-b5d9-1a4f7c2e9b63"


def token_request(emu, http, body, **kwargs):
    return http.post(f"{emu.auth_base_url}/oauth/token", json=body, **kwargs)


def sa_body(emu, **extra):
    sa = emu.service_account
    return {"grant_type": "client_credentials", "client_id": sa.client_id,
            "client_secret": sa.client_secret.reveal(), **extra}


# --- the emulator ------------------------------------------------------------------------


def test_client_credentials_give_a_60_minute_token_without_refresh_token(emulator, http):
    answer = token_request(emulator, http, sa_body(emulator))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"access_token", "expires_in", "scope", "token_type"}
    assert body["expires_in"] == 3600 and body["token_type"] == "Bearer"
    assert body["scope"].split() == list(emulator.service_account.scopes)


def test_http_basic_is_taken_as_for_3lo(emulator, http):
    sa = emulator.service_account
    answer = http.post(f"{emulator.auth_base_url}/oauth/token",
                       data={"grant_type": "client_credentials"},
                       auth=(sa.client_id, sa.client_secret.reveal()))
    assert answer.status_code == 200, answer.text


def test_the_token_reaches_the_granted_sites_as_the_service_account(emulator, http):
    token = token_request(emulator, http, sa_body(emulator)).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    api = emulator.api_base_url
    resources = http.get(f"{api}/oauth/token/accessible-resources", headers=bearer).json()
    assert {r["id"] for r in resources} == {ACME}  # not globex nor initech: not granted
    me = http.get(f"{api}/me", headers=bearer).json()
    assert me["account_id"] == emulator.service_account.account_id
    assert me["account_type"] == "app"
    myself = http.get(f"{api}/ex/jira/{ACME}/rest/api/3/myself", headers=bearer).json()
    assert myself["accountType"] == "app" and myself["displayName"] == "Nightly sync bot"
    refused = http.get(f"{api}/ex/jira/{GLOBEX}/rest/api/3/myself", headers=bearer)
    assert refused.status_code == 401


def test_the_token_expires_after_an_hour_on_the_emulator_clock(emulator, http):
    token = token_request(emulator, http, sa_body(emulator)).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    url = f"{emulator.api_base_url}/oauth/token/accessible-resources"
    assert http.get(url, headers=bearer).status_code == 200
    emulator.advance_clock(3600)
    assert http.get(url, headers=bearer).status_code == 401


def test_a_scope_parameter_narrows_and_cannot_widen(emulator, http):
    narrow = token_request(emulator, http, sa_body(emulator, scope="read:jira-work"))
    assert narrow.json()["scope"] == "read:jira-work"
    token = narrow.json()["access_token"]
    me = http.get(f"{emulator.api_base_url}/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401  # read:me not in this token
    wide = token_request(emulator, http, sa_body(emulator, scope="read:jira-work write:jira-work"))
    assert wide.status_code == 403
    assert wide.json() == {"error": "access_denied",
                           "error_description": "Client has not been granted scopes: "
                           "write:jira-work"}


def test_a_wrong_secret_is_401_as_for_an_app(emulator, http):
    answer = token_request(emulator, http, sa_body(emulator, client_secret="not-the-secret"))
    assert answer.status_code == 401
    assert answer.json() == {"error": "access_denied", "error_description": "Unauthorized"}


def test_an_apps_client_id_cannot_take_client_credentials(emulator, http):
    app = emulator.default_client
    answer = token_request(emulator, http, {
        "grant_type": "client_credentials", "client_id": app.client_id,
        "client_secret": app.client_secret.reveal()})
    assert answer.status_code == 403
    assert answer.json()["error"] == "unauthorized_client"
    assert "client_credentials" in answer.json()["error_description"]


def test_a_service_account_cannot_take_the_refresh_or_code_grant(emulator, http):
    for grant, extra in (("refresh_token", {"refresh_token": "anything"}),
                         ("authorization_code", {"code": "anything",
                                                 "redirect_uri": "http://127.0.0.1/cb"})):
        answer = token_request(emulator, http, {**sa_body(emulator), "grant_type": grant,
                                                **extra})
        assert answer.status_code == 403
        assert answer.json() == {"error": "unauthorized_client", "error_description":
                                 f"Grant type '{grant}' not allowed for the client."}


def test_the_world_file_checks_service_accounts(tmp_path):
    world = load_world()
    raw = {"users": [{"account_id": "abcdef1", "name": "A", "email": "a@example.com"}],
           "sites": [{"name": "one", "products": ["jira"]}],
           "apps": [{"name": "App", "callback_urls": ["http://127.0.0.1:1/cb"]}]}
    assert world["service_accounts"][0]["sites"] == [ACME]
    for account, problem in (
        ({"name": "bot", "scopes": ["read:jira-work"], "sites": ["two"]}, "not a site"),
        ({"name": "bot", "scopes": ["offline_access"], "sites": ["one"]}, "no refresh token"),
        ({"name": "bot", "scopes": ["read:nothing-at-all"], "sites": ["one"]}, "not a known"),
        ({"name": "bot", "sites": ["one"]}, "scopes is required"),
        ({"name": "bot", "scopes": ["read:me"], "sites": ["one"], "colour": "red"},
         "unknown key 'colour'"),
    ):
        with pytest.raises(WorldError, match=problem):
            load_world({**raw, "service_accounts": [account]})
    with Emulator(world={**raw, "service_accounts": [
            {"name": "bot", "scopes": ["read:me"], "sites": ["one"], "client_id": "bot-id",
             "client_secret": "bot-secret-value"}]}) as emu:
        assert emu.service_account.client_id == "bot-id"
    with Emulator(world=raw) as emu, pytest.raises(WorldError, match="no service account"):
        _ = emu.service_account


# --- the package ---------------------------------------------------------------------------


@pytest.fixture
def sa_target(emulator):
    target = Target(emulator_settings(emulator, service_account=True, site="acme"), emulator)
    yield target
    target.close()


def test_oauth_client_credentials_returns_tokens_without_refresh_token(sa_target):
    with sa_target.oauth_client() as oauth:
        tokens = oauth.client_credentials()
        narrow = oauth.client_credentials(["read:jira-work"])
    assert tokens.refresh_token is None
    assert 3590 <= tokens.expires_in() <= 3600
    assert narrow.scopes == ("read:jira-work",)


def test_package_errors_say_what_to_do(emulator, sa_target):
    with sa_target.oauth_client() as oauth:
        with pytest.raises(GrantNotAllowed, match="service accounts have no refresh token") as e:
            oauth.refresh(Secret("a-refresh-token-value"))
        assert "fetch a new token with the client credentials" in e.value.hint
        with pytest.raises(OAuthError, match="not granted every scope"):
            oauth.client_credentials(["write:jira-work"])
    app = OAuthClient(emulator_settings(emulator))
    with app, pytest.raises(GrantNotAllowed, match="3LO app's, not a service account's"):
        app.client_credentials()
    wrong = OAuthClient(emulator_settings(emulator, service_account=True,
                                          client_secret=Secret("wrong-secret-value")))
    with wrong, pytest.raises(InvalidClient):
        wrong.client_credentials()


def test_the_api_client_fetches_a_new_token_when_the_old_one_expires(emulator, sa_target):
    login = connection.login_client_credentials(sa_target)
    assert login.entry.grant == CLIENT_CREDENTIALS and login.entry.site["name"] == "acme"
    first = login.entry.tokens
    # 30 s left: within TokenAuth's leeway, so it is renewed before it is sent.
    store = sa_target.store
    store.put(dataclasses.replace(login.entry, tokens=dataclasses.replace(
        first, expires_at=time.time() + 30)))
    with sa_target.api_client() as api:
        assert api.me()["account_id"] == emulator.service_account.account_id
    stored = store.get(sa_target.settings.client_id)
    assert stored.tokens.access_token != first.access_token
    assert stored.tokens.refresh_token is None and stored.grant == CLIENT_CREDENTIALS
    assert stored.tokens.expires_in() > 3500
    token_posts = [(p, s) for m, p, s in emulator.request_log if p == "/oauth/token"]
    assert token_posts == [("/oauth/token", 200)] * 2  # the login's and the renewal's
    assert [p for m, p, s in emulator.request_log if p == "/me"][-1:] == ["/me"]


def test_a_401_for_an_expired_token_fetches_a_new_one(emulator, sa_target):
    connection.login_client_credentials(sa_target)
    source = sa_target.token_source()
    # The local clock still thinks the token is fresh; the emulator's has moved on.
    emulator.advance_clock(3700)
    from atlassian_playbook.api import ApiClient

    with ApiClient(sa_target.settings, source) as api:
        assert api.me()["account_type"] == "app"
    statuses = [(p, s) for m, p, s in emulator.request_log if p in ("/me", "/oauth/token")]
    assert statuses[-3:] == [("/me", 401), ("/oauth/token", 200), ("/me", 200)]


def test_refresh_fetches_a_new_access_token_and_never_sends_the_refresh_grant(emulator,
                                                                              sa_target):
    connection.login_client_credentials(sa_target, scopes=["read:me", "read:jira-work"])
    result = connection.refresh(sa_target)
    data = result.to_dict()
    assert data["grant"] == "client_credentials"
    assert data["refresh_token_issued"] is False and data["new_access_token"] is True
    assert "no refresh token" in data["note"]
    assert result.entry.tokens.scopes == ("read:me", "read:jira-work")  # asked again for them
    assert emulator.request_log.count(("POST", "/oauth/token", 403)) == 0


def test_verify_checks_a_service_account_connection(sa_target):
    connection.login_client_credentials(sa_target)
    report = connection.verify(sa_target)
    assert report.ok, report.to_text()
    assert "settings vs consent" not in [c.name for c in report.checks]


def test_the_store_records_the_grant_and_reads_old_files(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    from atlassian_playbook.tokens import TokenSet

    tokens = TokenSet(Secret("access-token-value-1"), None, 2e9, ("read:me",))
    store.put(TokenEntry("sa-client", "712020:x", tokens, grant=CLIENT_CREDENTIALS))
    assert store.get("sa-client").grant == CLIENT_CREDENTIALS
    data = json.loads(store.path.read_text())
    entry = data["entries"]["sa-client:712020:x"]
    del entry["grant"]  # a store written before the field existed
    store.path.write_text(json.dumps(data))
    assert store.get("sa-client").grant == AUTHORIZATION_CODE
    entry["grant"] = "password"
    store.path.write_text(json.dumps(data))
    with pytest.raises(TokenStoreError, match="grant must be one of"):
        store.get("sa-client")
