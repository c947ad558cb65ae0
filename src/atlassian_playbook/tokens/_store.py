"""The token store: one JSON file (mode 0600, written atomically, locked across processes) of
:class:`~._model.TokenEntry` by client and account, validated field by field on read so a
hand-edited or truncated file fails with the entry and field named, never a value."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from filelock import Timeout as LockTimeout

from .._files import atomic_write_json, file_lock, prove_writable, read_json, storage_error
from ..errors import (
    TokenStoreError,
)
from ..redact import get_logger
from ._model import GRANTS, TokenEntry, _describe

logger = get_logger(__name__)

STORE_VERSION = 1


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
                f"The token store {self.path} is not in the expected format (no 'entries' object).",
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
    "grant": (lambda value: value in GRANTS, f"one of {', '.join(GRANTS)} or null", False),
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
