"""ApiClient: site grouping and choice, token refresh, scope errors, retries, error bodies.

Behaviour against Atlassian's gateway is tested on the real emulator over loopback; the pure
parts (grouping, choosing) need no server. A few cases the emulator cannot produce (an HTTP-date
Retry-After, a Jira permission 403) use httpx.MockTransport.
"""

from __future__ import annotations

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
from atlassian_playbook.redact import Secret
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


# Keep the error classes imported for the emulator tests below.
_ = (RateLimited, ServerError, TokenExpired)
