"""The API gateway client: sites, identity, Jira, Confluence and personal data reporting.

Every request goes to ``settings.api_base_url`` (``https://api.atlassian.com``): a 3LO token
works only through the gateway, never at ``https://<site>.atlassian.net`` (FACTS.md, "Call the
APIs through the gateway"). The client owns no token storage: it asks a
:class:`~atlassian_playbook.tokens.TokenSource` for the current token and for a refresh, which
rotates and persists it (authlib's ``update_token`` idea).

The HTTP policy lives in httpx's seams, not here: :class:`~.auth.TokenAuth` sends the bearer
token, refreshes it before expiry and once on an expired-token 401; the
:class:`~._retry.RetryPolicy` shared with the token endpoint honours ``429 Retry-After``
(bounded) and retries 5xx and transport errors with capped exponential backoff. This module
keeps the endpoints and what their answers mean:

* "scope missing" (``X-Failure-Category: FAILURE_CLIENT_SCOPE_CHECK`` or "scope does not
  match") is :class:`ScopeNotGranted` naming the endpoint's scopes, a 401 left after the
  refresh :class:`TokenExpired`, a 429/5xx left after the retries :class:`RateLimited` /
  :class:`ServerError`;
* Jira (``errorMessages``/``errors``), gateway (``message``) and reporting
  (``errorType``/``errorMessage``) error bodies are surfaced in the message, redacted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlsplit

import httpx

from ._http import error_detail, new_client
from ._retry import RetryPolicy, Sent
from .auth import TokenAuth, is_scope_failure
from .errors import (
    ApiError,
    ConfigError,
    PlaybookError,
    RateLimited,
    ScopeNotGranted,
    ServerError,
    SiteSelectionRequired,
    TokenExpired,
)
from .redact import get_logger, redact
from .sites import Site, choose_site, group_sites

if TYPE_CHECKING:
    from .config import Settings
    from .tokens import TokenSource

__all__ = [
    "ApiClient",
    "Site",
    "ReportResult",
    "choose_site",
    "group_sites",
    "MAX_REPORT_ACCOUNTS",
]

log = get_logger(__name__)

# Atlassian's documented limit for POST /app/report-accounts/ (FACTS.md, personal data reporting).
MAX_REPORT_ACCOUNTS = 90
RATE_LIMIT_HEADERS = (
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-NearLimit",
    "RateLimit-Reason",
)


class _Closeable(Protocol):
    def close(self) -> object: ...



@dataclass(frozen=True)
class ReportResult:
    """One answer of ``POST /app/report-accounts/``.

    ``status_code`` 204 means nothing to do; 200 lists the accounts whose data must be erased
    (``closed``) or refreshed or erased (``updated``). ``cycle_period`` is the ``Cycle-Period``
    header (ISO 8601 duration), ``None`` when absent.
    """

    status_code: int
    accounts: tuple[dict[str, Any], ...] = ()
    cycle_period: str | None = None

    @property
    def closed(self) -> list[str]:
        return [a["accountId"] for a in self.accounts if a.get("status") == "closed"]

    @property
    def updated(self) -> list[str]:
        return [a["accountId"] for a in self.accounts if a.get("status") == "updated"]


def _required_scopes(method: str, path: str) -> list[tuple[str, ...]]:
    """Scope alternatives for an endpoint from the catalog, or ``[]`` when unknown."""
    try:
        from . import scopes
    except ImportError:  # the catalog is optional for this module
        return []
    try:
        return [tuple(alt) for alt in scopes.required_scopes(method, path) or ()]
    except PlaybookError:
        return []
    except (KeyError, LookupError, ValueError):
        return []


def _describe_alternatives(alternatives: Sequence[Sequence[str]]) -> str:
    """``read:jira-work or read:project:jira + read:user:jira + 9 more`` (one line)."""
    shown = []
    for alt in alternatives:
        if not alt:
            continue
        if len(alt) > 3:
            shown.append(" + ".join(alt[:2]) + f" + {len(alt) - 2} more")
        else:
            shown.append(" + ".join(alt))
    return " or ".join(shown)


class ApiClient:
    """Calls ``api.atlassian.com`` with a token from a token source.

    ``max_retries`` bounds the retries of 429, 5xx and transport errors; a ``Retry-After``
    longer than ``max_retry_wait`` seconds is not waited for: :class:`RateLimited` is raised
    at once with the server's value (the knobs of :class:`~.oauth.OAuthClient` too). ``sleep``
    is injectable so tests observe waits without waiting. ``owns`` are closed with the client:
    the :class:`~.oauth.OAuthClient` behind a :class:`~.tokens.StoredTokenSource`, say.
    """

    def __init__(
        self,
        settings: Settings,
        tokens: TokenSource,
        http: httpx.Client | None = None,
        *,
        max_retries: int = 3,
        max_retry_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        owns: Iterable[_Closeable] = (),
    ) -> None:
        _check_gateway(settings.api_base_url)
        self.settings = settings
        self.tokens = tokens
        self.base_url = settings.api_base_url.rstrip("/")
        self.retry = RetryPolicy(max(0, int(max_retries)), float(max_retry_wait), sleep)
        self._owns = list(owns)
        if http is None:
            http = new_client(timeout=30.0)
            self._owns.append(http)
        self.http = http
        self.rate_limit: dict[str, str] = {}
        self._site_scopes: dict[str, tuple[str, ...]] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        for resource in self._owns:
            resource.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the core ----------------------------------------------------------------------------

    @property
    def near_limit(self) -> bool:
        """True when the last answer carried ``X-RateLimit-NearLimit: true``."""
        return self.rate_limit.get("X-RateLimit-NearLimit", "").lower() == "true"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send ``method path`` (relative to the gateway) and return a 2xx response.

        Raises :class:`ScopeNotGranted`, :class:`TokenExpired`, :class:`RateLimited`,
        :class:`ServerError` or :class:`ApiError`; every message is redacted.
        """
        method = method.upper()
        if not path.startswith("/"):
            path = "/" + path
        url = self.base_url + path
        endpoint = f"{method} {path}"
        request_headers = {"Accept": "application/json", **(headers or {})}
        auth = TokenAuth(self.tokens)  # one per call: one refresh after a 401, whatever retries

        def send() -> httpx.Response:
            response = self.http.request(
                method, url, params=params, json=json, headers=request_headers, auth=auth
            )
            self._remember_rate_limit(response)
            return response

        try:
            sent = self.retry.send(send, what=endpoint, retry_errors=(httpx.TransportError,))
        except httpx.TransportError as exc:
            raise ApiError(
                f"{endpoint} could not reach {self.base_url}: "
                f"{redact(exc) or type(exc).__name__}.",
                "Check the network and ATLASSIAN_API_BASE_URL, then try again.",
                url=url,
            ) from None
        if sent.response.is_success:
            return sent.response
        raise self._error(method, path, url, sent)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        response = self.request("GET", path, **kwargs)
        return _json_body(response)

    def _remember_rate_limit(self, response: httpx.Response) -> None:
        seen = {
            name: response.headers[name] for name in RATE_LIMIT_HEADERS if name in response.headers
        }
        if seen or response.status_code == 429:
            self.rate_limit = seen

    def _error(self, method: str, path: str, url: str, sent: Sent) -> PlaybookError:
        """What a non-2xx answer, left after the auth flow and the retries, means."""
        response = sent.response
        status = response.status_code
        endpoint = f"{method} {path}"
        detail = error_detail(response)
        if status in (401, 403) and is_scope_failure(response):
            return self._scope_error(method, path, url, status, detail)
        if status == 401:
            return TokenExpired(
                f"{endpoint} answered 401 ({detail or 'Unauthorized'}) even after a token "
                "refresh.",
                "The grant may have been revoked, or the token does not cover this site: "
                "log in again (`atlassian-playbook login`) and choose this site.",
                status_code=status,
                url=url,
            )
        if status == 403:
            return self._forbidden(method, path, url, detail)
        retries = f"{sent.retries} retr{'y' if sent.retries == 1 else 'ies'}"
        if status == 429:
            retry_after = sent.retry_after
            wait = f" Retry-After {retry_after:g} s." if retry_after is not None else ""
            reason = response.headers.get("RateLimit-Reason")
            return RateLimited(
                f"{endpoint} is rate limited (429) after {retries}.{wait}"
                + (f" Limit hit: {reason}." if reason else "")
                + (f" {detail}." if detail else ""),
                (
                    f"Wait {retry_after:g} s before trying again and lower the pace."
                    if retry_after is not None
                    else None
                ),
                retry_after=retry_after,
                status_code=status,
                url=url,
            )
        if status >= 500:
            return ServerError(
                f"{endpoint} answered {status} after {retries}"
                + (f": {detail}." if detail else "."),
                status_code=status,
                url=url,
            )
        return ApiError(
            f"{endpoint} answered {status}" + (f": {detail}." if detail else "."),
            _client_error_hint(status),
            status_code=status,
            url=url,
        )

    def _scope_error(
        self, method: str, path: str, url: str, status: int, detail: str
    ) -> ScopeNotGranted:
        alternatives = _required_scopes(method, path)
        needed = _describe_alternatives(alternatives)
        error = ScopeNotGranted(
            f"{method} {path} answered {status} ({detail or 'scope does not match'}): the token "
            "lacks this endpoint's scope on this site"
            + (f"; it needs {needed}." if needed else "."),
            "Add the scope on the console's Permissions tab, request it in ATLASSIAN_SCOPES and "
            "log in again, choosing this site on the consent screen; scopes granted on one site "
            "can differ from another's.",
            status_code=status,
            url=url,
        )
        # The full sets, for callers that show them (the message abbreviates long ones).
        error.alternatives = alternatives
        return error

    def _forbidden(self, method: str, path: str, url: str, detail: str) -> ApiError:
        # FACTS.md: treat a 401/403 on a valid token as "scope not granted on this site" - unless
        # the product itself explains the refusal (a Jira permission error body).
        if detail and "permission" in detail.lower():
            return ApiError(
                f"{method} {path} answered 403: {detail}.",
                "The signed-in user lacks this permission in the product; a site admin can "
                "grant it (the app's scopes cannot exceed the user's own permissions).",
                status_code=403,
                url=url,
            )
        return self._scope_error(method, path, url, 403, detail)

    # -- sites -------------------------------------------------------------------------------

    def accessible_resources(self) -> list[Site]:
        """The sites the token reaches, one :class:`Site` per cloud id (entries grouped)."""
        body = self.get_json("/oauth/token/accessible-resources")
        if not isinstance(body, list):
            raise ApiError(
                "accessible-resources did not answer with a list.",
                "Check ATLASSIAN_API_BASE_URL points at the API gateway (https://api.atlassian.com).",
                url=self.base_url + "/oauth/token/accessible-resources",
            )
        sites = group_sites(body)
        self._site_scopes.update({site.id: site.scopes for site in sites})
        return sites

    @staticmethod
    def choose_site(sites: Sequence[Site], wanted: str | None = None) -> Site:
        """See :func:`choose_site`."""
        return choose_site(sites, wanted)

    def site(self, wanted: str | None = None) -> Site:
        """The site to use: ``wanted``, else ``settings.site``, else the only one."""
        return choose_site(self.accessible_resources(), wanted or self.settings.site)

    # -- identity and products ---------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        """The signed-in user's profile (``GET /me``, scope ``read:me``)."""
        return self.get_json("/me")

    def jira_myself(self, cloud_id: str) -> dict[str, Any]:
        return self.get_json(f"/ex/jira/{_segment(cloud_id)}/rest/api/3/myself")

    def jira_server_info(self, cloud_id: str) -> dict[str, Any]:
        return self.get_json(f"/ex/jira/{_segment(cloud_id)}/rest/api/3/serverInfo")

    def confluence_spaces_path(self, cloud_id: str, scopes: Iterable[str] | None = None) -> str:
        """v2 ``/wiki/api/v2/spaces`` when ``read:space:confluence`` is granted, else v1."""
        granted = set(scopes if scopes is not None else self._granted_for(cloud_id))
        prefix = f"/ex/confluence/{_segment(cloud_id)}"
        if "read:space:confluence" in granted:
            return prefix + "/wiki/api/v2/spaces"
        return prefix + "/wiki/rest/api/space"

    def confluence_spaces(
        self, cloud_id: str, limit: int = 5, *, scopes: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """A page of spaces: v2 with the granular scope, else v1 (classic scope).

        ``scopes`` defaults to the site's granted scopes when :meth:`accessible_resources` has
        been called, else the token's.
        """
        path = self.confluence_spaces_path(cloud_id, scopes)
        return self.get_json(path, params={"limit": int(limit)})

    def _granted_for(self, cloud_id: str) -> tuple[str, ...]:
        if cloud_id in self._site_scopes:
            return self._site_scopes[cloud_id]
        return tuple(self.tokens.get().scopes)

    # -- personal data reporting -------------------------------------------------------------

    def report_accounts(self, accounts: list[dict[str, Any]]) -> ReportResult:
        """One ``POST /app/report-accounts/`` call (at most 90 accounts, checked here).

        For the whole cycle (batching, Cycle-Period) use
        :func:`atlassian_playbook.reporting.report_accounts_cycle`.
        """
        accounts = list(accounts)
        if len(accounts) > MAX_REPORT_ACCOUNTS:
            raise PlaybookError(
                f"report_accounts got {len(accounts)} accounts; the personal data reporting API "
                f"takes at most {MAX_REPORT_ACCOUNTS} per request (it answers 400 otherwise).",
                "Send batches of at most 90, or use reporting.report_accounts_cycle(), which "
                "batches for you.",
            )
        if not accounts:
            return ReportResult(status_code=204)
        for account in accounts:
            if (
                not isinstance(account, Mapping)
                or not account.get("accountId")
                or not account.get("updatedAt")
            ):
                raise PlaybookError(
                    "Each reported account needs an accountId and an updatedAt "
                    f"(ISO 8601, e.g. 2017-05-12T00:00:00.000Z); got {redact(account)!r}.",
                    "Report the Atlassian account id and when you last stored or refreshed the "
                    "person's data.",
                )
        response = self.request(
            "POST",
            "/app/report-accounts/",
            json={"accounts": [dict(a) for a in accounts]},
            headers={"Content-Type": "application/json"},
        )
        cycle = response.headers.get("Cycle-Period")
        if response.status_code == 204 or not response.content:
            return ReportResult(status_code=response.status_code, cycle_period=cycle)
        body = _json_body(response)
        listed = body.get("accounts") if isinstance(body, dict) else None
        return ReportResult(
            status_code=response.status_code,
            accounts=tuple(dict(a) for a in (listed or ()) if isinstance(a, Mapping)),
            cycle_period=cycle,
        )


def _segment(value: str) -> str:
    if not value or not str(value).strip():
        raise SiteSelectionRequired(
            "No cloud id given for a product call.",
            "Use a site from accessible_resources() (Site.id is the cloud id).",
        )
    return quote(str(value).strip(), safe="")


def _json_body(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        raise ApiError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code} with a body that is not JSON: "
            f"{redact(response.text[:200])!r}.",
            "Check ATLASSIAN_API_BASE_URL points at the API gateway (https://api.atlassian.com).",
            status_code=response.status_code,
            url=str(response.request.url),
        ) from None


def _client_error_hint(status: int) -> str:
    if status == 404:
        return (
            "Check the cloud id (Site.id from accessible-resources) and that the product is "
            "installed on that site."
        )
    if status == 400:
        return "The request was malformed; the message above says which field."
    return "See the message above; the README's troubleshooting section lists common causes."


def _check_gateway(api_base_url: str) -> None:
    host = (urlsplit(api_base_url).hostname or "").lower()
    if host == "atlassian.net" or host.endswith(".atlassian.net"):
        raise ConfigError(
            f"ATLASSIAN_API_BASE_URL={api_base_url!r} is a site URL; a 3LO token only works "
            "through the API gateway (it gets 401 at <site>.atlassian.net).",
            "Set ATLASSIAN_API_BASE_URL=https://api.atlassian.com (or unset it); the site is "
            "chosen by cloud id with ATLASSIAN_SITE.",
            setting="ATLASSIAN_API_BASE_URL",
        )
