"""OAuthClient: the authorization URL, callback parsing, and the token endpoint.

The token endpoint is exercised against the emulator (see the end of this file); the few
answers the emulator cannot be made to give (a non-JSON 200, a date-form Retry-After) use
httpx.MockTransport.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from atlassian_playbook.config import Settings
from atlassian_playbook.errors import (
    CallbackError,
    ConsentDenied,
    InvalidClient,
    InvalidGrant,
    MissingCode,
    OAuthError,
    RateLimited,
    ReauthorizationRequired,
    RedirectUriMismatch,
    ServerError,
    StateMismatch,
)
from atlassian_playbook.oauth import AUDIENCE, OAuthClient, parse_callback_params
from atlassian_playbook.redact import Secret
from atlassian_playbook.target import emulator_settings

CLIENT_SECRET = "unit-client-secret-0123456789"
REDIRECT = "http://127.0.0.1:8765/callback"


def make_settings(**overrides) -> Settings:
    values = dict(
        client_id="unit-client-id",
        client_secret=Secret(CLIENT_SECRET),
        redirect_uri=REDIRECT,
        scopes=("read:me", "read:jira-work", "offline_access"),
        auth_base_url="http://auth.test",
        api_base_url="http://api.test",
    )
    values.update(overrides)
    return Settings(**values)


class Recorder:
    """A MockTransport handler answering from a script, recording every request."""

    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses.pop(0)


def mock_client(recorder: Recorder, **kwargs) -> tuple[OAuthClient, list[float]]:
    sleeps: list[float] = []
    http = httpx.Client(transport=httpx.MockTransport(recorder))
    client = OAuthClient(make_settings(), http=http, sleep=sleeps.append, **kwargs)
    return client, sleeps


def token_body(**extra) -> dict:
    body = {
        "access_token": "at-unit-0123456789abcdef",
        "refresh_token": "rt-unit-0123456789abcdef",
        "expires_in": 3600,
        "scope": "read:me read:jira-work offline_access",
        "token_type": "Bearer",
    }
    body.update(extra)
    return body


# -- the authorization URL -----------------------------------------------------------------


def test_authorization_url_has_atlassian_parameters_in_documented_order():
    request = OAuthClient(make_settings()).authorization_request()
    parts = urlsplit(request.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "http://auth.test/authorize"
    keys = [pair.split("=", 1)[0] for pair in parts.query.split("&")]
    assert keys == [
        "audience",
        "client_id",
        "scope",
        "redirect_uri",
        "state",
        "response_type",
        "prompt",
    ]
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert params["audience"] == AUDIENCE == "api.atlassian.com"
    assert params["client_id"] == "unit-client-id"
    assert params["scope"] == "read:me read:jira-work offline_access"
    assert params["redirect_uri"] == REDIRECT
    assert params["state"] == request.state
    assert params["response_type"] == "code"
    assert params["prompt"] == "consent"
    assert request.scopes == ("read:me", "read:jira-work", "offline_access")
    assert request.redirect_uri == REDIRECT


def test_authorization_url_encodes_spaces_as_percent_20_and_the_redirect_fully():
    request = OAuthClient(make_settings()).authorization_request(["read:me", "offline_access"])
    raw = dict(pair.split("=", 1) for pair in urlsplit(request.url).query.split("&"))
    assert raw["scope"] == "read%3Ame%20offline_access"
    assert "+" not in request.url
    assert raw["redirect_uri"] == "http%3A%2F%2F127.0.0.1%3A8765%2Fcallback"


def test_authorization_request_uses_a_fresh_unguessable_state_each_time():
    oauth = OAuthClient(make_settings())
    states = {oauth.authorization_request().state for _ in range(20)}
    assert len(states) == 20
    assert all(len(s) >= 32 for s in states)
    assert oauth.authorization_request(state="given").state == "given"


def test_authorization_request_without_client_id_names_the_setting():
    from atlassian_playbook.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        OAuthClient(make_settings(client_id=None)).authorization_request()
    assert info.value.setting == "ATLASSIAN_CLIENT_ID"


def test_duplicate_scopes_are_requested_once():
    request = OAuthClient(make_settings()).authorization_request(["read:me", "read:me"])
    assert request.scopes == ("read:me",)


# -- the callback --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"{REDIRECT}?code=the-code-123456&state=S1",
        "?code=the-code-123456&state=S1",
        "code=the-code-123456&state=S1",
        f"  {REDIRECT}?state=S1&code=the-code-123456#fragment  ",
    ],
)
def test_parse_callback_accepts_a_url_or_its_query(url):
    assert OAuthClient(make_settings()).parse_callback(url, "S1") == "the-code-123456"


def test_parse_callback_rejects_another_state():
    with pytest.raises(StateMismatch):
        OAuthClient(make_settings()).parse_callback(f"{REDIRECT}?code=c0de-abcdef&state=OLD", "S1")


def test_parse_callback_rejects_a_missing_state():
    with pytest.raises(StateMismatch):
        OAuthClient(make_settings()).parse_callback(f"{REDIRECT}?code=c0de-abcdef", "S1")


def test_parse_callback_without_code_raises_missing_code():
    oauth = OAuthClient(make_settings())
    with pytest.raises(MissingCode):
        oauth.parse_callback(REDIRECT, "S1")
    with pytest.raises(MissingCode):
        oauth.parse_callback(f"{REDIRECT}?state=S1", "S1")


def test_parse_callback_denied_consent_raises_consent_denied_with_the_description():
    url = f"{REDIRECT}?error=access_denied&error_description=User%20did%20not%20authorize&state=S1"
    with pytest.raises(ConsentDenied) as info:
        OAuthClient(make_settings()).parse_callback(url, "S1")
    assert "User did not authorize" in info.value.message
    assert "Accept" in info.value.hint


def test_parse_callback_admin_restriction_hint_points_at_the_admin():
    url = (
        f"{REDIRECT}?error=access_denied&state=S1&error_description="
        "Your%20site%20admin%20must%20authorize%20this%20app"
    )
    with pytest.raises(ConsentDenied) as info:
        OAuthClient(make_settings()).parse_callback(url, "S1")
    assert "admin" in info.value.hint


def test_parse_callback_other_error_is_a_callback_error_not_a_denial():
    url = f"{REDIRECT}?error=invalid_scope&error_description=bad%20scope&state=S1"
    with pytest.raises(CallbackError) as info:
        OAuthClient(make_settings()).parse_callback(url, "S1")
    assert not isinstance(info.value, ConsentDenied)
    assert "invalid_scope" in info.value.message
    assert "Permissions" in info.value.hint


def test_parse_callback_error_from_another_request_is_a_state_mismatch():
    url = f"{REDIRECT}?error=access_denied&state=OTHER"
    with pytest.raises(StateMismatch):
        OAuthClient(make_settings()).parse_callback(url, "S1")


def test_parse_callback_params_keeps_the_first_value():
    assert parse_callback_params("a=1&a=2&b=")["a"] == "1"


# -- token endpoint shapes the emulator cannot produce ---------------------------------------


def test_exchange_sends_atlassian_json_body():
    recorder = Recorder(httpx.Response(200, json=token_body()))
    oauth, _ = mock_client(recorder)
    tokens = oauth.exchange_code("the-code-abcdef")
    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == "http://auth.test/oauth/token"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "grant_type": "authorization_code",
        "client_id": "unit-client-id",
        "client_secret": CLIENT_SECRET,
        "code": "the-code-abcdef",
        "redirect_uri": REDIRECT,
    }
    assert tokens.access_token.reveal() == "at-unit-0123456789abcdef"
    assert tokens.scopes == ("read:me", "read:jira-work", "offline_access")


def test_refresh_sends_atlassian_json_body():
    recorder = Recorder(httpx.Response(200, json=token_body()))
    oauth, _ = mock_client(recorder)
    oauth.refresh(Secret("rt-old-0123456789"))
    assert json.loads(recorder.requests[0].content) == {
        "grant_type": "refresh_token",
        "client_id": "unit-client-id",
        "client_secret": CLIENT_SECRET,
        "refresh_token": "rt-old-0123456789",
    }


def test_non_json_success_is_an_oauth_error_not_a_crash():
    recorder = Recorder(httpx.Response(200, text="<html>login</html>"))
    oauth, _ = mock_client(recorder)
    with pytest.raises(OAuthError) as info:
        oauth.exchange_code("the-code-abcdef")
    assert "ATLASSIAN_AUTH_BASE_URL" in info.value.hint


def test_retry_after_as_http_date_is_understood():
    recorder = Recorder(
        httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:02 GMT"}),
        httpx.Response(200, json=token_body()),
    )
    oauth, sleeps = mock_client(recorder, clock=lambda: 1445412480.0)  # 07:28:00 that day
    oauth.refresh("rt-old-0123456789")
    assert sleeps == [2.0]


def test_retry_after_beyond_the_cap_is_not_waited_out():
    recorder = Recorder(httpx.Response(429, headers={"Retry-After": "3600"}))
    oauth, sleeps = mock_client(recorder, max_retry_wait=30)
    with pytest.raises(RateLimited) as info:
        oauth.refresh("rt-old-0123456789")
    assert sleeps == []
    assert info.value.retry_after == 3600
    assert len(recorder.requests) == 1


def test_connect_errors_are_retried_a_bounded_number_of_times():
    calls = []

    def refuse(request):
        calls.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    sleeps: list[float] = []
    http = httpx.Client(transport=httpx.MockTransport(refuse))
    oauth = OAuthClient(make_settings(), http=http, sleep=sleeps.append, max_retries=2)
    with pytest.raises(OAuthError) as info:
        oauth.exchange_code("the-code-abcdef")
    assert len(calls) == 3
    assert sleeps == [0.5, 1.0]
    assert "ATLASSIAN_AUTH_BASE_URL" in info.value.hint


def test_read_timeout_is_not_retried_since_the_code_may_be_spent():
    calls = []

    def slow(request):
        calls.append(request)
        raise httpx.ReadTimeout("timed out", request=request)

    http = httpx.Client(transport=httpx.MockTransport(slow))
    oauth = OAuthClient(make_settings(), http=http, sleep=lambda s: None)
    with pytest.raises(OAuthError):
        oauth.exchange_code("the-code-abcdef")
    assert len(calls) == 1


@pytest.mark.parametrize(
    "lost",
    [httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.RemoteProtocolError],
)
def test_a_refresh_whose_answer_is_lost_is_sent_again_at_once(lost):
    # Atlassian may have rotated the token on the lost request; the old one still works
    # within the reuse leeway, so sending it again at once is safe.
    calls = []

    def flaky(request):
        calls.append(json.loads(request.content)["refresh_token"])
        if len(calls) == 1:
            raise lost("the answer was lost", request=request)
        return httpx.Response(200, json=token_body())

    sleeps: list[float] = []
    http = httpx.Client(transport=httpx.MockTransport(flaky))
    oauth = OAuthClient(make_settings(), http=http, sleep=sleeps.append)
    tokens = oauth.refresh("rt-old-0123456789")
    assert tokens.refresh_token.reveal() == "rt-unit-0123456789abcdef"
    assert calls == ["rt-old-0123456789"] * 2
    assert sleeps == []


def test_a_refresh_lost_twice_says_the_stored_token_still_works_for_ten_minutes():
    calls = []

    def slow(request):
        calls.append(request)
        raise httpx.ReadTimeout("timed out", request=request)

    http = httpx.Client(transport=httpx.MockTransport(slow))
    oauth = OAuthClient(make_settings(), http=http, sleep=lambda s: None)
    with pytest.raises(OAuthError) as info:
        oauth.refresh("rt-old-0123456789")
    assert len(calls) == 2
    assert "may have rotated" in info.value.message
    assert "10 minutes" in info.value.hint and "atlassian-playbook refresh" in info.value.hint
    assert "rt-old-0123456789" not in str(info.value)


def test_a_4xx_answer_to_the_resent_refresh_is_not_retried():
    calls = []

    def lost_then_refused(request):
        calls.append(request)
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("server disconnected", request=request)
        return httpx.Response(403, json={"error": "invalid_grant"})

    http = httpx.Client(transport=httpx.MockTransport(lost_then_refused))
    oauth = OAuthClient(make_settings(), http=http, sleep=lambda s: None)
    with pytest.raises(ReauthorizationRequired):
        oauth.refresh("rt-old-0123456789")
    assert len(calls) == 2


def test_a_connect_timeout_is_retried_like_a_refused_connection():
    # Nothing reached the server, so even a single-use code can be sent again.
    calls = []

    def unreachable_once(request):
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectTimeout("connect timed out", request=request)
        return httpx.Response(200, json=token_body())

    sleeps: list[float] = []
    http = httpx.Client(transport=httpx.MockTransport(unreachable_once))
    oauth = OAuthClient(make_settings(), http=http, sleep=sleeps.append)
    oauth.exchange_code("the-code-abcdef")
    assert len(calls) == 2 and sleeps == [0.5]


def test_invalid_grant_on_refresh_says_only_a_new_consent_fixes_it():
    recorder = Recorder(httpx.Response(403, json={"error": "invalid_grant"}))
    oauth, _ = mock_client(recorder)
    with pytest.raises(ReauthorizationRequired) as info:
        oauth.refresh("rt-old-0123456789")
    assert "new consent" in info.value.hint and "atlassian-playbook login" in info.value.hint


@pytest.mark.parametrize(
    ("grant", "status", "body", "expected"),
    [
        (
            "code",
            403,
            {"error": "access_denied", "error_description": "Unauthorized"},
            InvalidClient,
        ),
        ("refresh", 401, {"error": "invalid_client"}, InvalidClient),
        (
            "refresh",
            403,
            {"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."},
            ReauthorizationRequired,
        ),
        (
            "code",
            403,
            {"error": "invalid_grant", "error_description": "Invalid authorization code"},
            InvalidGrant,
        ),
        (
            "code",
            403,
            {"error": "invalid_grant", "error_description": "redirect_uri does not match"},
            RedirectUriMismatch,
        ),
        ("code", 400, {"error": "unsupported_grant_type"}, OAuthError),
        ("code", 400, {}, OAuthError),
    ],
)
def test_token_endpoint_errors_map_to_the_hierarchy(grant, status, body, expected):
    recorder = Recorder(httpx.Response(status, json=body))
    oauth, _ = mock_client(recorder)
    call = oauth.exchange_code if grant == "code" else oauth.refresh
    with pytest.raises(OAuthError) as info:
        call("the-credential-abcdef")
    assert type(info.value) is expected
    assert info.value.status_code == status


def test_invalid_grant_on_code_is_not_a_reauthorization():
    # A stale code needs a new login too, but it is not the refresh-token story.
    recorder = Recorder(httpx.Response(403, json={"error": "invalid_grant"}))
    oauth, _ = mock_client(recorder)
    with pytest.raises(InvalidGrant) as info:
        oauth.exchange_code("the-code-abcdef")
    assert not isinstance(info.value, ReauthorizationRequired)


def test_server_errors_are_retried_then_raised():
    recorder = Recorder(*[httpx.Response(503, text="down") for _ in range(3)])
    oauth, sleeps = mock_client(recorder, max_retries=2)
    with pytest.raises(ServerError) as info:
        oauth.refresh("rt-old-0123456789")
    assert len(recorder.requests) == 3
    assert sleeps == [0.5, 1.0]
    assert info.value.status_code == 503


def test_error_messages_quote_bodies_redacted():
    leaked = "rt-leaky-0123456789abcdef"
    recorder = Recorder(
        httpx.Response(
            403,
            json={"error": "invalid_grant", "error_description": f"bad token {leaked}"},
        )
    )
    oauth, _ = mock_client(recorder)
    with pytest.raises(ReauthorizationRequired) as info:
        oauth.refresh(leaked)
    assert leaked not in str(info.value)
    assert leaked not in repr(info.value.description)


def test_oauth_client_closes_only_its_own_http_client():
    http = httpx.Client()
    with OAuthClient(make_settings(), http=http):
        pass
    assert not http.is_closed
    http.close()
    own = OAuthClient(make_settings())
    created = own.http
    own.close()
    assert created.is_closed


def test_missing_refresh_token_is_a_success_with_a_warning(caplog):
    body = token_body()
    del body["refresh_token"]
    recorder = Recorder(httpx.Response(200, json=body))
    oauth, _ = mock_client(recorder)
    with caplog.at_level(logging.WARNING, logger="atlassian_playbook"):
        tokens = oauth.exchange_code("the-code-abcdef")
    assert tokens.refresh_token is None
    assert any("offline_access was not granted" in r.getMessage() for r in caplog.records)


# -- against the emulator ------------------------------------------------------------------


def authorize(oauth: OAuthClient, scopes=None) -> str:
    """Play the browser with auto-consent: GET /authorize, read the redirect, parse it."""
    request = oauth.authorization_request(scopes)
    response = httpx.get(request.url)
    assert response.status_code in (302, 303), response.text
    return oauth.parse_callback(response.headers["location"], request.state)


def token_posts(emulator) -> list[int]:
    return [status for method, path, status in emulator.request_log if path == "/oauth/token"]


def test_exchange_and_refresh_against_the_emulator(emulator):
    with OAuthClient(emulator_settings(emulator)) as oauth:
        code = authorize(oauth)
        tokens = oauth.exchange_code(code)
        assert tokens.refresh_token is not None
        assert "read:me" in tokens.scopes
        assert 3500 < tokens.expires_in() <= 3600
        me = httpx.get(
            f"{emulator.api_base_url}/me",
            headers={"Authorization": f"Bearer {tokens.access_token.reveal()}"},
        )
        assert me.status_code == 200

        fresh = oauth.refresh(tokens.refresh_token)
        assert fresh.refresh_token != tokens.refresh_token
        assert fresh.access_token != tokens.access_token
    assert token_posts(emulator) == [200, 200]


def test_codes_are_single_use(emulator):
    with OAuthClient(emulator_settings(emulator)) as oauth:
        code = authorize(oauth)
        oauth.exchange_code(code)
        with pytest.raises(InvalidGrant) as info:
            oauth.exchange_code(code)
    assert not isinstance(info.value, ReauthorizationRequired | RedirectUriMismatch)
    assert code not in str(info.value)


def test_refresh_rotates_and_the_old_token_is_rejected_after_the_leeway(emulator):
    with OAuthClient(emulator_settings(emulator)) as oauth:
        first = oauth.exchange_code(authorize(oauth))
        second = oauth.refresh(first.refresh_token)
        emulator.advance_clock(601)  # past Atlassian's 10-minute reuse leeway
        with pytest.raises(ReauthorizationRequired) as info:
            oauth.refresh(first.refresh_token)
        assert info.value.error == "invalid_grant"
        assert "log" in info.value.hint and "90 days" in info.value.hint
        # Reuse after the leeway counts as theft: the newest token of the grant dies too.
        with pytest.raises(ReauthorizationRequired):
            oauth.refresh(second.refresh_token)


def test_revoked_grant_requires_reauthorization(emulator):
    with OAuthClient(emulator_settings(emulator)) as oauth:
        tokens = oauth.exchange_code(authorize(oauth))
        emulator.revoke()
        with pytest.raises(ReauthorizationRequired):
            oauth.refresh(tokens.refresh_token)


def test_wrong_client_secret_is_invalid_client_not_a_consent_problem(emulator):
    with OAuthClient(emulator_settings(emulator)) as oauth:
        code = authorize(oauth)
    wrong = emulator_settings(emulator, client_secret=Secret("not-the-right-secret-0123456789"))
    with OAuthClient(wrong) as oauth:
        with pytest.raises(InvalidClient) as info:
            oauth.exchange_code(code)
    assert info.value.error == "access_denied"
    assert "Consenting again will not help" in info.value.hint
    assert "not-the-right-secret" not in str(info.value)


def test_redirect_uri_differing_from_the_authorization_request(emulator):
    with OAuthClient(emulator_settings(emulator)) as oauth:
        code = authorize(oauth)
    other = emulator_settings(emulator, redirect_uri="http://localhost:8765/callback")
    with OAuthClient(other) as oauth:
        with pytest.raises(InvalidGrant) as info:
            oauth.exchange_code(code)
    # Atlassian answers 403 "Invalid authorization code", as for a used code (FACTS.md).
    assert "Invalid authorization code" in info.value.message
    assert "http://localhost:8765/callback" in info.value.message
    assert "trailing slash" in info.value.message
    assert "Authorization tab" in info.value.hint


def test_without_offline_access_there_is_no_refresh_token(emulator):
    with OAuthClient(emulator_settings(emulator)) as oauth:
        tokens = oauth.exchange_code(authorize(oauth, ["read:me"]))
    assert tokens.refresh_token is None
    assert tokens.scopes == ("read:me",)


def test_token_endpoint_429_is_retried_after_retry_after(emulator):
    sleeps: list[float] = []
    with OAuthClient(emulator_settings(emulator), sleep=sleeps.append) as oauth:
        tokens = oauth.exchange_code(authorize(oauth))
        emulator.inject_fault("/oauth/token", status=429, retry_after=2, times=1)
        oauth.refresh(tokens.refresh_token)
    assert sleeps == [2.0]
    assert token_posts(emulator) == [200, 429, 200]


def test_token_endpoint_5xx_retries_are_bounded(emulator):
    sleeps: list[float] = []
    with OAuthClient(emulator_settings(emulator), sleep=sleeps.append, max_retries=2) as oauth:
        tokens = oauth.exchange_code(authorize(oauth))
        emulator.inject_fault("/oauth/token", status=503, times=5)
        with pytest.raises(ServerError) as info:
            oauth.refresh(tokens.refresh_token)
    assert info.value.status_code == 503
    assert token_posts(emulator) == [200, 503, 503, 503]
    assert sleeps == [0.5, 1.0]


def test_persistent_429_ends_in_rate_limited(emulator):
    with OAuthClient(emulator_settings(emulator), sleep=lambda s: None, max_retries=1) as oauth:
        tokens = oauth.exchange_code(authorize(oauth))
        emulator.inject_fault("/oauth/token", status=429, retry_after=1, times=2)
        with pytest.raises(RateLimited) as info:
            oauth.refresh(tokens.refresh_token)
    assert info.value.retry_after == 1


def test_no_secret_reaches_messages_or_logs(emulator, caplog):
    """Client secret, code and tokens never appear in exceptions or DEBUG logs (trace on)."""
    settings = emulator_settings(emulator)
    used: set[str] = {settings.client_secret.reveal()}
    messages: list[str] = []
    with OAuthClient(settings, sleep=lambda s: None) as oauth:
        request = oauth.authorization_request()
    # The "browser" (httpcore's own DEBUG log of the redirect's Location header) is not ours.
    location = httpx.get(request.url).headers["location"]
    with caplog.at_level(logging.DEBUG):
        with OAuthClient(settings, sleep=lambda s: None) as oauth:
            code = oauth.parse_callback(location, request.state)
            used.add(code)
            tokens = oauth.exchange_code(code)
            fresh = oauth.refresh(tokens.refresh_token)
            for t in (tokens, fresh):
                used |= {t.access_token.reveal(), t.refresh_token.reveal()}
            failures = [
                lambda: oauth.exchange_code(code),  # reused code
                lambda: oauth.parse_callback(location, "another-state"),
            ]
            emulator.advance_clock(601)
            failures.append(lambda: oauth.refresh(tokens.refresh_token))  # theft
            emulator.inject_fault("/oauth/token", status=503, times=3)
            failures.append(lambda: oauth.refresh(fresh.refresh_token))
            for failure in failures:
                with pytest.raises(Exception) as info:
                    failure()
                messages += [str(info.value), repr(info.value), info.value.one_line()]
        wrong = settings.replace(client_secret=Secret("wrong-secret-value-0123456789"))
        used.add("wrong-secret-value-0123456789")
        with OAuthClient(wrong) as oauth, pytest.raises(InvalidClient) as info:
            oauth.refresh(fresh.refresh_token)
        messages += [str(info.value), repr(info.value)]
        messages.append(repr(tokens))
    traced = [r for r in caplog.records if r.name == "atlassian_playbook.http"]
    assert any("/oauth/token" in r.getMessage() for r in traced), "the trace was not on"
    texts = messages + [r.getMessage() for r in caplog.records] + [caplog.text]
    for secret in used:
        for text in texts:
            assert secret not in text
