"""The emulator's whole mutable world as one JSON-able dict, and the transaction around it.

Without a state file the dict lives in memory behind a lock. With one, each transaction takes
the inter-process file lock, catches up with what other processes wrote since, runs, and
records what it changed: several processes with their own :class:`Emulator` on the same file
then share clients, grants, codes, tokens, the clock offset and the faults.

The file (0600) is the state on its first line and a line for each change since
(``_state_file.py``); a transaction appends the records and values it changed, fsynced, and a
request that only reads writes nothing. The cost of a refresh is then the few records it
touched, not the whole state, which holds every token still in its leeway. To know what changed
without serialising everything, the state's top level and its collections of records are
:class:`~._tracked.Tracked` dicts, and ``_written.py`` keeps the text of what the file holds.
Whether another process wrote is the file's ``stat``: the store holds the file it read open, so
the same inode at the path is the same file (a rewrite renames a new one over it), and its size
says whether lines were appended.

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

import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._files import atomic_write_text, file_lock, storage_error
from ..errors import PlaybookError
from ._state_file import (
    OpenFile,
    Reading,
    Unreadable,
    apply_change,
    links_problem,
    read_changes,
    read_file,
    state_problem,
)
from ._written import Written, tracked

__all__ = ["StateStore", "StateFileError", "digest", "new_state", "read_state", "STATE_VERSION"]

# 3: the state on the first line, a line for each change after it (version 2: the state alone)
STATE_VERSION = 3


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
    """One world, in memory or in a shared file; use :meth:`transaction` for every access.

    Nothing taken from the state may be changed after its transaction: the file's writer
    knows what changed by what the transaction reached (``_tracked.py``).
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path).expanduser() if path is not None else None
        self._lock = threading.RLock()
        self._depth = 0
        self.data: dict = new_state()
        self._file_lock = file_lock(self.path) if self.path is not None else None
        self._current = False  # whether self.data is what the file holds (or no file)
        self._file: OpenFile | None = None  # the file self.data was read from or written to
        self._written: Written | None = None  # its texts

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[dict]:
        """Yield the state dict; with a file, catch up before and record the change after.

        Re-entrant: a nested transaction runs inside the outer one's load and save.
        ``read_only``: the body promises not to change the state, so nothing is written after
        (a look before a change takes a transaction of its own).

        A body that raised leaves the file untouched and the dict in memory stale, so the next
        transaction reads the file again; so does a write that failed.

        A read-only transaction on a file no process changed since this store last looked
        (:meth:`_unchanged`) does without the file lock: it reads what the file holds and
        writes nothing, so it is as if it ran just before whichever writer comes next.
        """
        with self._lock:
            if self.path is None or self._depth or (read_only and self._unchanged()):
                self._depth += 1
                try:
                    yield self.data
                finally:
                    self._depth -= 1
                return
            with self._file_lock:
                self._catch_up()
                self._depth += 1
                try:
                    yield self.data
                except BaseException:
                    self._forget()
                    raise
                finally:
                    self._depth -= 1
                if read_only:
                    return
                try:
                    self._save()
                except BaseException:
                    self._forget()
                    raise

    def _unchanged(self) -> bool:
        """Whether the file is still what self.data is: the same file (held open, so its inode
        is not another's), of the same size (lines are only appended, and one cut off again
        leaves the size as it was), with no unfinished line (the next writer cuts it)."""
        file = self._file
        if not self._current or file is None or file.torn:
            return False
        try:
            seen = os.stat(self.path)
        except OSError:
            return False
        return file.names(seen) and seen.st_size == file.size

    def _forget(self) -> None:
        self._current = False
        if self._file is not None:
            self._file.close()
        self._file = self._written = None

    def _catch_up(self) -> None:
        """Make self.data what the file holds: as it is when no process wrote since, with the
        lines appended since when the file is the same, else read again."""
        try:
            seen = os.stat(self.path)
        except FileNotFoundError:
            seen = None
        except OSError as exc:
            raise StateFileError(self.path, _cannot_read(exc)) from None
        if self._current and self._file is None and seen is None:
            return
        if self._current and self._file is not None and seen is not None and (
            self._file.names(seen) and seen.st_size >= self._file.end
        ):
            if seen.st_size != self._file.size:
                self._read_appended(seen.st_size)
            return
        self._forget()
        if seen is None:
            self.data = tracked(new_state())
        else:
            self._read()
        self._written = Written(self.data)
        self._current = True

    def _read(self) -> None:
        try:
            fd, writable = OpenFile.open(self.path)
        except FileNotFoundError:  # gone since the stat: a fresh state, as for no file
            self.data = tracked(new_state())
            return
        except OSError as exc:
            raise StateFileError(self.path, _cannot_read(exc)) from None
        try:
            state, reading, whole = self._parsed(os.pread(fd, os.fstat(fd).st_size, 0))
        except Unreadable as exc:
            os.close(fd)
            raise StateFileError(self.path, str(exc)) from None
        except BaseException:
            os.close(fd)
            raise
        self.data = tracked(state)
        self._file = OpenFile(fd, writable, state_bytes=reading.state_bytes, end=reading.end,
                              lines=reading.lines, torn=reading.torn,
                              whole=reading.whole or whole)

    def _read_appended(self, size: int) -> None:
        """Apply the lines another process appended since this store last read the file."""
        file = self._file
        try:
            changes, used, lines, torn = read_changes(file.read(file.end, size), file.lines + 1)
            for change in changes:
                self._written.apply(self.data, change)
            if (problem := links_problem(self.data)) is not None:
                raise Unreadable(f"has the wrong shape: {problem}")
        except Unreadable as exc:
            self._forget()
            raise StateFileError(self.path, str(exc)) from None
        except BaseException:
            self._forget()
            raise
        file.end, file.lines, file.torn, file.size = file.end + used, file.lines + lines, torn, size

    def _save(self) -> None:
        """Append what the transaction changed, or rewrite the file when it must or should."""
        line, rewrite = self._written.change(self.data)
        file = self._file
        if file is not None and not rewrite and line is None:
            return  # nothing changed
        if file is not None and not rewrite and file.takes(data := line.encode("utf-8")):
            try:
                file.append(data)
            except OSError as exc:
                raise storage_error(self.path, exc) from None
            return
        text = self._written.whole()
        # fsynced, so a full disk is a StorageError now, not a cut file later
        atomic_write_text(self.path, text)
        if file is not None:
            file.close()
        self._file = None
        fd, writable = OpenFile.open(self.path)  # the lock is held: the file just written
        size = len(text.encode("utf-8"))
        self._file = OpenFile(fd, writable, state_bytes=size, end=size, lines=1, torn=False,
                              whole=False)

    @classmethod
    def _parsed(cls, raw: bytes) -> tuple[dict, Reading, bool]:
        """The state a file's bytes hold (plain dicts, its change lines applied), the file's
        reading and whether it is to be rewritten (:meth:`_checked`); else :class:`Unreadable`."""
        reading = read_file(raw)
        state, whole = cls._checked(reading.state)
        for change in reading.changes:
            apply_change(state, change)
        if (problem := links_problem(state)) is not None:
            raise Unreadable(f"has the wrong shape: {problem}")
        return state, reading, whole

    @staticmethod
    def _checked(state: object) -> tuple[dict, bool]:
        """The state a file's first line holds, checked, and whether the file is to be
        rewritten before a change is appended (an older version's)."""
        older = isinstance(state, dict) and isinstance(state.get("version"), int) and (
            state["version"] < STATE_VERSION
        )
        if older and state["version"] < 2:
            # Written by an older playbook: its world has no users or registrations to keep.
            return new_state(), True
        if older:  # version 2: the same state, as one document
            state = {**state, "version": STATE_VERSION}
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise Unreadable("is not a state this playbook can read (written by a newer "
                             "atlassian-playbook, or not an emulator state at all)")
        problem = state_problem(state)
        if problem is not None:
            raise Unreadable(f"has the wrong shape: {problem}")
        fresh = new_state()
        fresh.update(state)
        return fresh, older


def _cannot_read(exc: OSError) -> str:
    return f"cannot be read ({exc.strerror or exc.__class__.__name__})"


def read_state(path: str | Path) -> dict | None:
    """The state a state file holds (its first line with the changes after it applied), as
    plain dicts, read under the emulator's lock; ``None`` when there is no file. For a tool or
    a test that looks at a state file: its lines are not one JSON document. A file that cannot
    be read is a :class:`StateFileError`, as for the emulator.

    A parse of its own, not a store's transaction: the dicts are the caller's, so nothing is
    copied, and no store is left holding the file open."""
    path = Path(path).expanduser()
    if not path.exists():
        return None
    try:
        with file_lock(path):
            raw = path.read_bytes()
    except FileNotFoundError:  # gone since the check: as for no file
        return None
    except OSError as exc:
        raise StateFileError(path, _cannot_read(exc)) from None
    try:
        return StateStore._parsed(raw)[0]
    except Unreadable as exc:
        raise StateFileError(path, str(exc)) from None
