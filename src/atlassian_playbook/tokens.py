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

What can still go wrong between Atlassian's answer and the save is made loud and recoverable.
Before a refresh is sent the store must prove it can take the result (a file of its size plus
a margin is written and fsynced beside it), and the entry is marked as being refreshed, so a
process killed before the save leaves a trace the next refresh reads. A save that fails is
retried; if it still fails, the new tokens stay in memory (used and saved again by the same
source) and :class:`~.errors.RotationNotSaved` says until when a retry recovers the grant.

Nothing here prints a token: :class:`TokenSet` keeps them in :class:`~.redact.Secret`, and the
entries' ``repr`` shows masks only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from filelock import Timeout as LockTimeout

from ._files import atomic_write_json, file_lock, prove_writable, read_json, storage_error
from .errors import (
    OAuthError,
    ReauthorizationRequired,
    RotationNotSaved,
    StorageError,
    TokenStoreError,
    TransientError,
)
from .redact import Secret, get_logger, mask

__all__ = [
    "TokenSet",
    "TokenEntry",
    "TokenStore",
    "TokenSource",
    "RefreshGrant",
    "StoredTokenSource",
    "StaticTokenSource",
]

logger = get_logger(__name__)

STORE_VERSION = 1
# Atlassian's access tokens last an hour (FACTS.md); used only when a response omits expires_in.
DEFAULT_EXPIRES_IN = 3600
# Atlassian still accepts a rotated-out refresh token for 10 minutes; presenting it later
# revokes the whole grant (FACTS.md, "Refresh tokens").
REUSE_LEEWAY = 600
# Room proved free beside the store, beyond its current size, before a refresh is sent:
# rotated tokens may be longer than the ones they replace.
SAVE_MARGIN = 4096
# Saves of rotated tokens tried before giving up, SAVE_BACKOFF * n seconds apart.
SAVE_ATTEMPTS = 3
SAVE_BACKOFF = 0.05


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
    """

    client_id: str
    account_id: str | None
    tokens: TokenSet
    requested_scopes: tuple[str, ...] = ()
    site: dict[str, Any] | None = None
    updated_at: float = field(default_factory=time.time)
    refresh_started_at: float | None = None

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

    def _read(self) -> dict[str, Any]:
        """The entries as stored (JSON), by key; checks the file, not the entries."""
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
        entries = data.get("entries", {}) if isinstance(data, Mapping) else None
        if not isinstance(entries, Mapping):
            raise TokenStoreError(
                f"The token store {self.path} is not in the expected format (no 'entries' "
                "object).",
                f"Delete {self.path} and run `atlassian-playbook login` again.",
            )
        return dict(entries)

    def _load(self) -> dict[str, TokenEntry]:
        entries = [_entry_from_json(self.path, key, raw) for key, raw in self._read().items()]
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

    def _store_lock(self) -> AbstractContextManager[None]:
        return _holding(
            self.path,
            self.lock_timeout,
            lambda: TokenStoreError(
                f"Timed out after {self.lock_timeout:g} s waiting for the lock on {self.path}.",
                f"Another process holds {self.path}.lock; let it finish, or remove the lock "
                "file if no playbook process is running.",
            ),
        )

    def _save(self, entries: Mapping[str, Any]) -> None:
        data = {"version": STORE_VERSION, "entries": dict(sorted(entries.items()))}
        atomic_write_json(self.path, data)

    def put(self, entry: TokenEntry) -> TokenEntry:
        """Add or replace ``entry`` (same client id and account id), atomically.

        The other entries are kept as stored, even damaged ones, and a damaged entry with
        this key is replaced: logging in again repairs it. A refused write raises
        :class:`~.errors.StorageError`; the file is then unchanged.
        """
        with self._store_lock():
            entries = self._read()
            entries[entry.key] = entry.to_json()
            self._save(entries)
        logger.debug("stored tokens for %s in %s", entry.key, self.path)
        return entry

    def delete(self, client_id: str, account_id: str | None) -> bool:
        """Remove one entry (damaged or not); True when it existed."""
        key = f"{client_id}:{account_id}"
        with self._store_lock():
            entries = self._read()
            if entries.pop(key, None) is None:
                return False
            self._save(entries)
        return True

    def prove_writable(self, margin: int) -> None:
        """Show, under the store's lock, that the store can be rewritten now with ``margin``
        bytes to spare: a file that large is written and fsynced beside it, then removed.

        Raises :class:`~.errors.StorageError` (or :class:`TokenStoreError` for the lock).
        """
        with self._store_lock():
            size = self.path.stat().st_size if self.path.exists() else 0
            prove_writable(self.path, size + margin)

    @contextmanager
    def lock(self, client_id: str, account_id: str | None) -> Iterator[None]:
        """Hold the inter-process lock of one entry (for a refresh).

        A separate lock file per entry, named by a hash of the key (account ids contain
        colons, and entries must not wait for each other).
        """
        digest = hashlib.sha256(f"{client_id}:{account_id}".encode()).hexdigest()[:16]
        lock_path = self.path.with_name(f"{self.path.name}.{digest}")
        with _holding(
            lock_path,
            self.lock_timeout,
            lambda: TokenStoreError(
                f"Timed out after {self.lock_timeout:g} s waiting for another process to "
                f"refresh {_describe(client_id, account_id).strip()}.",
                "Another process is refreshing this connection; if none is running, remove "
                f"{lock_path}.lock and try again.",
            ),
        ):
            yield


@contextmanager
def _holding(
    path: Path, timeout: float, timed_out: Callable[[], TokenStoreError]
) -> Iterator[None]:
    """Hold the file lock beside ``path``; only its acquisition is translated into errors
    (an error from the body is the body's)."""
    try:
        lock = file_lock(path, timeout=timeout)
        lock.acquire()
    except LockTimeout:
        raise timed_out() from None
    except OSError as exc:
        raise storage_error(f"{path}.lock", exc) from None
    try:
        yield
    finally:
        lock.release()


def _kind(value: Any) -> str:
    """What a JSON value is, in words (never the value: it may be a token)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        odd = [item for item in value if not isinstance(item, str)]
        return f"a list holding {_kind(odd[0])}" if odd else "a list"
    return "an object" if isinstance(value, Mapping) else type(value).__name__


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_object(value: Any) -> bool:
    return isinstance(value, Mapping)


# Each stored field: (check, what it must be, required). A required field may not be null.
_ENTRY_FIELDS = {
    "client_id": (_is_text, "a non-empty string", True),
    "account_id": (_is_string, "a string or null", False),
    "tokens": (_is_object, "an object", True),
    "requested_scopes": (_is_strings, "a list of strings", False),
    "site": (_is_object, "an object or null", False),
    "updated_at": (_is_number, "a number", False),
    "refresh_started_at": (_is_number, "a number or null", False),
}
_TOKEN_FIELDS = {
    "access_token": (_is_text, "a non-empty string", True),
    "refresh_token": (_is_string, "a string or null", False),
    "expires_at": (_is_number, "a number", True),
    "scopes": (_is_strings, "a list of strings", False),
    "token_type": (_is_string, "a string", False),
}


def _problem(data: Mapping[str, Any], fields: Mapping[str, tuple], prefix: str = "") -> str | None:
    for name, (valid, expected, required) in fields.items():
        value = data.get(name)
        if value is None:
            if required:
                return f"{prefix}{name} is missing"
        elif not valid(value):
            return f"{prefix}{name} must be {expected} (it is {_kind(value)})"
    return None


def _entry_from_json(path: Path, key: str, raw: Any) -> TokenEntry:
    """One stored entry, or a :class:`TokenStoreError` naming the file, entry and field.

    A hand-edited or foreign store must not turn into a TypeError far from here, nor into a
    silently wrong value (a scope string read as a list of letters).
    """
    if not isinstance(raw, Mapping):
        problem = f"it must be an object (it is {_kind(raw)})"
    else:
        problem = _problem(raw, _ENTRY_FIELDS) or _problem(raw["tokens"], _TOKEN_FIELDS, "tokens.")
    if problem is not None:
        raise TokenStoreError(
            f"The token store {path} has a damaged entry {key!r}: {problem}.",
            f"Run `atlassian-playbook login` for that account again to replace it, or delete "
            f"the entry {key!r} from {path}.",
        )
    return TokenEntry.from_json(raw)


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


@dataclass(frozen=True)
class _UnsavedRotation:
    """Tokens Atlassian rotated to that the store has not taken yet.

    ``replaces`` is the refresh token they were rotated from (still the stored one), which
    Atlassian accepts until ``deadline``.
    """

    entry: TokenEntry
    replaces: Secret
    deadline: float


# Sends a refresh token to the token endpoint and returns its answer, without storing it
# (:meth:`~.oauth.OAuthClient.refresh`). May raise OAuthError or TransientError.
RefreshGrant = Callable[[Secret], TokenSet]


class StoredTokenSource:
    """A :class:`TokenSource` backed by one entry of a :class:`TokenStore`.

    ``refresh`` sends the refresh grant (``oauth.refresh`` of an
    :class:`~.oauth.OAuthClient`, which the caller owns and closes): this module needs
    nothing else of the token endpoint, and does not import it.

    ``account_id=None`` picks the only entry for ``client_id`` (an error when there are
    several). ``on_update(entry)`` is called after rotated tokens were saved — authlib's
    ``update_token`` idea, for callers that keep a copy elsewhere. ``clock`` is Atlassian's
    time as far as expiry and the reuse leeway go (tests pass the emulator's).

    When rotated tokens cannot be saved (:class:`~.errors.RotationNotSaved`), this source
    keeps them: :meth:`get` and :meth:`refresh` hand them out and try the save again each
    time, so a process that outlives a full disk saves them as soon as there is room.
    """

    def __init__(
        self,
        store: TokenStore,
        refresh: RefreshGrant,
        client_id: str,
        account_id: str | None = None,
        *,
        on_update: Callable[[TokenEntry], object] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._refresh_grant = refresh
        self.client_id = client_id
        self.account_id = account_id
        self.on_update = on_update
        self._clock = clock
        self._resolved: tuple[str, str | None] | None = None
        self._unsaved: _UnsavedRotation | None = None

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
        """The current tokens: the stored ones, or rotated ones not saved yet (saved now if
        the store can take them)."""
        unsaved = self._unsaved
        if unsaved is not None:
            try:
                with self.store.lock(unsaved.entry.client_id, unsaved.entry.account_id):
                    self._save_unsaved()
            except (StorageError, TokenStoreError) as exc:
                logger.debug("rotated tokens still not saved: %s", exc.message)
            unsaved = self._unsaved
            if unsaved is not None:
                return unsaved.entry.tokens
        return self.entry().tokens

    def refresh(self, stale: TokenSet) -> TokenSet:
        """Renew ``stale`` once, under the entry's lock, and persist before returning.

        If the stored tokens are no longer ``stale`` (another process or thread refreshed
        while we waited for the lock), they are returned as they are: Atlassian is not called
        and no refresh token is presented twice. The refresh always uses the *stored* refresh
        token, never the one in ``stale``.

        Nothing is sent unless the store proves it can take the answer (else
        :class:`TokenStoreError`, and the grant is untouched). An answer that cannot be saved
        raises :class:`~.errors.RotationNotSaved` after a few tries.
        """
        entry = self.entry()
        client_id, account_id = entry.client_id, entry.account_id
        with self.store.lock(client_id, account_id):
            if self._unsaved is not None:
                try:
                    self._save_unsaved()
                except (StorageError, TokenStoreError) as exc:
                    pending = self._unsaved.entry.tokens
                    if _rotated_since(pending, stale) and not pending.is_expiring(
                        0, self._clock()
                    ):
                        return pending
                    raise self._not_saved(exc) from None
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
            self._prepare(current)
            sent_at = self._clock()
            try:
                fresh = self._refresh_grant(tokens.refresh_token)
            except (OAuthError, TransientError) as exc:
                if exc.status_code is not None:
                    # Atlassian answered, and refused: nothing was rotated, so the mark goes.
                    with suppress(StorageError, TokenStoreError):
                        self.store.put(current)
                if isinstance(exc, ReauthorizationRequired):
                    raise self._lost_rotation(exc, current) from None
                raise
            fresh = fresh.with_refresh_token(tokens.refresh_token)
            updated = dataclasses.replace(
                current, tokens=fresh, updated_at=self._clock(), refresh_started_at=None
            )
            self._unsaved = _UnsavedRotation(
                updated, tokens.refresh_token, sent_at + REUSE_LEEWAY
            )
            self._save_rotation()
        if current.refresh_started_at is not None:
            logger.warning(
                "the answer to an earlier refresh of %s (sent %s) was never saved; recovered "
                "with the stored refresh token",
                current.key,
                _utc(current.refresh_started_at),
            )
        logger.info(
            "refreshed tokens for %s: refresh token %s -> %s",
            updated.key,
            mask(tokens.refresh_token.reveal()),
            mask(fresh.refresh_token.reveal() if fresh.refresh_token else None),
        )
        if self.on_update is not None:
            self.on_update(updated)
        return fresh

    # -- the steps of a refresh, with the entry's lock held ---------------------------------

    def _prepare(self, current: TokenEntry) -> None:
        """Before anything is sent: prove the store can take the answer, and mark the entry
        as being refreshed (an earlier mark stays: its leeway ends first)."""
        try:
            self.store.prove_writable(SAVE_MARGIN)
            if current.refresh_started_at is None:
                self.store.put(dataclasses.replace(current, refresh_started_at=self._clock()))
        except StorageError as exc:
            raise TokenStoreError(
                f"Not refreshing {_describe(current.client_id, current.account_id)}: the "
                f"token store {self.store.path} cannot be written ({exc.reason}). Nothing was "
                "sent to Atlassian, so the connection is intact.",
                f"Free space in {self.store.path.parent} or fix its permissions, then try "
                "again.",
            ) from None

    def _save_rotation(self) -> None:
        """Save the rotation just received, trying a few times before giving up."""
        for attempt in range(SAVE_ATTEMPTS):
            if attempt:
                time.sleep(SAVE_BACKOFF * attempt)
            try:
                self.store.put(self._unsaved.entry)
            except (StorageError, TokenStoreError) as exc:
                failure = exc
                logger.warning("saving the rotated tokens failed: %s", exc.message)
                continue
            self._unsaved = None
            return
        raise self._not_saved(failure)

    def _save_unsaved(self) -> None:
        """Save the rotation kept in memory, if the store still holds the token it replaces;
        forget it if the store has moved on (a newer rotation saved elsewhere, a new login)."""
        unsaved = self._unsaved
        if unsaved is None:  # another thread saved or dropped it meanwhile
            return
        stored = self.store.find(unsaved.entry.client_id, unsaved.entry.account_id)
        if stored is not None and stored.tokens.refresh_token == unsaved.replaces:
            self.store.put(unsaved.entry)
            logger.info("saved the rotated tokens for %s after all", unsaved.entry.key)
        self._unsaved = None

    def _not_saved(self, failure: TokenStoreError | StorageError) -> RotationNotSaved:
        unsaved = self._unsaved
        when = _utc(unsaved.deadline)
        reason = failure.reason if isinstance(failure, StorageError) else failure.message
        which = _describe(unsaved.entry.client_id, unsaved.entry.account_id)
        folder = self.store.path.parent
        if self._clock() <= unsaved.deadline:
            message = (
                f"Atlassian rotated the refresh token {which}but the new one could not be "
                f"saved to {self.store.path} ({reason}). Unless a refresh is retried before "
                f"{when} (Atlassian's 10-minute reuse leeway) where the store can be written, "
                "Atlassian revokes the connection and only a new consent fixes it."
            )
            hint = (
                f"Free space in {folder} (or make it writable) and run `atlassian-playbook "
                f"refresh` before {when}: the stored refresh token works until then. "
                "Meanwhile this process uses the new tokens (and tries to save them again)."
            )
        else:
            # Past the leeway the stored token is a trap: presenting it revokes the grant,
            # the rotated token only this process holds included.
            message = (
                f"The rotated tokens {which}are still not saved to {self.store.path} "
                f"({reason}), and the stored refresh token's 10-minute reuse leeway ended at "
                f"{when}: only this process holds a refresh token that works."
            )
            hint = (
                f"Free space in {folder} (or make it writable) while this process runs: it "
                "saves the new tokens at their next use. Do not run `atlassian-playbook "
                "refresh` until then: the stored refresh token would revoke the connection."
            )
        return RotationNotSaved(
            message, hint, tokens=unsaved.entry.tokens, deadline=unsaved.deadline
        )

    def _lost_rotation(
        self, refused: ReauthorizationRequired, current: TokenEntry
    ) -> ReauthorizationRequired:
        """Say why the grant is gone when an earlier refresh's answer was lost and its leeway
        has passed: the refresh token we sent was the rotated-out one."""
        started = current.refresh_started_at
        if started is None or self._clock() <= started + REUSE_LEEWAY:
            return refused
        return ReauthorizationRequired(
            f"Atlassian revoked this connection ({refused.status_code} {refused.error}): the "
            f"answer to a refresh sent at {_utc(started)} was never saved (the process stopped, "
            "timed out or could not write the store), and the refresh token it replaced was "
            "presented after Atlassian's 10-minute reuse leeway.",
            "Only a new consent fixes it: run `atlassian-playbook login` again.",
            error=refused.error,
            description=refused.description,
            status_code=refused.status_code,
        )


def _utc(timestamp: float) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(timestamp))


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
