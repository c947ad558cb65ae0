"""ApiClient: site grouping and choice, token refresh, scope errors, retries, error bodies.

Behaviour against Atlassian's gateway is tested on the real emulator over loopback; the pure
parts (grouping, choosing) need no server. A few cases the emulator cannot produce (an HTTP-date
Retry-After, a Jira permission 403) use httpx.MockTransport.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import httpx
import pytest

from atlassian_playbook.api import (
    MAX_REPORT_ACCOUNTS,
    ApiClient,
    Site,
    choose_site,
    group_sites,
)
from atlassian_playbook.config import Settings
from atlassian_playbook.emulator import Emulator
from atlassian_playbook.errors import (
    ApiError,
    ConfigError,
    PlaybookError,
    RateLimited,
    ScopeNotGranted,
    ServerError,
    SiteSelectionRequired,
    TokenExpired,
)
from atlassian_playbook.oauth import OAuthClient
from atlassian_playbook.redact import Secret
from atlassian_playbook.target import emulator_settings
from atlassian_playbook.tokens import TokenSet

ACME = "1324a887-45db-1bf4-1e99-ef0ff456d421"
BETA = "9f8e7d6c-0000-4000-8000-123456789abc"

ENTRIES = [
    {
        "id": ACME,
        "name": "acme",
        "url": "https://acme.atlassian.net",
        "scopes": ["read:jira-user", "read:jira-work"],
        "avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/a.png",
    },
    {
        "id": BETA,
        "name": "beta",
        "url": "https://beta.atlassian.net",
        "scopes": ["read:jira-user"],
        "avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/b.png",
    },
    {
        "id": ACME,
        "name": "acme",
        "url": "https://acme.atlassian.net",
        "scopes": ["read:confluence-space.summary", "read:jira-user"],
        "avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/a.png",
    },
]


# -- a token source that counts refreshes -------------------------------------------------------


def _token(name: str, *, expires_in: float = 3600, scopes=("read:me",)) -> TokenSet:
    return TokenSet(
        access_token=Secret(f"access-{name}-0123456789"),
        refresh_token=Secret(f"refresh-{name}-0123456789"),
        expires_at=time.time() + expires_in,
        scopes=tuple(scopes),
    )


@dataclass
class CountingSource:
    """Hands out ``current``; each refresh() returns the next of ``fresh`` and counts."""

    current: TokenSet
    fresh: list = field(default_factory=list)
    refreshed: list = field(default_factory=list)

    def get(self) -> TokenSet:
        return self.current

    def refresh(self, stale: TokenSet) -> TokenSet:
        self.refreshed.append(stale)
        self.current = self.fresh.pop(0)
        return self.current


def _mock_client(handler, source=None, **kwargs) -> tuple[ApiClient, list]:
    sleeps: list[float] = []
    settings = Settings(api_base_url="https://api.example.test")
    http = httpx.Client(transport=httpx.MockTransport(handler))
    api = ApiClient(
        settings, source or CountingSource(_token("a")), http, sleep=sleeps.append, **kwargs
    )
    return api, sleeps


# -- sites ----------------------------------------------------------------------------------


def test_accessible_resources_entries_are_grouped_by_cloud_id():
    sites = group_sites(ENTRIES)
    assert [s.id for s in sites] == [ACME, BETA]
    acme = sites[0]
    assert acme.scopes == ("read:jira-user", "read:jira-work", "read:confluence-space.summary")
    assert acme.products == ("jira", "confluence")
    assert acme.url == "https://acme.atlassian.net"
    assert acme.avatar_url.endswith("/a.png")
    assert sites[1].products == ("jira",)


def _sites(n: int) -> list[Site]:
    return group_sites(ENTRIES)[:n]


def test_choose_site_with_one_site_takes_it():
    assert choose_site(_sites(1), None).id == ACME


def test_choose_site_with_two_sites_and_none_wanted_refuses_to_guess():
    with pytest.raises(SiteSelectionRequired) as caught:
        choose_site(_sites(2), None)
    assert "acme" in caught.value.message and "beta" in caught.value.message
    assert ACME in caught.value.message and BETA in caught.value.message
    assert "ATLASSIAN_SITE" in caught.value.hint


@pytest.mark.parametrize(
    "wanted", [BETA, "beta", "https://beta.atlassian.net", "beta.atlassian.net/", "BETA"]
)
def test_choose_site_by_cloud_id_name_or_url(wanted):
    assert choose_site(_sites(2), wanted).id == BETA


def test_choose_site_unknown_name_lists_the_granted_sites():
    with pytest.raises(SiteSelectionRequired) as caught:
        choose_site(_sites(2), "gamma")
    assert "gamma" in caught.value.message and "acme" in caught.value.message


def test_choose_site_with_no_site_says_the_user_needs_access_and_consent():
    with pytest.raises(SiteSelectionRequired) as caught:
        choose_site([], None)
    assert "access" in caught.value.hint and "choose a site" in caught.value.hint


def test_site_url_as_api_base_is_refused_with_the_gateway_hint():
    settings = Settings(api_base_url="https://acme.atlassian.net")
    with pytest.raises(ConfigError) as caught:
        ApiClient(settings, CountingSource(_token("a")))
    assert "https://api.atlassian.com" in caught.value.hint
    assert caught.value.setting == "ATLASSIAN_API_BASE_URL"


# -- cases the emulator does not produce (MockTransport) ---------------------------------------


def test_retry_after_as_http_date_is_honoured():
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) == 1:
            when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 5))
            return httpx.Response(429, headers={"Retry-After": when})
        return httpx.Response(200, json={"account_id": "x"})

    api, sleeps = _mock_client(handler)
    assert api.me() == {"account_id": "x"}
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 5


def test_jira_error_body_is_surfaced_and_403_permission_is_not_called_a_scope_problem():
    def handler(request):
        return httpx.Response(
            403,
            json={"errorMessages": ["You do not have permission to view this."], "errors": {}},
        )

    api, _ = _mock_client(handler)
    with pytest.raises(ApiError) as caught:
        api.jira_myself(ACME)
    assert not isinstance(caught.value, ScopeNotGranted)
    assert "You do not have permission to view this." in caught.value.message


def test_jira_field_errors_are_surfaced():
    def handler(request):
        return httpx.Response(
            400, json={"errorMessages": ["Bad query"], "errors": {"jql": "unknown field"}}
        )

    api, _ = _mock_client(handler)
    with pytest.raises(ApiError) as caught:
        api.get_json(f"/ex/jira/{ACME}/rest/api/3/search")
    assert "Bad query" in caught.value.message and "jql: unknown field" in caught.value.message
    assert caught.value.status_code == 400


def test_transport_errors_are_retried_then_reported_without_the_token():
    source = CountingSource(_token("a"))

    def handler(request):
        raise httpx.ConnectError("connection refused", request=request)

    api, sleeps = _mock_client(handler, source, max_retries=2)
    with pytest.raises(ApiError) as caught:
        api.me()
    assert len(sleeps) == 2
    assert source.current.access_token.reveal() not in str(caught.value)


def test_report_accounts_refuses_more_than_90_before_sending():
    def handler(request):  # pragma: no cover - must not be reached
        raise AssertionError("sent a request")

    api, _ = _mock_client(handler)
    accounts = [
        {"accountId": f"id{i}", "updatedAt": "2017-05-12T00:00:00.000Z"}
        for i in range(MAX_REPORT_ACCOUNTS + 1)
    ]
    with pytest.raises(PlaybookError) as caught:
        api.report_accounts(accounts)
    assert "91" in caught.value.message and "90" in caught.value.message


def test_near_limit_header_is_exposed():
    def handler(request):
        return httpx.Response(
            200,
            json=[],
            headers={
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": "3",
                "X-RateLimit-NearLimit": "true",
            },
        )

    api, _ = _mock_client(handler)
    assert api.accessible_resources() == []
    assert api.rate_limit["X-RateLimit-Remaining"] == "3"
    assert api.near_limit


# -- against the emulator ------------------------------------------------------------------

BASIC = ("read:me", "read:jira-user", "read:confluence-space.summary", "offline_access")


@pytest.fixture
def emu():
    with Emulator(auto_consent=True) as emulator:
        yield emulator
        while OPEN_CLIENTS:
            OPEN_CLIENTS.pop().close()


# The clients emulator_client() made, closed by the emu fixture before the emulator stops.
OPEN_CLIENTS: list[ApiClient] = []


def consent(emu, scopes=BASIC, site="acme") -> tuple[Settings, TokenSet]:
    """The 3LO flow with auto-consent for ``site``: authorize, catch the code, exchange it."""
    settings = emulator_settings(emu, scopes=tuple(scopes))
    with OAuthClient(settings) as oauth:
        request = oauth.authorization_request(scopes)
        answer = httpx.get(f"{request.url}&emulator_site={site}")
        assert answer.status_code == 302, answer.text
        code = oauth.parse_callback(answer.headers["location"], request.state)
        return settings, oauth.exchange_code(code)


class RefreshingSource(CountingSource):
    """Refreshes through the emulator's token endpoint and counts each refresh."""

    def __init__(self, settings: Settings, tokens: TokenSet) -> None:
        super().__init__(tokens)
        self.oauth = OAuthClient(settings)

    def refresh(self, stale: TokenSet) -> TokenSet:
        self.refreshed.append(stale)
        self.current = self.oauth.refresh(self.current.refresh_token)
        return self.current


