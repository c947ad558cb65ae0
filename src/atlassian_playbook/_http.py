"""What the two HTTP clients (the token endpoint's and the API gateway's) share."""

from __future__ import annotations

import email.utils
import functools
import ssl
import time
from typing import Any

__all__ = ["retry_after_seconds", "new_client"]


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~25 ms of CPU; httpx does it for every new Client unless it
    # is given a context. One per process serves every client (contexts are thread-safe).
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def new_client(**kwargs: Any):
    """An ``httpx.Client`` with the process's shared TLS context and the redacted HTTP trace."""
    import httpx

    from .redact import http_trace_hooks

    kwargs.setdefault("verify", _ssl_context())
    kwargs.setdefault("event_hooks", http_trace_hooks())
    return httpx.Client(**kwargs)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
