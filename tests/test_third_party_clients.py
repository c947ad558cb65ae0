"""Two widely used OAuth 2.0 client libraries, in their default configurations, against the
emulator: if the emulator refuses what they send, it fails real clients for no real reason
(FACTS.md, "Body formats and client authentication").

What each sends by default (read in their source, Authlib 1.9 and requests-oauthlib 2.0 on
oauthlib 3+, and asserted below from the wire):

* **Authlib** ``authlib.integrations.requests_client.OAuth2Session`` with a ``client_secret``:
  ``token_endpoint_auth_method`` defaults to ``client_secret_basic``. The code exchange is a
  form body (``application/x-www-form-urlencoded;charset=UTF-8``) ``grant_type, code,
  redirect_uri`` with the client id and secret in HTTP Basic
  only; a refresh (explicit, or automatic when the token is expired and ``token_endpoint`` is
  set) is a form body ``grant_type, refresh_token, scope``, Basic again, and calls the
  ``update_token(token, refresh_token=old)`` hook.
* **requests-oauthlib** ``OAuth2Session.fetch_token(token_url, authorization_response=...,
  client_secret=...)``: with no ``auth`` and ``include_client_id`` left at ``None`` it builds
  HTTP Basic from the session's client id and the secret, and the form body is
  ``grant_type, code, redirect_uri`` (no client id, no secret). Its refresh, as its docs show
  it (``auto_refresh_url`` plus ``auto_refresh_kwargs={"client_id", "client_secret"}``, and
  ``token_updater`` as the hook), is a form body ``grant_type, scope, refresh_token,
  client_id, client_secret`` with no Basic header. oauthlib refuses plain http unless
  ``OAUTHLIB_INSECURE_TRANSPORT`` is set, which loopback needs.

Each flow: the authorization URL (``audience``, ``prompt=consent``, ``offline_access``),
auto-consent, the code exchange, accessible-resources, ``/me`` and Jira ``myself``, a refresh
that rotates (the hook sees the new refresh token), reuse of the old refresh token inside the
10-minute leeway (works) and after it (403 ``invalid_grant``, and the whole grant dies).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession
from oauthlib.oauth2 import AccessDeniedError, InvalidGrantError
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session as RequestsOAuthlibSession

SCOPES = "read:me read:jira-user offline_access"
AUTHORIZE_EXTRAS = {"audience": "api.atlassian.com", "prompt": "consent"}
INVALID_REFRESH = {
    "error": "invalid_grant",
    "error_description": "Unknown or invalid refresh token.",
}
ACCESS_DENIED = {"error": "access_denied", "error_description": "Unauthorized"}
SCOPE_MISMATCH = {"code": 401, "message": "Unauthorized; scope does not match"}


@pytest.fixture(autouse=True)
def oauthlib_allows_loopback_http(monkeypatch):
    """oauthlib refuses http:// URLs unless told otherwise; the emulator is plain loopback."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


# --- what went over the wire -------------------------------------------------------------------


@dataclass
class Sent:
    """One token-endpoint request as the server saw it, and the answer."""

    content_type: str
    basic: tuple[str, str] | None  # (client id, secret) from HTTP Basic, if any
    form: dict[str, str]
    status: int
    answer: dict


class Wire:
    """Records every response a ``requests.Session`` got (a response hook), so a test can
    assert what a library sent by default instead of trusting its documentation."""

    def __init__(self, session: requests.Session) -> None:
        self.responses: list[requests.Response] = []
        session.hooks["response"].append(self._record)

    def _record(self, response: requests.Response, *args, **kwargs) -> None:
        self.responses.append(response)

    def token_requests(self) -> list[Sent]:
        sent = []
        for response in self.responses:
            if urlsplit(response.request.url).path != "/oauth/token":
                continue
            request = response.request
            header = request.headers.get("Authorization", "")
            basic = None
            if header.startswith("Basic "):
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                basic = (user, password)
            body = request.body or ""
            body = body.decode() if isinstance(body, bytes) else body
            form = {key: values[0] for key, values in parse_qs(body).items()}
            sent.append(
                Sent(
                    request.headers.get("Content-Type", ""),
                    basic,
                    form,
                    response.status_code,
                    response.json(),
                )
            )
        return sent


# --- the two libraries, as a user would write them ---------------------------------------------