def emulator_client(emu, scopes=BASIC, site="acme", **kwargs):
    settings, tokens = consent(emu, scopes, site)
    source = RefreshingSource(settings, tokens)
    sleeps: list[float] = []
    api = ApiClient(settings, source, sleep=sleeps.append, owns=[source.oauth], **kwargs)
    OPEN_CLIENTS.append(api)
    return api, source, sleeps


def test_emulator_sites_me_jira_and_confluence(emu):
    api, source, _ = emulator_client(emu)
    sites = api.accessible_resources()
    assert [s.name for s in sites] == ["acme"]
    acme = sites[0]
    assert set(acme.products) == {"jira", "confluence"}
    assert set(acme.scopes) == {"read:jira-user", "read:confluence-space.summary"}
    assert api.me()["name"] == "Ada Lovelace"
    assert api.jira_myself(acme.id)["displayName"] == "Ada Lovelace"
    assert api.jira_server_info(acme.id)["deploymentType"] == "Cloud"
    spaces = api.confluence_spaces(acme.id)
    assert [s["key"] for s in spaces["results"]] == ["ENG", "HR"]
    assert ("GET", f"/ex/confluence/{acme.id}/wiki/rest/api/space", 200) in emu.request_log
    assert "X-RateLimit-Remaining" in api.rate_limit
    assert source.refreshed == []


