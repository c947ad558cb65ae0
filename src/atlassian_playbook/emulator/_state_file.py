"""The state file's layout: the whole state on the first line, then one line for each
transaction since, with what it changed; every line compact JSON, ended by a newline.

    {"version":3,"clock_offset":0.0,"world":{...},"access_tokens":{...},...}
    {"set":{"clock_offset":60.0},"drop":{"codes":["<digest>"]},"put":{"access_tokens":{...}}}

A change has up to three parts, applied in this order: ``set`` replaces top-level values,
``drop`` deletes records from their collection (:data:`RECORDS`), ``put`` adds or replaces
records (a new one goes at the end, as in the dict that wrote it). So a refresh appends what it
changed, a few records, where rewriting the file cost the whole state, which grows with the live
tokens; the lines are folded into a new first line once they outgrow it (:meth:`OpenFile.takes`).

A line is appended under the lock with ``pwrite`` and ``fsync`` and cut off again if either
fails: a full disk is a :class:`~.errors.StorageError` now and the file is as it was. A last line
without its newline is an append that never finished (a crash before the ``fsync`` returned, so
its request was never answered): readers leave it out and the next writer cuts it. Anything else
that cannot be read is :class:`Unreadable`, which ``_state.py`` turns into a ``StateFileError``
naming the file and the line. A file that is one JSON document (version 2, or a state laid out
over several lines by hand) is read whole and rewritten before anything is appended to it.
"""

from __future__ import annotations

import json
import os
import weakref
from contextlib import suppress
from dataclasses import dataclass

__all__ = ["RECORDS", "OpenFile", "Reading", "Unreadable", "apply_change", "encode", "fragment",
           "read_changes", "read_file", "state_problem", "change_problem", "links_problem"]

encode = json.JSONEncoder(separators=(",", ":")).encode

# The collections of records, written record by record; every other top-level value is one.
RECORDS = frozenset({"clients", "consents", "codes", "grants", "access_tokens",
                     "refresh_tokens", "families", "webhooks"})

# Change lines are folded into the first line once they hold more than the state or this.
COMPACT_AT = 64 * 1024


class Unreadable(Exception):
    """What is wrong with a state file, as the end of a sentence naming it; never its content
    (it holds the emulated apps' secrets)."""


def fragment(key: object, value: object) -> str:
    """A record as its collection's text holds it: ``"key":{...}``."""
    return f"{encode(str(key))}:{encode(value)}"


@dataclass
class Reading:
    """A state file as read: its state (not yet checked) and the changes after it."""

    state: object
    changes: list[dict]
    state_bytes: int  # the first line's, its newline included
    end: int  # bytes up to the end of the last whole line
    lines: int  # whole lines up to ``end``
    torn: bool  # bytes after ``end``: an append that never finished
    whole: bool  # one JSON document: rewritten before a line is appended


def read_file(raw: bytes) -> Reading:
    newline = raw.find(b"\n")
    try:
        state = _loads(raw if newline < 0 else raw[:newline], 1)
    except Unreadable:
        if newline < 0:
            raise
        # One document over several lines, or a broken first line: the whole file says which.
        return Reading(_loads(raw, 1), [], len(raw), len(raw), raw.count(b"\n") + 1, False,
                       True)
    if newline < 0:
        return Reading(state, [], len(raw), len(raw), 1, False, True)
    changes, end, lines, torn = read_changes(raw[newline + 1:], 2)
    return Reading(state, changes, newline + 1, newline + 1 + end, 1 + lines, torn, False)


def read_changes(raw: bytes, line: int) -> tuple[list[dict], int, int, bool]:
    """The change lines in ``raw`` (the first is the file's line ``line``): the changes, the
    bytes they take, how many lines, and whether an unfinished line follows."""
    changes: list[dict] = []
    end = 0
    while (newline := raw.find(b"\n", end)) >= 0:
        change = _loads(raw[end:newline], line + len(changes))
        problem = change_problem(change)
        if problem is not None:
            raise Unreadable(f"has the wrong shape at line {line + len(changes)}: {problem}")
        changes.append(change)
        end = newline + 1
    return changes, end, len(changes), end < len(raw)


def apply_change(state: dict, change: dict) -> None:
    """Apply a change line (checked by :func:`change_problem`) to ``state``, through the dict
    methods themselves: a tracked state does not take it for the transaction's."""
    for key, value in change.get("set", {}).items():
        dict.__setitem__(state, key, value)
    for key, names in change.get("drop", {}).items():
        records = dict.__getitem__(state, key)
        for name in names:
            dict.pop(records, name, None)
    for key, added in change.get("put", {}).items():
        records = dict.__getitem__(state, key)
        for name, record in added.items():
            dict.__setitem__(records, name, record)


