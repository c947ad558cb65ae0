"""A loopback callback URL claimed for one headless build on this machine.

The demo and the training build keep the default callback (``127.0.0.1:8765``), so that the
pages show the URL the checklists name, unless its port is busy (a JupyterLab session sitting
in notebook 04, say). Probing the port alone is not enough: two builds that probe within the
same seconds both find it free, and the second fails when its notebook 04 listens. So a build
also takes a lock named after the port, held until it ends: a build that cannot take it, or
finds the port bound, claims a free port the same way. That one is picked below the kernel's
ephemeral range, where no other process's ``bind(0)`` (an emulator starting, say) can be
handed it before notebook 04 listens.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["claimed_callback_url", "ephemeral_ports"]

LOOPBACK = "127.0.0.1"


def claim_path(port: int) -> Path:
    """The lock a build holds while it uses ``port`` (the system temp folder: one machine)."""
    return Path(tempfile.gettempdir()) / f"atlassian-playbook-callback-{port}.lock"


@contextmanager
def claimed_callback_url(default: str) -> Iterator[str]:
    """``default`` (a ``http://127.0.0.1:PORT/...`` URL) while no other build holds its claim
    and nothing is bound to its port, else the same path on a free port claimed the same way
    (port 0: a free port from the start); the claim is held until the block ends."""
    parts = urlsplit(default)
    port, claim = _claim(parts.port) if parts.port else _claim_free()
    try:
        yield parts._replace(netloc=f"{LOOPBACK}:{port}").geturl()
    finally:
        if claim is not None:
            _release(port, claim)


def _claim(port: int) -> tuple[int, int | None]:
    """``port`` and the descriptor of its claim, when both are to be had; else a free one."""
    claim = _claim_if_free(port)
    return (port, claim) if claim is not None else _claim_free()


def _claim_free() -> tuple[int, int | None]:
    low, _ = ephemeral_ports()
    if low > 11000:
        for _ in range(100):
            port = random.randint(10000, low - 1)
            if (claim := _claim_if_free(port)) is not None:
                return port, claim
    # No room below the ephemeral range: whatever the kernel hands out, claimed all the same.
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]
    return port, _take(claim_path(port))


def _claim_if_free(port: int) -> int | None:
    """The descriptor of ``port``'s claim if no other build holds it and nothing is bound to
    the port; else ``None``, and nothing is left claimed."""
    claim = _take(claim_path(port))
    if claim is not None and not _bindable(port):
        _release(port, claim)
        return None
    return claim


def ephemeral_ports() -> tuple[int, int]:
    """The range ``bind(0)`` hands ports out of on this machine."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default; macOS uses 49152-65535, above it too


def _take(path: Path) -> int | None:
    """The descriptor holding an exclusive lock on ``path``, or ``None`` when another process
    holds it (or the file is another user's that this one may not open).

    The holder removes the file when done, so the lock taken must be on the file still at
    ``path``: one removed between our open and our lock is a claim that has ended, and a
    build that had just made a new file there may hold that one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held, there = os.fstat(fd), os.stat(path)
    except OSError:
        os.close(fd)
        return None
    if (held.st_dev, held.st_ino) != (there.st_dev, there.st_ino):
        os.close(fd)
        return None
    return fd


def _release(port: int, claim: int) -> None:
    """End a claim: its file removed while the lock is held (see :func:`_take`), then the
    lock released, so the temp folder keeps no file per port ever claimed."""
    with contextlib.suppress(OSError):
        claim_path(port).unlink()
    os.close(claim)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True