def test_confluence_spaces_uses_v2_when_the_granular_scope_is_granted(emu):
    api, _, _ = emulator_client(emu, ("read:space:confluence", "offline_access"))
    site = api.accessible_resources()[0]
    spaces = api.confluence_spaces(site.id)
    assert [s["key"] for s in spaces["results"]] == ["ENG", "HR"]
    assert ("GET", f"/ex/confluence/{site.id}/wiki/api/v2/spaces", 200) in emu.request_log


def test_sites_granted_in_two_consents_are_two_sites_with_their_own_scopes(emu):
    consent(emu, ("read:jira-user", "read:jira-work", "offline_access"), site="acme")
    api, _, _ = emulator_client(emu, ("read:jira-work", "offline_access"), site="globex")
    sites = {s.name: s for s in api.accessible_resources()}
    assert set(sites) == {"acme", "globex"}
    assert "read:jira-user" in sites["acme"].scopes
    assert "read:jira-user" not in sites["globex"].scopes
    with pytest.raises(SiteSelectionRequired):
        choose_site(list(sites.values()), None)
    assert choose_site(list(sites.values()), "globex").id == sites["globex"].id


def test_scope_granted_on_site_a_but_not_b_is_scope_not_granted_on_b(emu):
    consent(emu, ("read:jira-user", "offline_access"), site="acme")
    api, source, _ = emulator_client(emu, ("read:jira-work", "offline_access"), site="globex")
    sites = {s.name: s for s in api.accessible_resources()}
    assert api.jira_myself(sites["acme"].id)["accountId"]
    with pytest.raises(ScopeNotGranted) as caught:
        api.jira_myself(sites["globex"].id)
    error = caught.value
    assert error.status_code == 401
    assert "/rest/api/3/myself" in error.message and "read:jira-user" in error.message
    assert "Permissions tab" in error.hint and "choosing this site" in error.hint
    assert ("read:jira-user",) in error.alternatives
    # A scope failure is not an expired token: no refresh was attempted.
    assert source.refreshed == []


def test_token_expiring_within_a_minute_is_refreshed_before_the_call(emu):
    api, source, _ = emulator_client(emu)
    source.current = dataclasses.replace(source.current, expires_at=time.time() + 30)
    emu.request_log.clear()
    assert api.me()["account_id"]
    assert len(source.refreshed) == 1
    assert emu.request_log == [("POST", "/oauth/token", 200), ("GET", "/me", 200)]


def test_expiring_token_without_refresh_token_is_used_while_it_lasts(emu):
    settings, tokens = consent(emu, ("read:me",))
    assert tokens.refresh_token is None
    source = CountingSource(dataclasses.replace(tokens, expires_at=time.time() + 30))
    with ApiClient(settings, source) as api:
        assert api.me()["name"] == "Ada Lovelace"
    assert source.refreshed == []


