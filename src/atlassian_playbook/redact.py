"""The one place that keeps secrets off screens, logs and disks.

Two mechanisms work together:

* :class:`Secret` wraps a value whose ``repr``/``str`` is masked; creating one registers the
  value, so :func:`redact` masks it wherever it later appears in free text.
* :func:`redact` also masks values by *shape*, for secrets the process never wrapped (a code in
  a pasted URL, a token in a JSON body, an ``Authorization`` header), except an obvious
  placeholder (``?code=...``, ``Bearer ACCESS_TOKEN``) so hints print as written.

The mask is a short fingerprint (``«secret:1a2b3c»``): two masked tokens can be compared, for
example to show that a refresh token rotated, without revealing either.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "Secret",
    "fingerprint",
    "mask",
    "redact",
    "redact_mapping",
    "register_secret",
    "RedactingFilter",
    "http_trace_hooks",
    "get_logger",
]

# Secrets shorter than this are not registered for free-text masking: masking "abc" everywhere
# would garble ordinary text, and no real client secret or token is that short.
_MIN_REGISTERED_LENGTH = 8

_SECRET_KEYS = ("client_secret", "code", "access_token", "refresh_token", "token", "password")
_registered: set[str] = set()
_registered_lock = threading.Lock()

_KEY_ALTERNATION = "|".join(_SECRET_KEYS)
_PATTERNS = [
    # JSON: "access_token": "..."
    re.compile(rf'("(?:{_KEY_ALTERNATION})"\s*:\s*")([^"]+)(")'),
    # query strings and form bodies: code=...&
    re.compile(rf"(\b(?:{_KEY_ALTERNATION})=)([^&\s\"'<>#]+)()"),
    # Authorization headers, in any casing
    re.compile(r"(\b[Bb]earer\s+)([A-Za-z0-9._~+/=-]+)()"),
    re.compile(r"(\b[Bb]asic\s+)([A-Za-z0-9+/=]{8,})()"),
]
# What hints and docs write where a secret goes (`?code=...&state=...`, `Bearer ACCESS_TOKEN`,
# `"refresh_token": "<refresh token>"`): left as written, or the hint reads `code=«secret:…»`.
# No issued value looks like these: only dots, a capitals word naming the secret, or a word in
# <> or {}; tokens and codes are random mixed-case strings.
_PLACEHOLDER = re.compile(
    r"\.{2,}|…+|(?:[A-Z]+_)*(?:CODE|TOKEN|SECRET|PASSWORD)|<[A-Za-z_ -]+>|\{[A-Za-z_ -]+\}"
)


def fingerprint(value: str) -> str:
    """A stable, non-reversible tag for a secret: the first 6 hex digits of its SHA-256."""
    return hashlib.sha256(value.encode()).hexdigest()[:6]


def mask(value: str | None) -> str:
    """How a secret is shown: ``«secret:1a2b3c»``, or ``«none»`` when absent."""
    if not value:
        return "«none»"
    return f"«secret:{fingerprint(value)}»"


def register_secret(value: str | None) -> None:
    """Remember ``value`` so :func:`redact` masks it in any text from now on."""
    if value and len(value) >= _MIN_REGISTERED_LENGTH:
        with _registered_lock:
            _registered.add(value)


class Secret:
    """A string that does not print itself.

    ``str()``, ``repr()`` and f-strings show the mask; :meth:`reveal` is the single, greppable
    way to get the value, used only where it is sent to Atlassian or written to a 0600 file.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        return self._value

    @property
    def fingerprint(self) -> str:
        return fingerprint(self._value)

    def __str__(self) -> str:
        return mask(self._value)

    def __repr__(self) -> str:
        return f"Secret({mask(self._value)})"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self):
        # Pickling (multiprocessing, Dask) must not be a way around the mask in logs; the value
        # itself has to travel, so it is kept but re-registered on the other side.
        return (Secret, (self._value,))


def _mask_match(match: re.Match[str]) -> str:
    if _PLACEHOLDER.fullmatch(match.group(2)):
        return match.group(0)
    return f"{match.group(1)}{mask(match.group(2))}{match.group(3)}"


def redact(text: Any, *, shapes: bool = True) -> str:
    """Return ``text`` as a string with every known (and, with ``shapes``, secret-shaped) value
    masked. ``shapes=False`` leaves prose such as ``?code=CODE`` in documentation alone."""
    if text is None:
        return ""
    out = str(text)
    with _registered_lock:
        known = sorted(_registered, key=len, reverse=True)
    for value in known:
        if value in out:
            out = out.replace(value, mask(value))
    if shapes:
        for pattern in _PATTERNS:
            out = pattern.sub(_mask_match, out)
    return out


def redact_mapping(data: Mapping[str, Any], keys: Iterable[str] = _SECRET_KEYS) -> dict[str, Any]:
    """A copy of ``data`` with the values of secret keys masked (recursively)."""
    keys = set(keys)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in keys and value:
            out[key] = mask(value.reveal() if isinstance(value, Secret) else str(value))
        elif isinstance(value, Mapping):
            out[key] = redact_mapping(value, keys)
        elif isinstance(value, Secret):
            out[key] = str(value)
        else:
            out[key] = value
    return out


class RedactingFilter(logging.Filter):
    """A logging filter that renders each record's message through :func:`redact`.

    Installed on the ``atlassian_playbook`` logger, so nothing the package logs (including the
    HTTP trace) can carry a secret, whatever handler the application attaches.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def get_logger(name: str) -> logging.Logger:
    """The package's loggers: each carries a :class:`RedactingFilter`.

    (A filter on a parent logger does not run for its children's records, so each module's
    logger gets its own.)
    """
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger


_http_logger = get_logger("atlassian_playbook.http")


def http_trace_hooks(logger: logging.Logger = _http_logger) -> dict[str, list]:
    """httpx ``event_hooks`` that log each request and response at DEBUG, redacted.

    Turn on with ``ATLASSIAN_PLAYBOOK_DEBUG=1`` or ``--debug`` on the CLI.
    """

    def on_request(request) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        body = request.content.decode("utf-8", "replace") if request.content else ""
        headers = {
            k: ("«redacted»" if k.lower() == "authorization" else v)
            for k, v in request.headers.items()
        }
        logger.debug("→ %s %s headers=%s body=%s", request.method, request.url, headers, body)

    def on_response(response) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        response.read()
        logger.debug(
            "← %s %s %s body=%s",
            response.status_code,
            response.request.method,
            response.request.url,
            response.text[:2000],
        )

    return {"request": [on_request], "response": [on_response]}
