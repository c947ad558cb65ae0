"""What the HTTP code shares: the clients' construction, their observers, and error bodies.

The retry policy shared by the token endpoint's and the gateway's clients is in :mod:`._retry`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import ssl
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = ["new_client", "observing", "error_detail"]

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
    plus the hooks of every enclosing :func:`observing` block and the wire recorder's
    (:mod:`.wire`: idle outside a notebook step, so a client made earlier still records)."""
    import httpx

    from . import wire
    from .redact import http_trace_hooks

    kwargs.setdefault("verify", _ssl_context())
    hooks = kwargs.pop("event_hooks") if "event_hooks" in kwargs else http_trace_hooks()
    for extra in (*_observers.get(), wire.hooks()):
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


def error_detail(response: httpx.Response) -> str:
    """The human part of an error body, whatever Atlassian API answered (redacted, one line).

    Jira's ``errorMessages``/``errors``, personal data reporting's ``errorType``/
    ``errorMessage``, the gateway's ``message`` and OAuth-style ``error_description``/
    ``error``; a body that is not JSON is quoted (300 characters at most).
    """
    from .redact import redact

    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return redact(text[:300]).replace("\n", " ")
    parts: list[str] = []
    if isinstance(body, dict):
        # Jira: {"errorMessages": [...], "errors": {"field": "..."}}
        for message in body.get("errorMessages") or ():
            parts.append(str(message))
        errors = body.get("errors")
        if isinstance(errors, dict):
            parts.extend(f"{key}: {value}" for key, value in errors.items())
        # Personal data reporting: {"errorType": "...", "errorMessage": "..."}
        if body.get("errorType") or body.get("errorMessage"):
            parts.append(
                ": ".join(str(body[k]) for k in ("errorType", "errorMessage") if body.get(k))
            )
        # Gateway: {"code": 401, "message": "..."}; OAuth-style {"error", "error_description"}
        for key in ("message", "error_description", "error"):
            if body.get(key) and not parts:
                parts.append(str(body[key]))
    elif isinstance(body, list):
        parts.extend(str(item) for item in body[:5])
    return redact("; ".join(parts)).replace("\n", " ")