def test_expired_token_gets_one_refresh_on_401_and_the_call_succeeds(emu):
    api, source, _ = emulator_client(emu)
    emu.advance_clock(3601)  # the emulator now rejects the access token; our clock does not know
    emu.request_log.clear()
    assert api.me()["name"] == "Ada Lovelace"
    assert len(source.refreshed) == 1
    assert emu.request_log == [
        ("GET", "/me", 401),
        ("POST", "/oauth/token", 200),
        ("GET", "/me", 200),
    ]


def test_401_after_the_refresh_is_token_expired_and_refreshes_only_once(emu):
    api, source, _ = emulator_client(emu)
    emu.inject_fault("/me", status=401, times=2, body={"code": 401, "message": "Unauthorized"})
    with pytest.raises(TokenExpired) as caught:
        api.me()
    assert len(source.refreshed) == 1
    assert caught.value.status_code == 401
    assert "log in again" in caught.value.hint


def test_revoked_grant_fails_the_refresh_with_reauthorization(emu):
    api, source, _ = emulator_client(emu)
    emu.revoke(emu.default_client.client_id)
    with pytest.raises(PlaybookError) as caught:
        api.me()
    assert len(source.refreshed) == 1
    assert "login" in caught.value.hint


def test_429_retry_after_is_honoured_without_waiting(emu):
    api, _, sleeps = emulator_client(emu)
    emu.inject_fault("/me", status=429, retry_after=2, times=2)
    assert api.me()["name"] == "Ada Lovelace"
    assert sleeps == [2.0, 2.0]
    assert [s for _, p, s in emu.request_log if p == "/me"] == [429, 429, 200]


def test_429_beyond_max_retries_is_rate_limited_with_retry_after(emu):
    api, _, sleeps = emulator_client(emu, max_retries=2)
    emu.inject_fault("/me", status=429, retry_after=3, times=5)
    with pytest.raises(RateLimited) as caught:
        api.me()
    assert sleeps == [3.0, 3.0]
    assert caught.value.retry_after == 3.0
    assert [s for _, p, s in emu.request_log if p == "/me"] == [429, 429, 429]


def test_retry_after_longer_than_the_cap_is_not_waited_out(emu):
    api, _, sleeps = emulator_client(emu, max_retry_wait=10)
    emu.inject_fault("/me", status=429, retry_after=120, times=1)
    with pytest.raises(RateLimited) as caught:
        api.me()
    assert sleeps == []
    assert caught.value.retry_after == 120.0
    assert "120" in caught.value.hint


def test_5xx_is_retried_with_capped_backoff_then_server_error(emu):
    api, _, sleeps = emulator_client(emu, max_retries=5)
    emu.inject_fault("/me", status=503, times=10)
    with pytest.raises(ServerError) as caught:
        api.me()
    assert caught.value.status_code == 503
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert len([p for _, p, _ in emu.request_log if p == "/me"]) == 6


def test_5xx_then_success(emu):
    api, _, sleeps = emulator_client(emu)
    emu.inject_fault("/me", status=500, times=1)
    assert api.me()["name"] == "Ada Lovelace"
    assert sleeps == [0.5]


def test_reporting_error_body_is_surfaced(emu):
    api, _, _ = emulator_client(emu, ("report:personal-data", "offline_access"))
    emu.inject_fault(
        "/app/report-accounts/",
        status=400,
        body={"errorType": "BAD_REQUEST", "errorMessage": "accounts must not be empty"},
    )
    with pytest.raises(ApiError) as caught:
        api.report_accounts([{"accountId": "abc", "updatedAt": "2017-05-12T00:00:00.000Z"}])
    assert "BAD_REQUEST: accounts must not be empty" in caught.value.message


def test_no_secret_in_any_error_message(emu):
    api, source, _ = emulator_client(emu)
    secrets_seen = {
        source.current.access_token.reveal(),
        source.current.refresh_token.reveal(),
        emu.default_client.client_secret.reveal(),
    }
    emu.inject_fault("/me", status=401, times=2, body={"code": 401, "message": "Unauthorized"})
    errors = []
    for call in (api.me, lambda: api.jira_myself("00000000-0000-0000-0000-000000000000")):
        try:
            call()
        except PlaybookError as error:
            errors.append(error)
    secrets_seen |= {source.current.access_token.reveal(), source.current.refresh_token.reveal()}
    assert len(errors) == 2
    for error in errors:
        text = f"{error} {error.one_line()} {error!r}"
        for secret in secrets_seen:
            assert secret not in text
