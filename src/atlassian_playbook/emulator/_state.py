"""The emulator's whole mutable world as one JSON-able dict, and the transaction around it.

Without a state file the dict lives in memory behind a lock. With one, each transaction takes
the inter-process file lock, reloads the file (only when another process wrote it), runs, and
writes it back (0600, atomically, compact JSON) when something changed: several processes with
their own :class:`Emulator` on the same file then share clients, grants, codes, tokens, the
clock offset and the faults.

Tokens and codes are stored under their SHA-256 digest, never in clear: the file (and a debugger
looking at the dict) cannot hand out a usable token. A token family's key is in the file: with it
one can make a string the emulator takes for a rotated token of that family (and revokes the
family for), never one it answers with tokens. Client secrets are stored in clear: they
are the emulator's own fakes and the admin endpoint returns them on purpose.

A file that cannot be read as a state (not JSON, truncated, another shape, a newer version) is
a :class:`StateFileError` naming it, never silently replaced: it may hold a world edited
through the console commands (callbacks, user-installed apps) and the user's emulated logins.
Deleting it is the fix, and the hint says so.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._files import atomic_write_text, file_lock
from ..errors import PlaybookError

__all__ = ["StateStore", "StateFileError", "digest", "new_state", "read_state", "STATE_VERSION"]

STATE_VERSION = 2


def digest(value: str) -> str:
    """The key a token or code is stored under."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class StateFileError(PlaybookError):
    """An emulator state file that cannot be used; the message names the file and what is
    wrong with it (never its content: it holds the emulated apps' secrets)."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"The emulator state file {path} {problem}.",
            f"Delete {path}: the emulator makes a fresh one from the world file at its next "
            "start (emulated logins and console changes kept in it are lost). Or restore it "
            "from a copy.",
        )
        self.path = path


def new_state() -> dict:
    return {
        "version": STATE_VERSION,
        "clock_offset": 0.0,
        "world": None,  # users and sites with their data (_world.load_world), live
        "default_client_id": None,
        "clients": {},  # client_id -> registration (secret in clear)
        "consents": {},  # consent request id -> pending consent page
        "codes": {},  # digest(code) -> code record
        "grants": {},  # grant id -> {client_id, account_id, sites: {cloud_id: [scopes]}, ...}
        "access_tokens": {},  # digest -> {grant_id, client_id, scopes, expires_at, ...}
        "refresh_tokens": {},  # digest -> {family, issued_at, status, rotated_at, access}
        # family id (one per code exchange) -> {grant_id, client_id, scopes, key, started_at,
        # last_used}; its key tags its refresh tokens (_auth.new_refresh_token)
        "families": {},
        "faults": [],  # pending injected faults, in injection order
        "webhooks": {},  # str(id) -> dynamic webhook (_webhooks.py)
        "next_webhook_id": 10000,
        "failed_webhooks": [],  # failed deliveries, oldest first
        "pruned_at": None,  # the emulator's clock at the last _auth.prune
    }


class StateStore:
    """One world, in memory or in a shared file; use :meth:`transaction` for every access."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path).expanduser() if path is not None else None
        self._lock = threading.RLock()
        self._depth = 0
        self.data = new_state()
        self._text: str | None = None  # the file's text when self.data was last that text
        self._current = False  # whether self.data is still self._text

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[dict]:
        """Yield the state dict; with a file, reload before and save after (if changed).

        Re-entrant: a nested transaction runs inside the outer one's load and save.
        ``read_only``: the body promises not to change the state, so it is not serialised
        after (a look before a change takes a transaction of its own).

        With a file, the text read is compared with the text this store last read or wrote:
        when no other process wrote since, the dict in memory is that text already and is not
        parsed again. After the body the state is serialised once, compactly; the file is
        written only when that text differs from the file's (a request that only reads writes
        nothing). A body that raised leaves the file untouched and the dict in memory stale,
        so the next transaction parses the file again.
        """
        with self._lock:
            if self.path is None or self._depth:
                self._depth += 1
                try:
                    yield self.data
                finally:
                    self._depth -= 1
                return
            with file_lock(self.path):
                text = self._read()
                if not self._current or text != self._text:
                    self.data = self._load(text)
                    self._text, self._current = text, True
                self._depth += 1
                try:
                    yield self.data
                except BaseException:
                    self._current = False
                    raise
                finally:
                    self._depth -= 1
                if read_only:
                    return
                after = json.dumps(self.data, separators=(",", ":"))
                if after != text:
                    try:
                        # fsynced, so a full disk is a StorageError now, not a cut file later
                        atomic_write_text(self.path, after)
                    except BaseException:
                        self._current = False
                        raise
                    self._text = after

    def _read(self) -> str | None:
        """The file's text, or ``None`` when there is no file yet."""
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            raise StateFileError(self.path, "is not UTF-8 text") from None
        except OSError as exc:
            raise StateFileError(
                self.path, f"cannot be read ({exc.strerror or exc.__class__.__name__})"
            ) from None

    def _load(self, text: str | None) -> dict:
        if text is None:
            return new_state()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:  # the position only: the text holds secrets
            raise StateFileError(
                self.path, f"is not JSON (broken or cut short at line {exc.lineno}, column "
                f"{exc.colno}: {exc.msg})") from None
        if isinstance(data, dict) and isinstance(data.get("version"), int) and (
            data["version"] < STATE_VERSION
        ):
            # Written by an older playbook: its world has no users or registrations to keep.
            return new_state()
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise StateFileError(
                self.path, "is not a state this playbook can read (written by a newer "
                "atlassian-playbook, or not an emulator state at all)")
        problem = _shape_problem(data)
        if problem is not None:
            raise StateFileError(self.path, f"has the wrong shape: {problem}")
        fresh = new_state()
        fresh.update(data)
        return fresh


def read_state(path: str | Path) -> dict | None:
    """The state a state file holds, as plain dicts, read under the emulator's lock; ``None``
    when there is no file. For a tool or a test that looks at a state file, rather than reading
    its layout. A file that cannot be read is a :class:`StateFileError`, as for the emulator."""
    path = Path(path).expanduser()
    if not path.exists():
        return None
    with StateStore(path).transaction(read_only=True) as data:
        return copy.deepcopy(data)


# The type of each top-level entry; the collections of records hold JSON objects.
_SHAPE = {
    "clock_offset": (int, float),
    "world": (dict, type(None)),
    "default_client_id": (str, type(None)),
    "clients": dict,
    "consents": dict,
    "codes": dict,
    "grants": dict,
    "access_tokens": dict,
    "refresh_tokens": dict,
    "families": dict,
    "faults": list,
    "webhooks": dict,
    "next_webhook_id": int,
    "failed_webhooks": list,
    "pruned_at": (int, float, type(None)),
}


def _shape_problem(data: dict) -> str | None:
    """What is wrong with a state's shape, or ``None``: each entry of the right type, records
    that are objects, and a world with users and sites, whose default app is registered."""
    for key, kinds in _SHAPE.items():
        if key in data and not isinstance(data[key], kinds):
            return f"{key} is a {type(data[key]).__name__}"
        records = data.get(key)
        if isinstance(records, dict | list) and key != "world":
            values = records.values() if isinstance(records, dict) else records
            if not all(isinstance(value, dict) for value in values):
                return f"{key} holds something that is not an object"
    world = data.get("world")
    if world is not None:
        for key in ("users", "sites"):
            if not isinstance(world.get(key), list) or not world[key]:
                return f"world.{key} is not a non-empty list"
        if data.get("default_client_id") not in data.get("clients", {}):
            return "default_client_id names no client"
    return None
