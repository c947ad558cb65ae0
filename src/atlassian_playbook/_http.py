"""What the two HTTP clients (the token endpoint's and the API gateway's) share."""

from __future__ import annotations

import contextlib
import contextvars
import email.utils
import functools
import ssl
import time
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["retry_after_seconds", "new_client", "observing"]

# Extra event hooks for the clients made inside an ``observing()`` block (the parity recorder).
_observers: contextvars.ContextVar[tuple[Mapping[str, list], ...]] = contextvars.ContextVar(
    "atlassian_playbook_http_observers", default=()
)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~25 ms of CPU; httpx does it for every new Client unless it
    # is given a context. One per process serves every client (contexts are thread-safe).
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def new_client(**kwargs: Any):
    """An ``httpx.Client`` with the process's shared TLS context and the redacted HTTP trace,
    plus the hooks of every enclosing :func:`observing` block."""
    import httpx

    from .redact import http_trace_hooks

    kwargs.setdefault("verify", _ssl_context())
    hooks = kwargs.pop("event_hooks") if "event_hooks" in kwargs else http_trace_hooks()
    for extra in _observers.get():
        hooks = {kind: [*hooks.get(kind, ()), *extra.get(kind, ())]
                 for kind in ("request", "response")}
    return httpx.Client(event_hooks=hooks, **kwargs)


@contextlib.contextmanager
def observing(hooks: Mapping[str, list]) -> Iterator[None]:
    """Give every client :func:`new_client` makes inside this block the extra httpx
    ``event_hooks``: how one recorder sees the token endpoint, the gateway and doctor's probes
    without each caller passing it along. Clients made before the block are not observed."""
    token = _observers.set((*_observers.get(), hooks))
    try:
        yield
    finally:
        _observers.reset(token)


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
