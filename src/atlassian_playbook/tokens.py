"""Tokens: what Atlassian hands back, where they are kept, and how they are renewed safely.

Atlassian rotates refresh tokens: every refresh returns a new one and retires the one sent.
Presenting a retired token after the short reuse leeway is treated as theft and revokes the
whole grant (FACTS.md, "Refresh tokens"), so the user has to consent again. Two rules follow,
and this module enforces both:

* a rotated refresh token is written to the store (atomically, mode 0600) *before* anyone uses
  the new access token, so a crash can never lose it;
* refreshes of one entry are serialised by an inter-process lock, and whoever gets the lock
  second re-reads the store and takes the tokens the first one saved instead of refreshing
  again, so a batch of processes never presents the same refresh token twice.

Nothing here prints a token: :class:`TokenSet` keeps them in :class:`~.redact.Secret`, and the
entries' ``repr`` shows masks only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from filelock import Timeout as LockTimeout

from ._files import atomic_write_json, file_lock, read_json
from .errors import OAuthError, ReauthorizationRequired, TokenStoreError
from .redact import Secret, get_logger, mask

if TYPE_CHECKING:
    from .oauth import OAuthClient

__all__ = [
    "TokenSet",
    "TokenEntry",
    "TokenStore",
    "TokenSource",
    "StoredTokenSource",
    "StaticTokenSource",
]

logger = get_logger(__name__)

STORE_VERSION = 1
# Atlassian's access tokens last an hour (FACTS.md); used only when a response omits expires_in.
DEFAULT_EXPIRES_IN = 3600


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
    """

    client_id: str
    account_id: str | None
    tokens: TokenSet
    requested_scopes: tuple[str, ...] = ()
    site: dict[str, Any] | None = None
    updated_at: float = field(default_factory=time.time)

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
        )

    def __repr__(self) -> str:
        site = (self.site or {}).get("name") or (self.site or {}).get("id")
        return (
            f"TokenEntry(client_id={self.client_id!r}, account_id={self.account_id!r}, "
            f"site={site!r}, tokens={self.tokens!r}, updated_at={self.updated_at:.0f})"
        )

    __str__ = __repr__


class TokenStore:
    """A JSON file of :class:`TokenEntry`, keyed by client id and account id.

    The file is mode 0600 and replaced atomically on every write; a store-wide lock serialises
    the read-modify-write of :meth:`put` and :meth:`delete` between processes, and
    :meth:`lock` gives a per-entry lock for a refresh (always taken *before* the store lock).
    """

    def __init__(self, path: str | Path, *, lock_timeout: float = 60.0) -> None:
        self.path = Path(path).expanduser()
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    # -- reading ---------------------------------------------------------------------------

    def _load(self) -> dict[str, TokenEntry]:
        try:
            data = read_json(self.path, default=None)
        except (OSError, ValueError) as exc:
            raise TokenStoreError(
                f"The token store {self.path} cannot be read ({type(exc).__name__}).",
                f"Delete {self.path} and run `atlassian-playbook login` again, or point "
                "ATLASSIAN_TOKEN_STORE at another file.",
            ) from None
        if data is None:
            return {}
        try:
            entries = [TokenEntry.from_json(raw) for raw in data.get("entries", {}).values()]
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise TokenStoreError(
                f"The token store {self.path} is not in the expected format "
                f"({type(exc).__name__}).",
                f"Delete {self.path} and run `atlassian-playbook login` again.",
            ) from None
        return {entry.key: entry for entry in entries}

    def list(self) -> list[TokenEntry]:
        """Every stored entry, oldest update first."""
        return sorted(self._load().values(), key=lambda e: e.updated_at)

    def find(self, client_id: str, account_id: str | None) -> TokenEntry | None:
        """The entry with exactly this client id and account id, or ``None``."""
        return self._load().get(f"{client_id}:{account_id}")

    def get(self, client_id: str | None = None, account_id: str | None = None) -> TokenEntry:
        """The one entry matching the given client id and/or account id.

        ``None`` matches anything. Raises :class:`TokenStoreError` when nothing or more than
        one entry matches; the hint says how to fix either.
        """
        matches = [
            e
            for e in self._load().values()
            if (client_id is None or e.client_id == client_id)
            and (account_id is None or e.account_id == account_id)
        ]
        if len(matches) == 1:
            return matches[0]
        wanted = _describe(client_id, account_id)
        if not matches:
            raise TokenStoreError(
                f"No stored connection {wanted}in {self.path}.",
                "Run `atlassian-playbook login` to connect"
                + (" this account" if account_id else "")
                + ", or check ATLASSIAN_TOKEN_STORE and ATLASSIAN_CLIENT_ID.",
            )
        accounts = ", ".join(sorted(f"{e.client_id}/{e.account_id}" for e in matches))
        raise TokenStoreError(
            f"{len(matches)} stored connections match {wanted.strip() or 'the request'} "
            f"({accounts}).",
            "Pass the account id (--account on the CLI, account_id= in Python) to choose one.",
        )

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def _store_lock(self) -> Iterator[None]:
        try:
            with file_lock(self.path, timeout=self.lock_timeout):
                yield
        except LockTimeout:
            raise TokenStoreError(
                f"Timed out after {self.lock_timeout:g} s waiting for the lock on {self.path}.",
                f"Another process holds {self.path}.lock; let it finish, or remove the lock "
                "file if no playbook process is running.",
            ) from None

    def _save(self, entries: Mapping[str, TokenEntry]) -> None:
        data = {
            "version": STORE_VERSION,
            "entries": {key: entry.to_json() for key, entry in sorted(entries.items())},
        }
        atomic_write_json(self.path, data)

    def put(self, entry: TokenEntry) -> TokenEntry:
        """Add or replace ``entry`` (same client id and account id), atomically."""
        with self._store_lock():
            entries = self._load()
            entries[entry.key] = entry
            self._save(entries)
        logger.debug("stored tokens for %s in %s", entry.key, self.path)
        return entry

    def delete(self, client_id: str, account_id: str | None) -> bool:
        """Remove one entry; True when it existed."""
        key = f"{client_id}:{account_id}"
        with self._store_lock():
            entries = self._load()
            if entries.pop(key, None) is None:
                return False
            self._save(entries)
        return True

    @contextmanager
    def lock(self, client_id: str, account_id: str | None) -> Iterator[None]:
        """Hold the inter-process lock of one entry (for a refresh).

        A separate lock file per entry, named by a hash of the key (account ids contain
        colons, and entries must not wait for each other).
        """
        digest = hashlib.sha256(f"{client_id}:{account_id}".encode()).hexdigest()[:16]
        lock_path = self.path.with_name(f"{self.path.name}.{digest}")
        try:
            with file_lock(lock_path, timeout=self.lock_timeout):
                yield
        except LockTimeout:
            raise TokenStoreError(
                f"Timed out after {self.lock_timeout:g} s waiting for another process to "
                f"refresh {_describe(client_id, account_id).strip()}.",
                "Another process is refreshing this connection; if none is running, remove "
                f"{lock_path}.lock and try again.",
            ) from None


