"""The bearer token of a gateway request, as an ``httpx.Auth`` flow (like httpx's DigestAuth).

:class:`TokenAuth` takes its tokens from a :class:`~.tokens.TokenSource` and owns no storage:
the source refreshes, rotates and persists (authlib's ``update_token`` idea). The flow

* refreshes a token that expires within :data:`REFRESH_LEEWAY` seconds before sending it (a
  token without a refresh token is used for the seconds it has left, unless its source renews
  such tokens: a service account's fetches a new one with the client credentials);
* sends the request with ``Authorization: Bearer …``;
* on a 401 that is not a scope failure, refreshes once and sends the request again.

A 401 or 403 that says "scope missing" (``X-Failure-Category: FAILURE_CLIENT_SCOPE_CHECK``, or
"scope does not match" in the body) is not an expired token: a new token would carry the same
scopes, so it is handed back as it is (FACTS.md, "Rate limits and errors").
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from ._http import error_detail
from .redact import get_logger
from .tokens import TokenSet, TokenSource

__all__ = ["TokenAuth", "is_scope_failure", "REFRESH_LEEWAY"]

log = get_logger(__name__)

# Refresh a token this many seconds before it expires, so it does not expire in flight.
REFRESH_LEEWAY = 60.0

SCOPE_FAILURE_HEADER = "X-Failure-Category"
SCOPE_FAILURE_VALUE = "FAILURE_CLIENT_SCOPE_CHECK"


def is_scope_failure(response: httpx.Response) -> bool:
    """True when a 401/403 says the token lacks the endpoint's scope (not that it expired)."""
    category = response.headers.get(SCOPE_FAILURE_HEADER, "")
    return (
        category.upper() == SCOPE_FAILURE_VALUE
        or "scope does not match" in error_detail(response).lower()
    )


class TokenAuth(httpx.Auth):
    """Bearer auth from a token source, refreshed before expiry and once on an expired 401.

    Make one per logical call (:meth:`~.api.ApiClient.request` does): it refreshes after a 401
    at most once over all the times the call is sent, so a 401, a 503 and a 401 again end in
    the second 401, not in a second rotation. The refresh blocks (a file lock, the token
    endpoint): for a synchronous ``httpx.Client``.
    """

    # The body tells a scope failure ("scope does not match") from an expired token.
    requires_response_body = True

    def __init__(self, tokens: TokenSource, *, leeway: float = REFRESH_LEEWAY) -> None:
        self.tokens = tokens
        self.leeway = leeway
        self._refreshed_after_401 = False

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        endpoint = f"{request.method} {request.url.path}"
        token = self._usable_token(endpoint)
        _bear(request, token)
        response = yield request
        if (
            response.status_code != 401
            or self._refreshed_after_401
            or is_scope_failure(response)
        ):
            return
        log.debug("401 on %s: refreshing the token once and retrying", endpoint)
        self._refreshed_after_401 = True
        _bear(request, self.tokens.refresh(token))
        yield request

    def _usable_token(self, endpoint: str) -> TokenSet:
        token = self.tokens.get()
        if not token.is_expiring(self.leeway):
            return token
        renews = getattr(self.tokens, "renews_without_refresh_token", False)
        if token.refresh_token is None and not renews and not token.is_expiring(0):
            # Nothing to refresh with (no offline_access): use the last seconds it has.
            log.debug("token expires within %ss and cannot be refreshed", self.leeway)
            return token
        log.debug("token expires within %ss: refreshing before %s", self.leeway, endpoint)
        return self.tokens.refresh(token)


def _bear(request: httpx.Request, token: TokenSet) -> None:
    request.headers["Authorization"] = f"Bearer {token.access_token.reveal()}"