def follow_to_callback(authorization_url: str) -> str:
    """The browser's part: with auto-consent /authorize redirects straight to the callback
    with code and state. Stop there (nothing listens on the callback URL) and return it."""
    with requests.Session() as browser:
        browser.trust_env = False  # loopback only: no proxy from the environment
        answer = browser.get(authorization_url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


@dataclass
class Connection:
    """A library's session after the code exchange, with what the test needs to look at."""

    session: requests.Session
    first_token: dict
    authorization_url: str
    callback: str
    wire: Wire
    updates: list[dict] = field(default_factory=list)  # what the token-update hook received
    refresh_now: Callable[[str], dict] | None = None  # an explicit refresh with a given token


def authlib_login(emu, **session_options) -> Connection:
    info = emu.connection_info()
    secret = emu.default_client.client_secret.reveal()
    updates: list[dict] = []

    def update_token(token, refresh_token=None, access_token=None):
        updates.append(dict(token))  # a real app persists it here

    session = AuthlibSession(
        client_id=info["client_id"],
        client_secret=secret,
        scope=SCOPES,
        redirect_uri=info["callback_urls"][0],
        token_endpoint=info["token_url"],  # lets the session refresh an expired token itself
        update_token=update_token,
        **session_options,
    )
    session.trust_env = False
    wire = Wire(session)
    url, _state = session.create_authorization_url(info["authorize_url"], **AUTHORIZE_EXTRAS)
    callback = follow_to_callback(url)
    token = session.fetch_token(info["token_url"], authorization_response=callback)
    return Connection(
        session,
        dict(token),
        url,
        callback,
        wire,
        updates,
        refresh_now=lambda old: session.refresh_token(info["token_url"], refresh_token=old),
    )


def requests_oauthlib_login(emu, **fetch_options) -> Connection:
    info = emu.connection_info()
    secret = emu.default_client.client_secret.reveal()
    updates: list[dict] = []
    session = RequestsOAuthlibSession(
        info["client_id"],
        redirect_uri=info["callback_urls"][0],
        scope=SCOPES.split(),
        auto_refresh_url=info["token_url"],
        auto_refresh_kwargs={"client_id": info["client_id"], "client_secret": secret},
        token_updater=updates.append,  # a real app persists the rotated token here
    )
    session.trust_env = False
    wire = Wire(session)
    url, _state = session.authorization_url(info["authorize_url"], **AUTHORIZE_EXTRAS)
    callback = follow_to_callback(url)
    token = session.fetch_token(
        info["token_url"],
        authorization_response=callback,
        client_secret=secret,
        **fetch_options,
    )
    return Connection(
        session,
        dict(token),
        url,
        callback,
        wire,
        updates,
        refresh_now=lambda old: session.refresh_token(info["token_url"], refresh_token=old),
    )


LOGINS = {"authlib": authlib_login, "requests-oauthlib": requests_oauthlib_login}
by_library = pytest.mark.parametrize("login", LOGINS.values(), ids=LOGINS.keys())


def expire_locally(connection: Connection) -> None:
    """The hour passes for the client too: its copy of the token says it has expired, so the
    next call makes the library refresh on its own (as it would an hour later)."""
    connection.session.token = {**connection.session.token, "expires_at": time.time() - 120}


def bearer_get(emu, path: str, access_token: str) -> requests.Response:
    """A plain call with a given access token, outside any library's session."""
    with requests.Session() as plain:
        plain.trust_env = False
        return plain.get(
            f"{emu.api_base_url}{path}",
            timeout=10,
            headers={"Authorization": f"Bearer {access_token}"},
        )


# --- the flow -----------------------------------------------------------------------------------


@by_library
def test_authorization_url_carries_atlassian_parameters(emulator, login):
    connection = login(emulator)
    query = {k: v[0] for k, v in parse_qs(urlsplit(connection.authorization_url).query).items()}
    assert query["audience"] == "api.atlassian.com"
    assert query["prompt"] == "consent"
    assert query["response_type"] == "code"
    assert query["client_id"] == emulator.default_client.client_id
    assert query["redirect_uri"] == emulator.default_client.redirect_uris[0]
    assert set(query["scope"].split()) == set(SCOPES.split())
    callback = {k: v[0] for k, v in parse_qs(urlsplit(connection.callback).query).items()}
    assert callback["state"] == query["state"]
    assert connection.callback.startswith(query["redirect_uri"] + "?")


def test_authlib_default_sends_a_form_body_with_http_basic(emulator):
    connection = authlib_login(emulator)
    client = emulator.default_client
    [exchange] = connection.wire.token_requests()
    # Authlib adds a charset: application/x-www-form-urlencoded;charset=UTF-8
    assert exchange.content_type.split(";")[0] == "application/x-www-form-urlencoded"
    assert exchange.basic == (client.client_id, client.client_secret.reveal())
    assert set(exchange.form) == {"grant_type", "code", "redirect_uri"}
    assert exchange.form["grant_type"] == "authorization_code"
    assert exchange.status == 200


def test_requests_oauthlib_default_sends_a_form_body_with_http_basic(emulator):
    connection = requests_oauthlib_login(emulator)
    client = emulator.default_client
    [exchange] = connection.wire.token_requests()
    assert exchange.content_type == "application/x-www-form-urlencoded"
    assert exchange.basic == (client.client_id, client.client_secret.reveal())
    assert set(exchange.form) == {"grant_type", "code", "redirect_uri"}
    assert exchange.status == 200


@by_library
def test_code_exchange_then_sites_me_and_jira_myself(emulator, login):
    connection = login(emulator)
    token = connection.first_token
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert token["refresh_token"]
    assert set(
        token["scope"].split() if isinstance(token["scope"], str) else token["scope"]
    ) == set(SCOPES.split())

    api, session, user = emulator.api_base_url, connection.session, emulator.user
    resources = session.get(f"{api}/oauth/token/accessible-resources", timeout=10)
    assert resources.status_code == 200
    [site] = resources.json()  # acme, chosen at consent; only the Jira entry has scopes
    assert site["name"] == "acme"
    assert site["scopes"] == ["read:jira-user"]

    me = session.get(f"{api}/me", timeout=10)
    assert me.status_code == 200
    assert me.json()["account_id"] == user["account_id"]

    myself = session.get(f"{api}/ex/jira/{site['id']}/rest/api/3/myself", timeout=10)
    assert myself.status_code == 200
    assert myself.json()["accountId"] == user["account_id"]


@by_library
def test_a_scope_not_granted_is_401_scope_does_not_match(emulator, login):
    connection = login(emulator)
    cloud_id = emulator.sites[0]["id"]
    # project/search needs read:jira-work, which was not requested.
    answer = connection.session.get(
        f"{emulator.api_base_url}/ex/jira/{cloud_id}/rest/api/3/project/search", timeout=10
    )
    assert answer.status_code == 401
    assert answer.json() == SCOPE_MISMATCH


# --- refresh: rotation, the leeway, and reuse after it --------------------------------------


@by_library
def test_refresh_rotates_and_reuse_after_the_leeway_revokes_the_grant(emulator, login):
    connection = login(emulator)
    session, first = connection.session, connection.first_token
    me = f"{emulator.api_base_url}/me"

    # An hour later the access token has expired; the next call refreshes by itself.
    emulator.advance_clock(3601)
    assert bearer_get(emulator, "/me", first["access_token"]).status_code == 401
    expire_locally(connection)
    assert session.get(me, timeout=10).status_code == 200
    [rotated] = connection.updates  # the hook saw the new pair, to persist it
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["access_token"] != first["access_token"]
    assert session.token["refresh_token"] == rotated["refresh_token"]
    refresh_request = connection.wire.token_requests()[-1]
    assert refresh_request.form["grant_type"] == "refresh_token"
    assert refresh_request.form["refresh_token"] == first["refresh_token"]

    # Inside the 10-minute leeway the old refresh token still works (a concurrent refresh).
    emulator.advance_clock(9 * 60)
    concurrent = connection.refresh_now(first["refresh_token"])
    assert concurrent["refresh_token"] not in (first["refresh_token"], rotated["refresh_token"])

    # After the leeway, reusing it is taken for theft.
    emulator.advance_clock(2 * 60)
    assert bearer_get(emulator, "/me", rotated["access_token"]).status_code == 200
    with pytest.raises((OAuthError, InvalidGrantError)):
        connection.refresh_now(first["refresh_token"])
    reuse = connection.wire.token_requests()[-1]
    assert (reuse.status, reuse.answer) == (403, INVALID_REFRESH)

    # The whole grant died: the newest refresh tokens and every access token.
    for newest in (rotated["refresh_token"], concurrent["refresh_token"]):
        with pytest.raises((OAuthError, InvalidGrantError)):
            connection.refresh_now(newest)
        assert connection.wire.token_requests()[-1].status == 403
    for access_token in (rotated["access_token"], concurrent["access_token"]):
        assert bearer_get(emulator, "/me", access_token).status_code == 401


def test_authlib_refresh_sends_http_basic(emulator):
    connection = authlib_login(emulator)
    client = emulator.default_client
    connection.refresh_now(connection.first_token["refresh_token"])
    refresh = connection.wire.token_requests()[-1]
    assert refresh.basic == (client.client_id, client.client_secret.reveal())
    assert set(refresh.form) == {"grant_type", "refresh_token", "scope"}
    assert refresh.status == 200
    assert len(connection.updates) == 1  # Authlib calls the hook on explicit refreshes too


def test_requests_oauthlib_refresh_sends_credentials_in_the_body(emulator):
    connection = requests_oauthlib_login(emulator)
    client = emulator.default_client
    connection.refresh_now(connection.first_token["refresh_token"])
    refresh = connection.wire.token_requests()[-1]
    assert refresh.basic is None
    assert set(refresh.form) == {
        "grant_type",
        "refresh_token",
        "scope",
        "client_id",
        "client_secret",
    }
    assert refresh.form["client_secret"] == client.client_secret.reveal()
    assert refresh.status == 200


# --- client authentication ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("login", "options"),
    [
        (authlib_login, {"token_endpoint_auth_method": "client_secret_post"}),
        (requests_oauthlib_login, {"include_client_id": True}),
    ],
    ids=["authlib-client_secret_post", "requests-oauthlib-include_client_id"],
)
def test_credentials_in_the_body_instead_of_basic(emulator, login, options):
    client = emulator.default_client
    connection = login(emulator, **options)
    [exchange] = connection.wire.token_requests()
    assert exchange.basic is None
    assert exchange.form["client_id"] == client.client_id
    assert exchange.form["client_secret"] == client.client_secret.reveal()
    assert exchange.status == 200


