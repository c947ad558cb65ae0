"""The emulator, over real loopback HTTP: as strict as Atlassian (FACTS.md), or it hides bugs."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from atlassian_playbook.emulator import (
    ClientRegistration,
    Emulator,
    StateFileError,
    UnknownScope,
    api_of_scope,
    read_state,
)
from atlassian_playbook.redact import Secret
from atlassian_playbook.target import emulator_settings

ACME = "acme"
GLOBEX = "globex"
CALLBACK = "http://127.0.0.1:8765/callback"
CLOSED = "5be24ba3f91c106033269289"
ACTIVE = "5be24ad8b1653240376955d2"
DAY = 86400


# --- fixtures and helpers ----------------------------------------------------------------------


def site_id(emu: Emulator, name: str) -> str:
    return next(site["id"] for site in emu.sites if site["name"] == name)


def authorize_params(
    client: ClientRegistration, scopes: str, redirect_uri: str = CALLBACK, **extra
) -> dict:
    params = {
        "audience": "api.atlassian.com",
        "client_id": client.client_id,
        "scope": scopes,
        "redirect_uri": redirect_uri,
        "state": "state-123",
        "response_type": "code",
        "prompt": "consent",
    }
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


def get_authorize(emu, http, client=None, scopes="read:me offline_access", **params):
    client = client or emu.default_client
    return http.get(
        f"{emu.auth_base_url}/authorize", params=authorize_params(client, scopes, **params)
    )


def consent_request_id(page: str) -> str:
    return re.search(r'name="consent_request" value="([^"]+)"', page).group(1)


def decide(emu, http, page: str, decision: str, site: str | None = None) -> httpx.Response:
    form = {"consent_request": consent_request_id(page), "decision": decision}
    if site is not None:
        form["site"] = site
    return http.post(f"{emu.auth_base_url}/authorize/decision", data=form)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def consent(
    emu, http, scopes="read:me offline_access", site=ACME, client=None, redirect_uri=CALLBACK
) -> str:
    """Go through the consent page as a person would; return the code."""
    page = get_authorize(emu, http, client, scopes, redirect_uri=redirect_uri)
    assert page.status_code == 200, page.text
    answer = decide(emu, http, page.text, "accept", site_id(emu, site))
    assert answer.status_code == 302
    assert answer.headers["location"].startswith(redirect_uri)
    query = query_of(answer.headers["location"])
    assert query["state"] == "state-123"
    return query["code"]


def token_request(emu, http, body: dict) -> httpx.Response:
    return http.post(f"{emu.auth_base_url}/oauth/token", json=body)


def exchange(emu, http, code, client=None, redirect_uri=CALLBACK) -> httpx.Response:
    client = client or emu.default_client
    return token_request(
        emu,
        http,
        {
            "grant_type": "authorization_code",
            "client_id": client.client_id,
            "client_secret": client.client_secret.reveal(),
            "code": code,
            "redirect_uri": redirect_uri,
        },
    )


def refresh(emu, http, refresh_token, client=None) -> httpx.Response:
    client = client or emu.default_client
    return token_request(
        emu,
        http,
        {
            "grant_type": "refresh_token",
            "client_id": client.client_id,
            "client_secret": client.client_secret.reveal(),
            "refresh_token": refresh_token,
        },
    )


def login(emu, http, scopes="read:me offline_access", site=ACME, client=None) -> dict:
    response = exchange(emu, http, consent(emu, http, scopes, site, client), client)
    assert response.status_code == 200, response.text
    return response.json()


def api_get(emu, http, path, token) -> httpx.Response:
    return http.get(f"{emu.api_base_url}{path}", headers={"Authorization": f"Bearer {token}"})


def jira(emu, name, rest="/rest/api/3/myself") -> str:
    return f"/ex/jira/{site_id(emu, name)}{rest}"


def confluence(emu, name, rest="/wiki/rest/api/space") -> str:
    return f"/ex/confluence/{site_id(emu, name)}{rest}"


def page_text(response: httpx.Response) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", response.text)))


def assert_error_page(response: httpx.Response, *needles: str) -> None:
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    text = page_text(response)
    for needle in needles:
        assert needle in text, text


def report(emu, http, token, accounts) -> httpx.Response:
    return http.post(
        f"{emu.api_base_url}/app/report-accounts/",
        json={"accounts": accounts},
        headers={"Authorization": f"Bearer {token}"},
    )


# --- scope classification ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "api"),
    [
        ("read:jira-work", "jira"),
        ("manage:jira-webhook", "jira"),
        ("read:user:jira", "jira"),
        ("read:sprint:jira-software", "jira"),
        ("read:servicedesk-request", "jira"),
        ("read:servicemanagement-insight-objects", "jira"),
        ("read:confluence-space.summary", "confluence"),
        ("read:space:confluence", "confluence"),
        ("readonly:content.attachment:confluence", "confluence"),
        ("search:confluence", "confluence"),
        ("read:me", "identity"),
        ("read:account", "identity"),
        ("report:personal-data", "personal-data-reporting"),
        ("offline_access", None),
    ],
)
def test_api_of_scope_classifies_atlassian_scope_shapes(scope, api):
    assert api_of_scope(scope) == api


@pytest.mark.parametrize("scope", ["read:jira-work,read:me", "read-me", "READ:ME", "jira", ""])
def test_api_of_scope_rejects_unknown_shapes(scope):
    with pytest.raises(UnknownScope):
        api_of_scope(scope)


# --- the world and the Python API --------------------------------------------------------------


def test_default_world_has_one_user_two_sites_and_a_shared_default_client(emu):
    assert emu.user["account_id"] == "5b10ac8d82e05b22cc7d4ef5"
    assert {
        "account_type",
        "email",
        "name",
        "picture",
        "account_status",
        "nickname",
        "zoneinfo",
        "locale",
        "extended_profile",
    } <= set(emu.user)
    sites = {site["name"]: site for site in emu.sites}
    assert sites[ACME]["url"] == "https://acme.atlassian.net"
    assert sites[ACME]["products"] == ["jira", "confluence"]
    assert sites[GLOBEX]["products"] == ["jira"]
    client = emu.default_client
    assert isinstance(client.client_secret, Secret)
    assert client.client_secret.reveal() not in repr(client)
    assert set(client.redirect_uris) >= {
        "http://127.0.0.1:8765/callback",
        "http://localhost:8765/callback",
        "https://app.merge.dev/oauth/callback",
        "https://accounts.example-clerk.dev/v1/oauth_callback",
    }
    assert client.apis == ("identity", "jira", "confluence", "personal-data-reporting")
    assert client.sharing is True


def test_site_ids_are_stable_uuids():
    first, second = Emulator().sites, Emulator().sites
    assert first == second
    assert all(re.fullmatch(r"[0-9a-f-]{36}", site["id"]) for site in first)


def test_register_client_generates_credentials_and_validates(emu):
    client = emu.register_client(redirect_uris=("http://127.0.0.1:5555/cb",), apis=("identity",))
    assert client.client_id and client.client_secret.reveal()
    assert client.client_id != emu.default_client.client_id
    with pytest.raises(ValueError):
        emu.register_client(redirect_uris=("not a url",))
    with pytest.raises(ValueError):
        emu.register_client(apis=("bitbucket",))
    with pytest.raises(TypeError):
        emu.register_client(redirect_uris="http://127.0.0.1:5555/cb")


def test_settings_point_at_the_emulator(emu):
    settings = emulator_settings(emu, scopes=("read:me",))
    assert settings.auth_base_url == emu.auth_base_url
    assert settings.api_base_url == emu.api_base_url
    assert settings.client_id == emu.default_client.client_id
    assert settings.client_secret == emu.default_client.client_secret
    assert settings.redirect_uri == CALLBACK
    assert settings.scopes == ("read:me",)
    assert emu.auth_base_url != emu.api_base_url


def test_not_started_emulator_has_no_urls():
    with pytest.raises(RuntimeError):
        _ = Emulator().auth_base_url


def test_unknown_consent_site_is_refused():
    with pytest.raises(ValueError):
        Emulator(consent_site="umbrella")


# --- /authorize validation -----------------------------------------------------------------------


def test_authorize_unknown_client_is_an_error_page(emu, http):
    response = http.get(
        f"{emu.auth_base_url}/authorize",
        params=authorize_params(
            ClientRegistration("nope", Secret("x" * 10), (), (), True, "x"), "read:me"
        ),
    )
    assert_error_page(response, "unknown client_id")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:8765/callback/",  # trailing slash
        "http://127.0.0.1:8766/callback",  # port
        "https://127.0.0.1:8765/callback",  # scheme
        "http://127.0.0.1:8765/Callback",  # path case
        "https://evil.example/callback",
    ],
)
def test_authorize_with_unregistered_redirect_uri_never_redirects(emu, http, redirect_uri):
    response = get_authorize(emu, http, redirect_uri=redirect_uri)
    assert_error_page(response, "redirect_uri", redirect_uri)
    assert "redirect_uri_mismatch" in response.text


def test_authorize_scope_of_an_api_not_added_fails_at_consent(emu, http):
    client = emu.register_client(redirect_uris=(CALLBACK,), apis=("identity",))
    response = get_authorize(emu, http, client, "read:me read:jira-work")
    assert_error_page(response, "read:jira-work", "Jira API", "Permissions")


def test_authorize_offline_access_needs_no_api(emu, http):
    client = emu.register_client(redirect_uris=(CALLBACK,), apis=("identity",))
    assert get_authorize(emu, http, client, "read:me offline_access").status_code == 200


def test_authorize_app_not_shared_gets_something_went_wrong(emu, http):
    # Owned by grace; ada (the signed-in user) is not its owner.
    client = emu.register_client(redirect_uris=(CALLBACK,), sharing=False, owner="grace")
    response = get_authorize(emu, http, client, "read:me")
    assert_error_page(response, "Something went wrong")
    assert "sharing" not in response.text.lower()


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"audience": None}, "audience"),
        ({"audience": "api.example.com"}, "audience"),
        ({"response_type": "token"}, "response_type"),
        ({"response_type": None}, "response_type"),
        ({"state": None}, "state"),
        ({"scope": ""}, "scope"),
        ({"scope": "read:me,read:jira-work"}, "Unknown scope"),
        ({"scope": "read:me read:everything"}, "read:everything"),
    ],
)
def test_authorize_checks_every_parameter(emu, http, override, needle):
    params = authorize_params(emu.default_client, "read:me")
    params.update(override)
    params = {k: v for k, v in params.items() if v is not None}
    response = http.get(f"{emu.auth_base_url}/authorize", params=params)
    assert_error_page(response, needle)


def test_authorize_ignores_code_challenge(emu, http):
    response = get_authorize(emu, http, code_challenge="abc", code_challenge_method="S256")
    assert response.status_code == 200


# --- the consent page ----------------------------------------------------------------------------


def test_consent_page_shows_app_scopes_and_a_site_picker_with_accept_disabled(emu, http):
    response = get_authorize(emu, http, scopes="read:me read:jira-work offline_access")
    assert response.status_code == 200
    page = response.text
    assert emu.default_client.name in unescape(page)
    for scope in ("read:me", "read:jira-work", "offline_access"):
        assert scope in page
    select = re.search(r'<select id="site"[^>]*>(.*?)</select>', page, re.S).group(1)
    assert re.search(r'<option value="" selected disabled>Choose a site</option>', select)
    for site in emu.sites:
        assert f'value="{site["id"]}"' in select
    accept = re.search(r"<button[^>]*id=\"accept\"[^>]*>", page).group(0)
    assert "disabled" in accept
    deny = re.search(r"<button[^>]*id=\"deny\"[^>]*>", page).group(0)
    assert "disabled" not in deny
    assert re.search(r'<form method="post" action="/authorize/decision"', page)
    assert "accept.disabled = !site.value" in page  # the script that enables Accept


def test_deny_redirects_with_access_denied_and_the_state(emu, http):
    page = get_authorize(emu, http)
    answer = decide(emu, http, page.text, "deny")
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(CALLBACK + "?")
    query = query_of(location)
    assert query["error"] == "access_denied"
    assert query["error_description"]
    assert query["state"] == "state-123"
    assert "code" not in query


def test_accept_without_a_site_is_refused_and_the_person_can_retry(emu, http):
    page = get_authorize(emu, http).text
    assert_error_page(decide(emu, http, page, "accept"), "Choose a site")
    assert decide(emu, http, page, "accept", site_id(emu, ACME)).status_code == 302


def test_a_consent_request_is_answered_once(emu, http):
    page = get_authorize(emu, http).text
    assert decide(emu, http, page, "accept", site_id(emu, ACME)).status_code == 302
    assert_error_page(decide(emu, http, page, "accept", site_id(emu, ACME)), "expired")


def test_redirect_keeps_a_query_string_already_in_the_callback(emu, http):
    uri = "http://127.0.0.1:9999/cb?tenant=t1"
    client = emu.register_client(redirect_uris=(uri,))
    page = get_authorize(emu, http, client, redirect_uri=uri)
    location = decide(emu, http, page.text, "accept", site_id(emu, ACME)).headers["location"]
    assert location.startswith(uri + "&code=")
    assert query_of(location)["tenant"] == "t1"
    assert exchange(emu, http, query_of(location)["code"], client, uri).status_code == 200


# --- auto-consent ------------------------------------------------------------------------------


def test_auto_consent_redirects_with_a_code_for_the_consent_site(http):
    with Emulator(auto_consent=True, consent_site=GLOBEX) as emu:
        response = get_authorize(emu, http, scopes="read:me read:jira-work offline_access")
        assert response.status_code == 302
        query = query_of(response.headers["location"])
        assert query["state"] == "state-123"
        tokens = exchange(emu, http, query["code"]).json()
        resources = api_get(
            emu, http, "/oauth/token/accessible-resources", tokens["access_token"]
        ).json()
        assert [r["name"] for r in resources] == [GLOBEX]


def test_auto_consent_site_override_and_validation_still_apply(http):
    with Emulator(auto_consent=True) as emu:
        response = get_authorize(emu, http, emulator_site=GLOBEX, scopes="read:jira-work")
        tokens = exchange(emu, http, query_of(response.headers["location"])["code"]).json()
        resources = api_get(
            emu, http, "/oauth/token/accessible-resources", tokens["access_token"]
        ).json()
        assert [r["name"] for r in resources] == [GLOBEX]
        assert_error_page(
            get_authorize(emu, http, redirect_uri="http://127.0.0.1:1/x"), "redirect_uri"
        )


# --- code exchange -----------------------------------------------------------------------------


def test_code_exchange_with_offline_access_returns_a_refresh_token(emu, http):
    response = exchange(emu, http, consent(emu, http, "read:me read:jira-work offline_access"))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "scope", "token_type", "refresh_token"}
    assert body["expires_in"] == 3600
    assert body["token_type"] == "Bearer"
    assert body["scope"].split() == ["read:me", "read:jira-work", "offline_access"]
    assert body["access_token"] != body["refresh_token"]
    assert response.headers["cache-control"] == "no-store"


def test_code_exchange_without_offline_access_has_no_refresh_token(emu, http):
    body = exchange(emu, http, consent(emu, http, "read:me")).json()
    assert "refresh_token" not in body
    assert body["scope"] == "read:me"


def test_a_code_is_single_use(emu, http):
    code = consent(emu, http)
    assert exchange(emu, http, code).status_code == 200
    again = exchange(emu, http, code)
    assert again.status_code == 403
    assert again.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid authorization code",
    }


def test_a_code_expires_after_ten_minutes(emu, http):
    code = consent(emu, http)
    emu.advance_clock(601)
    response = exchange(emu, http, code)
    assert response.status_code == 403
    assert response.json()["error"] == "invalid_grant"


def test_a_made_up_code_is_invalid_grant(emu, http):
    response = exchange(emu, http, "not-a-code")
    assert response.status_code == 403
    assert response.json()["error_description"] == "Invalid authorization code"


def test_a_code_belongs_to_its_client(emu, http):
    other = emu.register_client(redirect_uris=(CALLBACK,))
    response = exchange(emu, http, consent(emu, http), client=other)
    assert response.status_code == 403
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("field", ["client_secret", "client_id"])
def test_wrong_client_credentials_are_401_access_denied(emu, http, field):
    code = consent(emu, http)
    client = emu.default_client
    body = {
        "grant_type": "authorization_code",
        "client_id": client.client_id,
        "client_secret": client.client_secret.reveal(),
        "code": code,
        "redirect_uri": CALLBACK,
    }
    body[field] = "wrong-" + body[field]
    response = token_request(emu, http, body)
    assert response.status_code == 401
    assert response.json() == {"error": "access_denied", "error_description": "Unauthorized"}
    assert exchange(emu, http, code).status_code == 200  # the code was not spent


def test_a_missing_client_secret_is_refused_pkce_or_not(emu, http):
    body = {
        "grant_type": "authorization_code",
        "client_id": emu.default_client.client_id,
        "code": consent(emu, http),
        "redirect_uri": CALLBACK,
        "code_verifier": "x" * 43,
    }
    assert token_request(emu, http, body).status_code == 401


def test_redirect_uri_must_match_the_one_used_at_authorize(emu, http):
    code = consent(emu, http)
    response = exchange(emu, http, code, redirect_uri="http://localhost:8765/callback")
    assert response.status_code == 403
    body = response.json()
    # Atlassian does not say why: the same answer as an unknown code (FACTS.md).
    assert body == {"error": "invalid_grant", "error_description": "Invalid authorization code"}


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({}, 400, "invalid_request"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "client_id": 5}, 400, "invalid_request"),
    ],
)
def test_token_endpoint_checks_its_body(emu, http, body, status, error):
    response = token_request(emu, http, body)
    assert response.status_code == status
    assert response.json()["error"] == error


def test_token_endpoint_refuses_a_body_that_is_not_a_json_object(emu, http):
    response = http.post(
        f"{emu.auth_base_url}/oauth/token",
        content=b"[1,2]",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400


# --- refresh tokens ----------------------------------------------------------------------------


def test_refresh_rotates_the_refresh_token(emu, http):
    first = login(emu, http, "read:me offline_access")
    second = refresh(emu, http, first["refresh_token"])
    assert second.status_code == 200
    body = second.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["access_token"] != first["access_token"]
    assert body["scope"] == first["scope"]
    assert refresh(emu, http, body["refresh_token"]).status_code == 200


def test_a_rotated_refresh_token_still_works_within_the_leeway(emu, http):
    first = login(emu, http)
    newest = refresh(emu, http, first["refresh_token"]).json()["refresh_token"]
    emu.advance_clock(9 * 60)
    again = refresh(emu, http, first["refresh_token"])  # a concurrent refresh, say
    assert again.status_code == 200
    assert again.json()["refresh_token"] not in (first["refresh_token"], newest)
    assert refresh(emu, http, newest).status_code == 200


def test_reusing_a_rotated_refresh_token_after_the_leeway_revokes_them_all(emu, http):
    first = login(emu, http)
    newest = refresh(emu, http, first["refresh_token"]).json()
    emu.advance_clock(11 * 60)
    reuse = refresh(emu, http, first["refresh_token"])
    assert reuse.status_code == 403
    assert reuse.json() == {
        "error": "invalid_grant",
        "error_description": "Unknown or invalid refresh token.",
    }
    newest_refresh = refresh(emu, http, newest["refresh_token"])
    assert newest_refresh.status_code == 403
    assert newest_refresh.json()["error"] == "invalid_grant"
    # Only a new consent helps.
    fresh = login(emu, http)
    assert refresh(emu, http, fresh["refresh_token"]).status_code == 200


def test_a_refresh_token_expires_after_90_idle_days_and_use_resets_the_clock(emu, http):
    tokens = login(emu, http)
    emu.advance_clock(89 * DAY)
    tokens = refresh(emu, http, tokens["refresh_token"]).json()
    emu.advance_clock(89 * DAY)
    assert refresh(emu, http, tokens["refresh_token"]).status_code == 200
    idle = login(emu, http)
    emu.advance_clock(90 * DAY + 1)
    response = refresh(emu, http, idle["refresh_token"])
    assert response.status_code == 403
    assert response.json()["error_description"] == "Unknown or invalid refresh token."


def test_an_unknown_refresh_token_is_invalid_grant(emu, http):
    response = refresh(emu, http, "made-up")
    assert response.status_code == 403
    assert response.json()["error"] == "invalid_grant"


def test_a_refresh_token_belongs_to_its_client(emu, http):
    tokens = login(emu, http)
    other = emu.register_client(redirect_uris=(CALLBACK,))
    assert refresh(emu, http, tokens["refresh_token"], client=other).status_code == 403


def test_refresh_with_a_wrong_secret_is_access_denied(emu, http):
    tokens = login(emu, http)
    wrong = ClientRegistration(
        emu.default_client.client_id, Secret("wrong-secret"), (), (), True, "x"
    )
    response = refresh(emu, http, tokens["refresh_token"], client=wrong)
    assert response.status_code == 401
    assert response.json()["error"] == "access_denied"
    assert refresh(emu, http, tokens["refresh_token"]).status_code == 200


def test_revoking_the_app_kills_every_token_of_the_grant(emu, http):
    tokens = login(emu, http)
    assert api_get(emu, http, "/me", tokens["access_token"]).status_code == 200
    assert emu.revoke() == 1
    assert api_get(emu, http, "/me", tokens["access_token"]).status_code == 401
    assert refresh(emu, http, tokens["refresh_token"]).status_code == 403
    assert emu.revoke() == 0


def test_revoke_spares_other_apps(emu, http):
    other = emu.register_client(redirect_uris=(CALLBACK,))
    mine = login(emu, http)
    theirs = login(emu, http, client=other)
    emu.revoke(other.client_id)
    assert api_get(emu, http, "/me", mine["access_token"]).status_code == 200
    assert api_get(emu, http, "/me", theirs["access_token"]).status_code == 401


# --- the gateway -------------------------------------------------------------------------------


def test_access_token_expires_after_an_hour(emu, http):
    tokens = login(emu, http)
    emu.advance_clock(3599)
    assert api_get(emu, http, "/me", tokens["access_token"]).status_code == 200
    emu.advance_clock(2)
    response = api_get(emu, http, "/me", tokens["access_token"])
    assert response.status_code == 401
    assert response.json() == {"code": 401, "message": "Unauthorized"}
    assert "x-failure-category" not in response.headers


def test_no_or_bad_token_is_401(emu, http):
    assert http.get(f"{emu.api_base_url}/me").status_code == 401
    assert api_get(emu, http, "/me", "forged").status_code == 401
    basic = http.get(f"{emu.api_base_url}/me", headers={"Authorization": "Basic eDp5"})
    assert basic.status_code == 401


def test_me_returns_the_account(emu, http):
    tokens = login(emu, http)
    response = api_get(emu, http, "/me", tokens["access_token"])
    assert response.json() == emu.user


def test_a_missing_scope_is_401_with_the_scope_check_header(emu, http):
    tokens = login(emu, http, "read:jira-work offline_access")
    for path in ("/me", jira(emu, ACME, "/rest/api/3/myself")):
        response = api_get(emu, http, path, tokens["access_token"])
        assert response.status_code == 401
        assert response.json() == {"code": 401, "message": "Unauthorized; scope does not match"}
        assert response.headers["x-failure-category"] == "FAILURE_CLIENT_SCOPE_CHECK"


def test_jira_endpoints_and_their_scopes(emu, http):
    token = login(emu, http, "read:jira-user read:jira-work")["access_token"]
    myself = api_get(emu, http, jira(emu, ACME, "/rest/api/3/myself"), token)
    assert myself.status_code == 200
    assert myself.json()["accountId"] == emu.user["account_id"]
    info = api_get(emu, http, jira(emu, ACME, "/rest/api/3/serverInfo"), token).json()
    assert info["baseUrl"] == "https://acme.atlassian.net"
    projects = api_get(emu, http, jira(emu, ACME, "/rest/api/3/project/search"), token).json()
    assert projects["total"] == len(projects["values"]) >= 1


def test_jira_myself_accepts_the_granular_scopes(emu, http):
    granular = "read:user:jira read:application-role:jira read:group:jira read:avatar:jira"
    token = login(emu, http, granular)["access_token"]
    assert api_get(emu, http, jira(emu, ACME), token).status_code == 200
    partial = login(emu, http, "read:user:jira read:group:jira")["access_token"]
    assert api_get(emu, http, jira(emu, ACME), partial).status_code == 401


def test_server_info_needs_only_a_jira_grant_on_the_site(emu, http):
    token = login(emu, http, "read:me")["access_token"]
    assert api_get(emu, http, jira(emu, ACME, "/rest/api/3/serverInfo"), token).status_code == 401
    token = login(emu, http, "manage:jira-webhook")["access_token"]
    assert api_get(emu, http, jira(emu, ACME, "/rest/api/3/serverInfo"), token).status_code == 200


def test_confluence_endpoints_and_their_scopes(emu, http):
    token = login(
        emu, http, "read:confluence-space.summary read:confluence-user read:space:confluence"
    )["access_token"]
    v1 = api_get(emu, http, confluence(emu, ACME), token)
    assert v1.status_code == 200 and v1.json()["results"]
    user = api_get(emu, http, confluence(emu, ACME, "/wiki/rest/api/user/current"), token)
    assert user.json()["accountId"] == emu.user["account_id"]
    v2 = api_get(emu, http, confluence(emu, ACME, "/wiki/api/v2/spaces"), token)
    assert v2.status_code == 200 and v2.json()["results"]
    narrow = login(emu, http, "read:confluence-user")["access_token"]
    denied = api_get(emu, http, confluence(emu, ACME, "/wiki/api/v2/spaces"), narrow)
    assert denied.status_code == 401
    assert denied.headers["x-failure-category"] == "FAILURE_CLIENT_SCOPE_CHECK"


def test_a_scope_granted_on_one_site_does_not_carry_to_another(emu, http):
    acme = login(emu, http, "read:jira-user read:jira-work offline_access", site=ACME)
    globex = login(emu, http, "read:jira-work offline_access", site=GLOBEX)
    for token in (acme["access_token"], globex["access_token"]):
        assert api_get(emu, http, jira(emu, ACME), token).status_code == 200
        denied = api_get(emu, http, jira(emu, GLOBEX), token)
        assert denied.status_code == 401
        assert denied.headers["x-failure-category"] == "FAILURE_CLIENT_SCOPE_CHECK"
        assert (
            api_get(emu, http, jira(emu, GLOBEX, "/rest/api/3/project/search"), token).status_code
            == 200
        )


def test_a_site_outside_the_grant_is_401(emu, http):
    token = login(emu, http, "read:jira-user", site=ACME)["access_token"]
    response = api_get(emu, http, jira(emu, GLOBEX), token)
    assert response.status_code == 401
    assert response.headers["x-failure-category"] == "FAILURE_CLIENT_SCOPE_CHECK"
    made_up = api_get(
        emu, http, "/ex/jira/00000000-0000-0000-0000-000000000000/rest/api/3/myself", token
    )
    assert made_up.status_code == 401


def test_consenting_again_for_a_site_replaces_its_scopes(emu, http):
    login(emu, http, "read:jira-user", site=ACME)
    token = login(emu, http, "read:jira-work", site=ACME)["access_token"]
    assert api_get(emu, http, jira(emu, ACME), token).status_code == 401


def test_accessible_resources_lists_one_entry_per_product_per_site(emu, http):
    login(emu, http, "read:me read:jira-work read:confluence-space.summary", site=ACME)
    token = login(emu, http, "read:jira-work read:confluence-space.summary read:me", site=GLOBEX)[
        "access_token"
    ]
    response = api_get(emu, http, "/oauth/token/accessible-resources", token)
    assert response.status_code == 200
    resources = response.json()
    for entry in resources:
        assert set(entry) == {"id", "name", "url", "scopes", "avatarUrl"}
    by_id: dict[str, list[dict]] = {}
    for entry in resources:
        by_id.setdefault(entry["id"], []).append(entry)
    acme_entries = by_id[site_id(emu, ACME)]
    assert sorted(sorted(e["scopes"]) for e in acme_entries) == [
        ["read:confluence-space.summary"],
        ["read:jira-work"],
    ]
    assert [e["scopes"] for e in by_id[site_id(emu, GLOBEX)]] == [["read:jira-work"]]
    assert all(e["url"] == "https://acme.atlassian.net" for e in acme_entries)


def test_an_identity_only_grant_has_no_accessible_resources(emu, http):
    token = login(emu, http, "read:me")["access_token"]
    assert api_get(emu, http, "/oauth/token/accessible-resources", token).json() == []


def test_confluence_on_a_site_without_confluence_is_404(emu, http):
    token = login(emu, http, "read:confluence-space.summary read:jira-work", site=GLOBEX)[
        "access_token"
    ]
    assert api_get(emu, http, confluence(emu, GLOBEX), token).status_code == 404


def test_an_unknown_jira_path_is_404_in_jira_shape(emu, http):
    token = login(emu, http, "read:jira-work")["access_token"]
    response = api_get(emu, http, jira(emu, ACME, "/rest/api/3/nothing-here"), token)
    assert response.status_code == 404
    body = response.json()
    assert isinstance(body["errorMessages"], list) and body["errorMessages"]
    assert body["errors"] == {}


def test_a_site_url_path_is_not_the_gateway(emu, http):
    token = login(emu, http, "read:jira-work")["access_token"]
    assert api_get(emu, http, "/rest/api/3/myself", token).status_code == 404


def test_rate_limit_headers_on_every_gateway_response(emu, http):
    token = login(emu, http, "read:me")["access_token"]
    for path in ("/me", "/oauth/token/accessible-resources", "/nothing"):
        response = api_get(emu, http, path, token)
        assert response.headers["x-ratelimit-limit"] == "500"
        assert int(response.headers["x-ratelimit-remaining"]) < 500
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", response.headers["x-ratelimit-reset"]
        )
        assert "x-ratelimit-nearlimit" not in response.headers


def test_spending_the_budget_gets_near_limit_then_429(http):
    with Emulator(clock=lambda: 1_700_000_000.0) as emu:  # a frozen clock: one window
        token = login(emu, http, "read:me")["access_token"]
        seen_near = False
        for _ in range(500):
            response = api_get(emu, http, "/me", token)
            assert response.status_code == 200
            seen_near = seen_near or response.headers.get("x-ratelimit-nearlimit") == "true"
        assert seen_near
        limited = api_get(emu, http, "/me", token)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["ratelimit-reason"]
        assert limited.headers["x-ratelimit-remaining"] == "0"
        emu.advance_clock(60)
        assert api_get(emu, http, "/me", token).status_code == 200


# --- personal data reporting -------------------------------------------------------------------


def test_report_accounts_answers(emu, http):
    token = login(emu, http, "report:personal-data")["access_token"]
    me = emu.user["account_id"]
    nothing = report(
        emu,
        http,
        token,
        [
            {"accountId": ACTIVE, "updatedAt": "2017-05-12T00:00:00.000Z"},
            {"accountId": me, "updatedAt": "2099-01-01T00:00:00.000Z"},
        ],
    )
    assert nothing.status_code == 204
    assert nothing.headers["cycle-period"] == "P7D"
    answer = report(
        emu,
        http,
        token,
        [
            {"accountId": CLOSED, "updatedAt": "2017-05-12T00:00:00.000Z"},
            {"accountId": me, "updatedAt": "2017-05-12T00:00:00.000Z"},
            {"accountId": ACTIVE, "updatedAt": "2017-05-12T00:00:00.000Z"},
        ],
    )
    assert answer.status_code == 200
    assert answer.headers["cycle-period"] == "P7D"
    assert answer.json() == {
        "accounts": [
            {"accountId": CLOSED, "status": "closed"},
            {"accountId": me, "status": "updated"},
        ]
    }


def test_report_accounts_refuses_more_than_90_and_malformed(emu, http):
    token = login(emu, http, "report:personal-data")["access_token"]
    many = [{"accountId": f"id{i}", "updatedAt": "2017-05-12T00:00:00.000Z"} for i in range(91)]
    for accounts in (
        many,
        [],
        [{"accountId": ACTIVE}],
        [{"accountId": ACTIVE, "updatedAt": "yesterday"}],
        [{"accountId": "", "updatedAt": "2017-05-12T00:00:00.000Z"}],
    ):
        response = report(emu, http, token, accounts)
        assert response.status_code == 400
        assert set(response.json()) == {"errorType", "errorMessage"}
        assert response.headers["cycle-period"] == "P7D"
    assert report(emu, http, token, many[:90]).status_code == 204


def test_report_accounts_needs_its_scope(emu, http):
    token = login(emu, http, "read:me")["access_token"]
    response = report(emu, http, token, [{"accountId": CLOSED, "updatedAt": "2017-05-12"}])
    assert response.status_code == 401
    assert response.headers["x-failure-category"] == "FAILURE_CLIENT_SCOPE_CHECK"


# --- faults ------------------------------------------------------------------------------------


def test_an_injected_429_carries_retry_after_and_rate_limit_headers(emu, http):
    token = login(emu, http)["access_token"]
    emu.inject_fault("/me", status=429, retry_after=7)
    limited = api_get(emu, http, "/me", token)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.headers["x-ratelimit-nearlimit"] == "true"
    assert limited.headers["ratelimit-reason"]
    assert "x-ratelimit-reset" in limited.headers
    assert api_get(emu, http, "/me", token).status_code == 200  # times=1


def test_an_injected_token_endpoint_fault_spares_accessible_resources(emu, http):
    tokens = login(emu, http)
    emu.inject_fault("/oauth/token", status=503, times=2, retry_after=0.5)
    assert (
        api_get(emu, http, "/oauth/token/accessible-resources", tokens["access_token"]).status_code
        == 200
    )
    for _ in range(2):
        response = refresh(emu, http, tokens["refresh_token"])
        assert response.status_code == 503
        assert response.headers["retry-after"] == "0.5"
        assert response.json()["error"] == "temporarily_unavailable"
    assert refresh(emu, http, tokens["refresh_token"]).status_code == 200


def test_an_injected_500_with_a_custom_body_and_headers(emu, http):
    token = login(emu, http, "read:jira-work")["access_token"]
    emu.inject_fault(
        "/ex/jira/",
        status=500,
        body={"errorMessages": ["boom"], "errors": {}},
        headers={"X-Test": "yes"},
    )
    response = api_get(emu, http, jira(emu, ACME, "/rest/api/3/project/search"), token)
    assert response.status_code == 500
    assert response.json()["errorMessages"] == ["boom"]
    assert response.headers["x-test"] == "yes"
    assert emu.request_log[-1] == ("GET", jira(emu, ACME, "/rest/api/3/project/search"), 500)


def test_an_injected_delay_is_server_side(emu, http):
    token = login(emu, http)["access_token"]
    emu.inject_fault("/me", status=None, delay=2.0)
    with httpx.Client(trust_env=False, timeout=0.2) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            api_get(emu, impatient, "/me", token)


def test_fault_arguments_are_checked(emu):
    with pytest.raises(ValueError):
        emu.inject_fault("me")
    with pytest.raises(ValueError):
        emu.inject_fault("/me", times=0)
    with pytest.raises(ValueError):
        emu.inject_fault("/_emulator/health")


# --- servers and admin -------------------------------------------------------------------------


def test_each_server_serves_only_its_own_paths(emu, http):
    tokens = login(emu, http)
    auth_header = {"Authorization": f"Bearer {tokens['access_token']}"}
    for path in ("/me", "/oauth/token/accessible-resources", "/app/report-accounts/"):
        assert http.get(f"{emu.auth_base_url}{path}", headers=auth_header).status_code == 404
    assert (
        http.get(
            f"{emu.api_base_url}/authorize", params=authorize_params(emu.default_client, "read:me")
        ).status_code
        == 404
    )
    assert http.post(f"{emu.api_base_url}/oauth/token", json={}).status_code == 404
    assert http.get(f"{emu.api_base_url}/_emulator/health").status_code == 404


def test_wrong_methods_are_405(emu, http):
    assert http.get(f"{emu.auth_base_url}/oauth/token").status_code == 405
    tokens = login(emu, http)
    response = http.post(
        f"{emu.api_base_url}/me",
        json={},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert response.status_code == 405


@pytest.fixture
def admin(emu):
    """A client of the emulator's admin endpoints, with its admin token (test_emulator_server
    checks that nothing else gets in)."""
    with httpx.Client(base_url=f"{emu.auth_base_url}/_emulator", trust_env=False, timeout=30,
                      headers={"Authorization": f"Bearer {emu.admin_token}"}) as client:
        yield client


def test_admin_endpoints_drive_the_emulator_over_http(emu, http, admin):
    health = admin.get("/health").json()
    assert health["status"] == "ok"
    assert health["api_base_url"] == emu.api_base_url
    assert health["default_client_id"] == emu.default_client.client_id

    created = admin.post(
        "/clients",
        json={"redirect_uris": ["http://127.0.0.1:4444/cb"], "apis": ["identity"],
              "name": "Remote"},
    )
    assert created.status_code == 201
    registration = created.json()
    assert registration["client_secret"]
    assert (
        emu.client(registration["client_id"]).client_secret.reveal()
        == registration["client_secret"]
    )
    fetched = admin.get(f"/clients/{registration['client_id']}").json()
    assert fetched == registration

    tokens = login(emu, http)
    assert admin.post("/faults", json={"path_prefix": "/me", "status": 502}).status_code == 201
    assert api_get(emu, http, "/me", tokens["access_token"]).status_code == 502

    assert admin.post("/clock", json={"advance": 3601}).status_code == 200
    assert api_get(emu, http, "/me", tokens["access_token"]).status_code == 401

    revoked = admin.post("/revoke", json={"client_id": emu.default_client.client_id})
    assert revoked.json() == {"revoked_grants": 1}
    assert refresh(emu, http, tokens["refresh_token"]).status_code == 403

    log = admin.get("/requests").json()
    assert ["GET", "/me", 502] in log


def test_admin_endpoints_refuse_bad_input(admin):
    assert admin.post("/faults", json={"status": 500}).status_code == 400
    assert admin.post("/faults", json={"path_prefix": "/me", "bogus": 1}).status_code == 400
    assert admin.post("/clock", json={"advance": "soon"}).status_code == 400
    assert admin.post("/clock", data={"advance": "1"}).status_code == 400  # not JSON
    assert admin.post("/clients", json={"apis": ["bitbucket"]}).status_code == 400
    assert admin.get("/clients/nobody").status_code == 404
    assert admin.get("/nothing").status_code == 404


def test_state_path_shares_one_world_between_emulators(tmp_path, http):
    state = tmp_path / "emulator-state.json"
    with Emulator(state_path=state) as first, Emulator(state_path=state) as second:
        assert first.default_client == second.default_client
        assert oct(state.stat().st_mode & 0o777) == "0o600"
        tokens = login(first, http)
        # A token issued by one process works against the other, and refreshes there.
        assert api_get(second, http, "/me", tokens["access_token"]).status_code == 200
        rotated = refresh(second, http, tokens["refresh_token"]).json()
        assert refresh(first, http, rotated["refresh_token"]).status_code == 200
        # Clock, faults and revocation are shared too.
        second.inject_fault("/me", status=500)
        assert api_get(first, http, "/me", tokens["access_token"]).status_code == 500
        first.advance_clock(3601)
        assert api_get(second, http, "/me", tokens["access_token"]).status_code == 401
        client = first.register_client(redirect_uris=("http://127.0.0.1:7777/cb",))
        assert second.client(client.client_id) == client
        second.revoke()
        assert refresh(first, http, rotated["refresh_token"]).status_code == 403
    # A later emulator on the same file finds the same world.
    assert Emulator(state_path=state).default_client == first.default_client
    text = state.read_text()
    assert tokens["access_token"] not in text and tokens["refresh_token"] not in text


def test_read_state_is_what_a_state_file_holds_and_none_without_one(tmp_path):
    state = tmp_path / "emulator-state.json"
    assert read_state(state) is None
    assert list(tmp_path.iterdir()) == []  # a look makes nothing
    emu = Emulator(state_path=state)
    emu.advance_clock(7)
    data = read_state(state)
    assert data["clock_offset"] == 7 and data["default_client_id"] == emu.default_client.client_id
    assert type(data) is dict and type(data["clients"]) is dict


FAKE_SECRET = "a-client-secret-only-this-test-knows"


def valid_state(tmp_path) -> dict:
    """A state as the emulator writes it, its client secrets swapped for FAKE_SECRET (the
    corrupt copies are files the session's secret scan reads)."""
    state = tmp_path / "made" / "emulator-state.json"
    Emulator(state_path=state)
    data = read_state(state)
    for client in [*data["clients"].values(), *data["world"]["service_accounts"]]:
        client["client_secret"] = FAKE_SECRET
    return data


@pytest.mark.parametrize(("corrupt", "problem"), [
    (lambda good: "{not json", "is not JSON (broken or cut short at line 1, column 2"),
    (lambda good: json.dumps(good)[: len(json.dumps(good)) // 2], "is not JSON"),  # truncated
    (lambda good: "", "is not JSON"),
    (lambda good: b"\xff\xfe{}", "is not UTF-8"),
    (lambda good: "[]", "is not a state this playbook can read"),
    (lambda good: json.dumps({"clients": {}}), "is not a state this playbook can read"),
    (lambda good: json.dumps({**good, "version": 99}), "written by a newer"),
    (lambda good: json.dumps({**good, "clients": []}), "wrong shape: clients is a list"),
    (lambda good: json.dumps({**good, "grants": {"g": 1}}), "grants holds something"),
    (lambda good: json.dumps({**good, "faults": "none"}), "faults is a str"),
    (lambda good: json.dumps({**good, "world": {"users": []}}), "world.users"),
    (lambda good: json.dumps({**good, "default_client_id": "gone"}), "default_client_id"),
])
def test_a_corrupt_state_file_is_refused_naming_it_and_left_as_it_is(tmp_path, corrupt,
                                                                      problem):
    content = corrupt(valid_state(tmp_path))
    state = tmp_path / "state.json"
    state.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = state.read_bytes()
    with pytest.raises(StateFileError) as caught:
        Emulator(state_path=state)
    assert caught.value.message.startswith(f"The emulator state file {state} ")
    assert problem in caught.value.message
    assert f"Delete {state}" in caught.value.hint
    assert state.read_bytes() == before  # never replaced: it may hold the user's world
    assert FAKE_SECRET not in str(caught.value)  # the message never quotes the file


def test_secrets_are_never_logged_or_printed(emu, http, caplog, capfd):
    caplog.set_level(logging.DEBUG, logger="atlassian_playbook")
    tokens = login(emu, http)
    refreshed = refresh(emu, http, tokens["refresh_token"]).json()
    api_get(emu, http, "/me", refreshed["access_token"])
    exchange(emu, http, "x")  # an error path
    secrets_seen = [
        emu.default_client.client_secret.reveal(),
        tokens["access_token"],
        tokens["refresh_token"],
        refreshed["access_token"],
    ]
    out, err = capfd.readouterr()
    for secret in secrets_seen:
        assert secret not in caplog.text
        assert secret not in out + err
    assert err == ""  # http.server's request logging is silenced


def test_many_requests_are_served(emu, http):
    token = login(emu, http)["access_token"]
    statuses = {api_get(emu, http, "/me", token).status_code for _ in range(200)}
    assert statuses == {200}


def test_serve_prints_urls_and_client_id_but_not_the_secret(tmp_path):
    state = tmp_path / "state.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "atlassian_playbook.emulator", "--state", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        output = "".join(lines)
        secret = read_state(state)
        client_id = secret["default_client_id"]
        assert f"ATLASSIAN_CLIENT_ID={client_id}" in output
        assert secret["clients"][client_id]["client_secret"] not in output
        assert re.search(r"ATLASSIAN_AUTH_BASE_URL=http://127\.0\.0\.1:\d+", output)
        assert f"/_emulator/clients/{client_id}" in output
        auth_url = re.search(r"ATLASSIAN_AUTH_BASE_URL=(\S+)", output).group(1)
        admin_token = re.search(r"admin token .*: (\S+)$", output, re.M).group(1)
        with httpx.Client(trust_env=False, timeout=10) as client:
            assert client.get(f"{auth_url}/_emulator/health").status_code == 401
            answer = client.get(f"{auth_url}/_emulator/health",
                                headers={"Authorization": f"Bearer {admin_token}"})
            assert answer.json()["status"] == "ok"
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0  # a bound for a loaded machine, not a timing
        process.stdout.close()
        process.stderr.close()


def test_auto_consent_deny_redirects_with_access_denied_and_state():
    with Emulator(auto_consent="deny") as emu:
        client = emu.default_client
        response = httpx.get(
            f"{emu.auth_base_url}/authorize",
            params={"audience": "api.atlassian.com", "client_id": client.client_id,
                    "scope": "read:me", "redirect_uri": client.redirect_uris[0],
                    "state": "s1", "response_type": "code", "prompt": "consent"},
        )
    assert response.status_code == 302
    location = httpx.URL(response.headers["location"])
    assert location.params["error"] == "access_denied"
    assert location.params["state"] == "s1"
    assert "code" not in location.params


def test_settings_never_point_at_the_users_real_token_store(tmp_path):
    from atlassian_playbook.config import Settings

    with Emulator() as emu:
        assert emulator_settings(emu).token_store != Settings().token_store
    with Emulator(state_path=tmp_path / "emulator-state.json") as emu:
        assert emulator_settings(emu).token_store == tmp_path / "tokens.json"
