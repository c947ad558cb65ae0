"""Careful file writing, shared by the .env writer, the token store and the emulator state.

A crash or a full disk must never leave half a file, and a file that holds secrets must never
exist, even for an instant, with a mode wider than 0600. A write the system refuses (no space,
quota, read-only, permissions) is a :class:`~.errors.StorageError` naming the file and the fix,
never a bare ``OSError``, and leaves no temporary file behind.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Any

from filelock import FileLock

from .errors import StorageError

__all__ = [
    "atomic_write_text",
    "atomic_write_json",
    "prove_writable",
    "storage_error",
    "read_json",
    "file_lock",
]

PRIVATE_MODE = 0o600
# A workspace's own folder (the token store, the emulated world, checklist ticks).
STATE_FOLDER = ".playbook"

# What the user is told for the refusals a user can fix; anything else quotes strerror.
_NO_SPACE = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exhausted",
}
_NOT_WRITABLE = {
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def storage_error(path: str | os.PathLike[str], exc: OSError) -> StorageError:
    """The :class:`StorageError` for ``exc``, raised while writing ``path``."""
    path = Path(path)
    code = exc.errno
    reason = _NO_SPACE.get(code) or _NOT_WRITABLE.get(code) or exc.strerror or str(exc)
    name = errno.errorcode.get(code, "") if code is not None else ""
    if code in _NO_SPACE:
        hint = f"Free space on the disk that holds {path.parent} (or raise the quota), then "
    elif code in _NOT_WRITABLE:
        hint = (
            f"Make {path.parent} writable for this user (permissions, a read-only mount), or "
            "point the playbook at a writable folder, then "
        )
    else:
        hint = f"Check the disk that holds {path.parent}, then "
    return StorageError(
        f"Could not write {path}: {reason}{f' ({name})' if name else ''}; "
        "its previous version, if any, is unchanged.",
        hint + "try again.",
        path=path,
        errno=code,
        reason=reason,
    )


def _write_new_file(path: Path, data: bytes, suffix: str) -> str:
    """A new file beside ``path`` (0600, ``mkstemp``) holding ``data``, flushed to the disk.

    Removed again if anything fails, so a full disk leaves nothing behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _keep_out_of_git(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            # A full disk often shows only here: delayed allocation accepts write().
            os.fsync(handle.fileno())
    except BaseException:
        _discard(tmp)
        raise
    return tmp


def _keep_out_of_git(folder: Path) -> None:
    """A workspace's ``.playbook/`` holds real tokens: a ``.gitignore`` of ``*`` inside it keeps
    whatever repository the workspace sits in from ever committing them."""
    ignore = folder / ".gitignore"
    if folder.name == STATE_FOLDER and not ignore.exists():
        ignore.write_text("# atlassian-playbook: tokens and state, never committed\n*\n",
                          encoding="utf-8")


def _discard(tmp: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike[str], text: str, mode: int = PRIVATE_MODE) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename.

    The temporary file is created 0600 (``mkstemp``) and chmod-ed to ``mode`` before the rename,
    so readers see the old file or the new one, never a partial one. Raises
    :class:`StorageError` when the system refuses the write.
    """
    path = Path(path)
    try:
        tmp = _write_new_file(path, text.encode("utf-8"), ".tmp")
        try:
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            _discard(tmp)
            raise
    except OSError as exc:
        raise storage_error(path, exc) from None


def atomic_write_json(path: str | os.PathLike[str], data: Any, mode: int = PRIVATE_MODE) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n", mode)


def prove_writable(path: str | os.PathLike[str], size: int) -> None:
    """Show that a ``size``-byte file can be written beside ``path`` now, and remove it.

    For a write that must not fail later (the token store after a refresh): create, fill,
    fsync and delete a file in ``path``'s folder. The bytes are random, so a compressing file
    system cannot make a nearly full disk look roomy. Raises :class:`StorageError`.
    """
    path = Path(path)
    try:
        os.unlink(_write_new_file(path, os.urandom(size), ".probe"))
    except OSError as exc:
        raise storage_error(path, exc) from None


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