def test_authlib_basic_and_body_credentials_that_disagree_are_401(emulator):
    info = emulator.connection_info()
    session = AuthlibSession(
        client_id=info["client_id"],
        client_secret=emulator.default_client.client_secret.reveal(),
        scope=SCOPES,
        redirect_uri=info["callback_urls"][0],
    )
    session.trust_env = False
    wire = Wire(session)
    url, _state = session.create_authorization_url(info["authorize_url"], **AUTHORIZE_EXTRAS)
    callback = follow_to_callback(url)
    # Basic carries the right secret (the default), the body a stale one.
    with pytest.raises(OAuthError) as failure:
        session.fetch_token(
            info["token_url"], authorization_response=callback, client_secret="a-stale-secret"
        )
    assert failure.value.error == "access_denied"
    [refused] = wire.token_requests()
    assert refused.basic is not None and refused.form["client_secret"] == "a-stale-secret"
    assert (refused.status, refused.answer) == (401, ACCESS_DENIED)
    # The failed exchange did not use up the code.
    assert session.fetch_token(info["token_url"], authorization_response=callback)["access_token"]


def test_requests_oauthlib_basic_and_body_credentials_that_disagree_are_401(emulator):
    info = emulator.connection_info()
    secret = emulator.default_client.client_secret.reveal()
    session = RequestsOAuthlibSession(
        info["client_id"], redirect_uri=info["callback_urls"][0], scope=SCOPES.split()
    )
    session.trust_env = False
    wire = Wire(session)
    url, _state = session.authorization_url(info["authorize_url"], **AUTHORIZE_EXTRAS)
    callback = follow_to_callback(url)
    # The body carries the right secret, Basic a stale one.
    with pytest.raises(AccessDeniedError):
        session.fetch_token(
            info["token_url"],
            authorization_response=callback,
            client_secret=secret,
            include_client_id=True,
            auth=HTTPBasicAuth(info["client_id"], "a-stale-secret"),
        )
    [refused] = wire.token_requests()
    assert refused.basic == (info["client_id"], "a-stale-secret")
    assert refused.form["client_secret"] == secret
    assert (refused.status, refused.answer) == (401, ACCESS_DENIED)
