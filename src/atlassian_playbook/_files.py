"""Careful file writing, shared by the .env writer, the token store and the emulator state.

A crash or a full disk must never leave half a file, and a file that holds secrets must never
exist, even for an instant, with a mode wider than 0600.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock

__all__ = ["atomic_write_text", "atomic_write_json", "read_json", "file_lock"]

PRIVATE_MODE = 0o600


def atomic_write_text(path: str | os.PathLike[str], text: str, mode: int = PRIVATE_MODE) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename.

    The temporary file is created 0600 (``mkstemp``) and chmod-ed to ``mode`` before the rename,
    so readers see the old file or the new one, never a partial one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: str | os.PathLike[str], data: Any, mode: int = PRIVATE_MODE) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n", mode)


def read_json(path: str | os.PathLike[str], default: Any = None) -> Any:
    """The parsed file, or ``default`` when it does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default


def file_lock(path: str | os.PathLike[str], timeout: float = 60.0) -> FileLock:
    """An inter-process lock beside ``path`` (``path.lock``).

    Re-entrant per lock *object* only: two objects for the same path in one thread deadlock,
    so take one and pass it down rather than calling this twice.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock", timeout=timeout)
