"""The emulator's whole mutable world as one JSON-able dict, and the transaction around it.

Without a state file the dict lives in memory behind a lock. With one, each transaction takes
the inter-process file lock, reloads the file, runs, and writes it back (0600, atomically) when
something changed: several processes with their own :class:`Emulator` on the same file then
share clients, grants, codes, tokens, the clock offset and the faults.

Tokens and codes are stored under their SHA-256 digest, never in clear: the file (and a debugger
looking at the dict) cannot hand out a usable token. Client secrets are stored in clear: they
are the emulator's own fakes and the admin endpoint returns them on purpose.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._files import atomic_write_json, file_lock, read_json

__all__ = ["StateStore", "digest", "new_state", "STATE_VERSION"]

STATE_VERSION = 2


def digest(value: str) -> str:
    """The key a token or code is stored under."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


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
        "refresh_tokens": {},  # digest -> {grant_id, client_id, scopes, issued_at, status, ...}
        "faults": [],  # pending injected faults, in injection order
    }


class StateStore:
    """One world, in memory or in a shared file; use :meth:`transaction` for every access."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path).expanduser() if path is not None else None
        self._lock = threading.RLock()
        self._depth = 0
        self.data = new_state()

    @contextmanager
    def transaction(self) -> Iterator[dict]:
        """Yield the state dict; with a file, reload before and save after (if changed).

        Re-entrant: a nested transaction runs inside the outer one's load and save.
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
                self.data = self._load()
                before = json.dumps(self.data, sort_keys=True)
                self._depth += 1
                try:
                    yield self.data
                finally:
                    self._depth -= 1
                # Not reached when the body raised: a failed request leaves the file untouched.
                if json.dumps(self.data, sort_keys=True) != before:
                    atomic_write_json(self.path, self.data)

    def _load(self) -> dict:
        try:
            data = read_json(self.path)
        except (OSError, ValueError) as exc:
            raise RuntimeError(
                f"The emulator state file {self.path} is unreadable ({exc.__class__.__name__}); "
                "delete it to start a fresh emulated world."
            ) from exc
        if data is None:
            return new_state()
        if isinstance(data, dict) and isinstance(data.get("version"), int) and (
            data["version"] < STATE_VERSION
        ):
            # Written by an older playbook: its world has no users or registrations to keep.
            return new_state()
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise RuntimeError(
                f"The emulator state file {self.path} has an unknown format; delete it to start "
                "a fresh emulated world."
            )
        fresh = new_state()
        fresh.update(data)
        return fresh