def _loads(raw: bytes, line: int) -> object:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise Unreadable("is not UTF-8 text") from None
    except json.JSONDecodeError as exc:  # the position only: the text holds secrets
        raise Unreadable(
            f"is not JSON (broken or cut short at line {line + exc.lineno - 1}, column "
            f"{exc.colno}: {exc.msg})") from None


class OpenFile:
    """The state file a store read or wrote last, held open, and how far the store has read it.

    While it is open its inode cannot be reused, so a path whose ``stat`` shows the same device
    and inode still names this very file: no other process replaced it (each rewrite is a new
    file renamed over it), and whatever it appended since is past :attr:`end`.
    """

    def __init__(self, fd: int, writable: bool, *, state_bytes: int, end: int, lines: int,
                 torn: bool, whole: bool) -> None:
        self.fd = fd
        self.close = weakref.finalize(self, os.close, fd)  # now, or when the store goes
        seen = os.fstat(fd)
        self.identity = (seen.st_dev, seen.st_ino)
        self.size = seen.st_size  # as this store last saw it
        self.state_bytes, self.end, self.lines, self.torn = state_bytes, end, lines, torn
        self.whole = whole
        self.writable = writable

    @staticmethod
    def open(path: os.PathLike[str]) -> tuple[int, bool]:
        """A descriptor on ``path``, and whether it is read-write (this user may write the
        file; a read-only file is rewritten instead, where its folder allows)."""
        try:
            return os.open(path, os.O_RDWR), True
        except PermissionError:
            return os.open(path, os.O_RDONLY), False

    def names(self, seen: os.stat_result) -> bool:
        return (seen.st_dev, seen.st_ino) == self.identity

    def read(self, start: int, size: int) -> bytes:
        return os.pread(self.fd, size - start, start)

    def takes(self, line: bytes) -> bool:
        """Whether ``line`` is to be appended, rather than the whole state rewritten: the file
        can take lines, and those it holds with this one stay within :data:`COMPACT_AT` or the
        size of the state on its first line, so a rewrite's cost is spread over as many bytes
        of appends as it writes."""
        if self.whole or not self.writable:
            return False
        return self.end - self.state_bytes + len(line) <= max(self.state_bytes, COMPACT_AT)

    def append(self, line: bytes) -> None:
        """Append ``line`` and ``fsync``; on failure cut the file back as it was and raise."""
        try:
            if self.torn:
                os.ftruncate(self.fd, self.end)
                self.torn = False
            written = 0
            while written < len(line):
                written += os.pwrite(self.fd, line[written:], self.end + written)
            os.fsync(self.fd)  # a full disk often shows only here
        except BaseException:
            with suppress(OSError):  # or the unfinished line is cut by the next writer
                os.ftruncate(self.fd, self.end)
            raise
        self.end += len(line)
        self.size = self.end
        self.lines += 1


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


def state_problem(data: dict) -> str | None:
    """What is wrong with a state's shape, or ``None``: each entry of the right type, records
    that are objects, and a world with users and sites, whose default app is registered."""
    for key in _SHAPE:
        if key in data and (problem := _value_problem(key, data[key])) is not None:
            return problem
    return links_problem(data)


def _value_problem(key: str, value: object) -> str | None:
    if not isinstance(value, _SHAPE[key]):
        return f"{key} is a {type(value).__name__}"
    if isinstance(value, dict | list) and key != "world":
        values = value.values() if isinstance(value, dict) else value
        if not all(isinstance(item, dict) for item in values):
            return f"{key} holds something that is not an object"
    return None


def links_problem(data: dict) -> str | None:
    """A world with users and sites, whose default app is registered, or what is wrong."""
    world = data.get("world")
    if world is not None:
        for key in ("users", "sites"):
            if not isinstance(world.get(key), list) or not world[key]:
                return f"world.{key} is not a non-empty list"
        if data.get("default_client_id") not in data.get("clients", {}):
            return "default_client_id names no client"
    return None


def change_problem(change: object) -> str | None:
    """What is wrong with a change line's shape, or ``None``."""
    if not isinstance(change, dict) or not change or not set(change) <= {"set", "drop", "put"}:
        return "a line that is not a change (set, drop, put)"
    if not all(isinstance(part, dict) for part in change.values()):
        return "a part of a change that is not an object"
    for key, value in change.get("set", {}).items():
        if key not in _SHAPE:
            return "a change that sets something a state does not hold"
        if (problem := _value_problem(key, value)) is not None:
            return problem
    for key, ids in change.get("drop", {}).items():
        if key not in RECORDS or not isinstance(ids, list) or not all(
            isinstance(record_id, str) for record_id in ids
        ):
            return "a drop that is not a list of record ids of a collection"
    for key, records in change.get("put", {}).items():
        if key not in RECORDS:
            return "a put into something that is not a collection of records"
        if (problem := _value_problem(key, records)) is not None:
            return problem
    return None
