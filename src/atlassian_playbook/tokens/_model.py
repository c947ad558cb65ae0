"""What Atlassian hands back and what the playbook keeps of it: :class:`TokenSet` (one token
response), :class:`TokenEntry` (a stored connection), the :class:`TokenSource` protocol the
HTTP code reads tokens through, and a source that cannot refresh."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..errors import (
    OAuthError,
    ReauthorizationRequired,
)
from ..redact import Secret, mask

# Atlassian's access tokens last an hour (FACTS.md); used only when a response omits expires_in.
DEFAULT_EXPIRES_IN = 3600
# Atlassian still accepts a rotated-out refresh token for 10 minutes; presenting it later
# revokes the whole grant (FACTS.md, "Refresh tokens").
REUSE_LEEWAY = 600

# How a stored connection got its tokens, so how it gets the next ones: the authorization code
# grant (3LO, renewed with its refresh token) or a service account's client credentials
# (renewed by fetching a new token with the client id and secret: there is no refresh token).
AUTHORIZATION_CODE = "authorization_code"
CLIENT_CREDENTIALS = "client_credentials"
GRANTS = (AUTHORIZATION_CODE, CLIENT_CREDENTIALS)


@dataclass(frozen=True)
class TokenSet:
    """One token response: an access token, maybe a refresh token, expiry and granted scopes.

    ``refresh_token`` is ``None`` when ``offline_access`` was not granted; such a connection
    works for an hour and then needs a new login.
    """

    access_token: Secret
    refresh_token: Secret | None
    expires_at: float
    scopes: tuple[str, ...] = ()
    token_type: str = "Bearer"

    @classmethod
    def from_response(cls, body: Mapping[str, Any], now: float | None = None) -> TokenSet:
        """Parse the token endpoint's JSON (authorization code or refresh grant).

        Raises :class:`OAuthError` when ``access_token`` is missing: a 2xx without one is not
        a token response, whatever else it says.
        """
        if not isinstance(body, Mapping) or not body.get("access_token"):
            keys = sorted(body) if isinstance(body, Mapping) else type(body).__name__
            raise OAuthError(
                f"The token endpoint answered without an access_token (got {keys}).",
                "Check ATLASSIAN_AUTH_BASE_URL: it must be https://auth.atlassian.com (or the "
                "emulator), not a proxy or login page.",
            )
        now = time.time() if now is None else now
        try:
            expires_in = float(body.get("expires_in", DEFAULT_EXPIRES_IN))
        except (TypeError, ValueError):
            expires_in = DEFAULT_EXPIRES_IN
        refresh = body.get("refresh_token")
        scope = body.get("scope") or ""
        scopes = tuple(scope.split()) if isinstance(scope, str) else tuple(scope)
        return cls(
            access_token=Secret(str(body["access_token"])),
            refresh_token=Secret(str(refresh)) if refresh else None,
            expires_at=now + expires_in,
            scopes=tuple(dict.fromkeys(scopes)),
            token_type=str(body.get("token_type") or "Bearer"),
        )

    def expires_in(self, now: float | None = None) -> float:
        """Seconds until the access token expires (negative once it has)."""
        return self.expires_at - (time.time() if now is None else now)

    def is_expiring(self, leeway: float = 60, now: float | None = None) -> bool:
        """True when the access token expires within ``leeway`` seconds (or already has)."""
        return self.expires_in(now) <= leeway

    @property
    def has_refresh_token(self) -> bool:
        return self.refresh_token is not None

    def with_refresh_token(self, fallback: Secret | None) -> TokenSet:
        """This set, keeping ``fallback`` when the response carried no refresh token."""
        if self.refresh_token is not None or fallback is None:
            return self
        return dataclasses.replace(self, refresh_token=fallback)

    def to_json(self) -> dict[str, Any]:
        """The revealed values, for the 0600 token store only."""
        return {
            "access_token": self.access_token.reveal(),
            "refresh_token": self.refresh_token.reveal() if self.refresh_token else None,
            "expires_at": self.expires_at,
            "scopes": list(self.scopes),
            "token_type": self.token_type,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenSet:
        refresh = data.get("refresh_token")
        return cls(
            access_token=Secret(data["access_token"]),
            refresh_token=Secret(refresh) if refresh else None,
            expires_at=float(data["expires_at"]),
            scopes=tuple(data.get("scopes") or ()),
            token_type=data.get("token_type") or "Bearer",
        )

    def __repr__(self) -> str:
        return (
            f"TokenSet(access_token={mask(self.access_token.reveal())}, "
            f"refresh_token={mask(self.refresh_token.reveal() if self.refresh_token else None)}, "
            f"expires_at={self.expires_at:.0f}, scopes={' '.join(self.scopes)!r})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class TokenEntry:
    """One stored connection: a client, the account that consented, its tokens and site.

    ``account_id`` is the Atlassian account id from ``/me`` when known (``None`` when the
    login did not ask for ``read:me``); ``site`` is the chosen accessible resource, if any.
    ``refresh_started_at`` is set while a refresh is in flight and cleared by the save of its
    answer: found set later, it means an answer was lost (a killed process, a timeout), and
    Atlassian accepts the stored refresh token only until it plus :data:`REUSE_LEEWAY`.
    ``grant`` is how the tokens were obtained (:data:`GRANTS`); entries stored before it
    existed read as :data:`AUTHORIZATION_CODE`.
    """

    client_id: str
    account_id: str | None
    tokens: TokenSet
    requested_scopes: tuple[str, ...] = ()
    site: dict[str, Any] | None = None
    updated_at: float = field(default_factory=time.time)
    refresh_started_at: float | None = None
    grant: str = AUTHORIZATION_CODE

    @property
    def is_service_account(self) -> bool:
        """True for a client-credentials connection: new tokens come from the client id and
        secret, never from a refresh token."""
        return self.grant == CLIENT_CREDENTIALS

    @property
    def key(self) -> str:
        return f"{self.client_id}:{self.account_id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "account_id": self.account_id,
            "tokens": self.tokens.to_json(),
            "requested_scopes": list(self.requested_scopes),
            "site": self.site,
            "updated_at": self.updated_at,
            "refresh_started_at": self.refresh_started_at,
            "grant": self.grant,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenEntry:
        return cls(
            client_id=data["client_id"],
            account_id=data.get("account_id"),
            tokens=TokenSet.from_json(data["tokens"]),
            requested_scopes=tuple(data.get("requested_scopes") or ()),
            site=data.get("site"),
            updated_at=float(data.get("updated_at") or 0.0),
            refresh_started_at=data.get("refresh_started_at"),
            grant=data.get("grant") or AUTHORIZATION_CODE,
        )

    def __repr__(self) -> str:
        site = (self.site or {}).get("name") or (self.site or {}).get("id")
        return (
            f"TokenEntry(client_id={self.client_id!r}, account_id={self.account_id!r}, "
            f"site={site!r}, tokens={self.tokens!r}, updated_at={self.updated_at:.0f})"
        )

    __str__ = __repr__


def _describe(client_id: str | None, account_id: str | None) -> str:
    parts = []
    if client_id:
        parts.append(f"client {client_id}")
    if account_id:
        parts.append(f"account {account_id}")
    return f"for {' and '.join(parts)} " if parts else ""


@runtime_checkable
class TokenSource(Protocol):
    """What :class:`~.auth.TokenAuth` (so :class:`~.api.ApiClient`) needs: the current tokens,
    and a way to renew them.

    ``refresh(stale)`` must be safe to call from many places at once: it renews at most once
    per rotation and persists the result before returning it. A source that renews tokens
    without a refresh token (a service account's) says so with a true
    ``renews_without_refresh_token`` attribute (optional; absent means false).
    """

    def get(self) -> TokenSet: ...

    def refresh(self, stale: TokenSet) -> TokenSet: ...


class StaticTokenSource:
    """Fixed tokens that cannot be refreshed (a pasted access token, a test)."""

    def __init__(self, tokens: TokenSet) -> None:
        self._tokens = tokens

    def get(self) -> TokenSet:
        return self._tokens

    def refresh(self, stale: TokenSet) -> TokenSet:
        raise ReauthorizationRequired(
            "These tokens cannot be refreshed here (no token store behind them).",
            "Run `atlassian-playbook login` to store a connection that can be refreshed.",
        )


def entries_summary(entries: Sequence[TokenEntry], now: float | None = None) -> list[dict]:
    """Displayable rows (masked) for the CLI's and notebooks' token tables."""
    rows = []
    for e in entries:
        rows.append(
            {
                "client_id": e.client_id,
                "account_id": e.account_id,
                "site": (e.site or {}).get("name") or (e.site or {}).get("url"),
                "scopes": " ".join(e.tokens.scopes),
                "expires_in": round(e.tokens.expires_in(now)),
                "refresh_token": str(e.tokens.refresh_token) if e.tokens.refresh_token else None,
                "updated_at": e.updated_at,
            }
        )
    return rows