def _describe(client_id: str | None, account_id: str | None) -> str:
    parts = []
    if client_id:
        parts.append(f"client {client_id}")
    if account_id:
        parts.append(f"account {account_id}")
    return f"for {' and '.join(parts)} " if parts else ""


@runtime_checkable
class TokenSource(Protocol):
    """What :class:`~.api.ApiClient` needs: the current tokens, and a way to renew them.

    ``refresh(stale)`` must be safe to call from many places at once: it renews at most once
    per rotation and persists the result before returning it.
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


class StoredTokenSource:
    """A :class:`TokenSource` backed by one entry of a :class:`TokenStore`.

    ``account_id=None`` picks the only entry for ``client_id`` (an error when there are
    several). ``on_update(entry)`` is called after rotated tokens were saved — authlib's
    ``update_token`` idea, for callers that keep a copy elsewhere.
    """

    def __init__(
        self,
        store: TokenStore,
        oauth: OAuthClient,
        client_id: str,
        account_id: str | None = None,
        *,
        on_update: Callable[[TokenEntry], object] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.oauth = oauth
        self.client_id = client_id
        self.account_id = account_id
        self.on_update = on_update
        self._clock = clock
        self._resolved: tuple[str, str | None] | None = None

    def __repr__(self) -> str:
        return (
            f"StoredTokenSource(store={self.store!r}, client_id={self.client_id!r}, "
            f"account_id={self.account_id!r})"
        )

    def entry(self) -> TokenEntry:
        """The current entry, re-read from the file (another process may have rotated it)."""
        if self._resolved is None:
            found = self.store.get(self.client_id, self.account_id)
            self._resolved = (found.client_id, found.account_id)
            return found
        found = self.store.find(*self._resolved)
        if found is None:
            raise TokenStoreError(
                f"The stored connection {_describe(*self._resolved)}was deleted from "
                f"{self.store.path}.",
                "Run `atlassian-playbook login` again.",
            )
        return found

    def get(self) -> TokenSet:
        return self.entry().tokens

    def refresh(self, stale: TokenSet) -> TokenSet:
        """Renew ``stale`` once, under the entry's lock, and persist before returning.

        If the stored tokens are no longer ``stale`` (another process or thread refreshed
        while we waited for the lock), they are returned as they are: Atlassian is not called
        and no refresh token is presented twice. The refresh always uses the *stored* refresh
        token, never the one in ``stale``.
        """
        entry = self.entry()
        client_id, account_id = entry.client_id, entry.account_id
        with self.store.lock(client_id, account_id):
            current = self.store.find(client_id, account_id)
            if current is None:
                raise TokenStoreError(
                    f"The stored connection {_describe(client_id, account_id)}disappeared "
                    f"from {self.store.path} during a refresh.",
                    "Run `atlassian-playbook login` again.",
                )
            tokens = current.tokens
            if _rotated_since(tokens, stale) and not tokens.is_expiring(0, self._clock()):
                logger.debug("tokens for %s were already refreshed elsewhere", current.key)
                return tokens
            if tokens.refresh_token is None:
                raise ReauthorizationRequired(
                    "This connection has no refresh token (offline_access was not granted), "
                    "and its access token cannot be renewed.",
                    "Add offline_access to ATLASSIAN_SCOPES and run `atlassian-playbook login` "
                    "again.",
                )
            fresh = self.oauth.refresh(tokens.refresh_token).with_refresh_token(
                tokens.refresh_token
            )
            updated = dataclasses.replace(current, tokens=fresh, updated_at=self._clock())
            # Persist before anything else can fail: a rotated refresh token that is not
            # saved is lost, and the old one is dead after the leeway.
            self.store.put(updated)
        logger.info(
            "refreshed tokens for %s: refresh token %s -> %s",
            updated.key,
            mask(tokens.refresh_token.reveal()),
            mask(fresh.refresh_token.reveal() if fresh.refresh_token else None),
        )
        if self.on_update is not None:
            self.on_update(updated)
        return fresh


def _rotated_since(current: TokenSet, stale: TokenSet) -> bool:
    return (
        current.refresh_token != stale.refresh_token or current.access_token != stale.access_token
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
