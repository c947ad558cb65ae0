"""The wire: every HTTP exchange a notebook step makes, recorded masked and shown as panels.

People learn OAuth from the request and the response (Google's OAuth 2.0 Playground, Postman),
so each step's result carries what went over the wire: method, URL, status, the headers that
matter and the JSON bodies. Every client :func:`~._http.new_client` makes carries :func:`hooks`,
which do nothing outside a :func:`recording` block; ``@step()`` opens one, so a step records
its exchanges without passing anything along (the same seam as ``_http.observing``).

Nothing secret is kept: the ``Authorization`` header, and in the bodies the client secret, the
code and the tokens, are masked (``«secret:1a2b3c»``, :func:`~.redact.mask`) when the exchange
is recorded, and the rendered text goes through :func:`~.redact.redact` once more. Against the
emulator the URLs are loopback, shown as they are; each panel names the host it stands for.
"""

from __future__ import annotations

import contextlib
import contextvars
import html
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from .redact import mask, redact

if TYPE_CHECKING:
    import httpx

__all__ = ["Exchange", "Wire", "recording", "hooks", "stands_for"]

# Keys whose values are secrets wherever they appear in a body (token request and response).
_SECRET_KEYS = frozenset(
    {"client_secret", "code", "access_token", "refresh_token", "id_token", "token", "password"}
)
# The headers a learner reads; the rest (Date, Server, Content-Length...) is noise here.
_REQUEST_HEADERS = ("content-type", "accept", "authorization")
_RESPONSE_HEADERS = ("content-type", "location", "retry-after", "ratelimit-reason",
                     "x-failure-category", "cycle-period", "www-authenticate")
_RESPONSE_HEADER_PREFIXES = ("x-ratelimit-",)
# A body longer than this (a page of Confluence spaces) is cut, saying by how much.
_BODY_LIMIT = 4000

# Atlassian's hosts by the paths they serve (FACTS.md, "The flow"): what a loopback emulator
# URL stands for. The emulator serves auth and API on two ports, with Atlassian's paths.
_AUTH_PATHS = frozenset({"/authorize", "/authorize/decision", "/oauth/token"})
_API_PATHS = frozenset({"/oauth/token/accessible-resources", "/me"})
_API_PREFIXES = ("/ex/", "/app/")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# The emulator's own controls (clock, faults): not Atlassian's wire, and they carry its token.
_EMULATOR_CONTROLS = "/_emulator/"

_recorders: contextvars.ContextVar[tuple[Wire, ...]] = contextvars.ContextVar(
    "atlassian_playbook_wire", default=()
)


def stands_for(url: str) -> str | None:
    """The Atlassian host a loopback (emulator) URL stands for, by its path; ``None`` for a
    real Atlassian URL (it names itself) or a loopback URL that is not Atlassian's (the
    callback listener)."""
    parts = urlsplit(url)
    if (parts.hostname or "").lower() not in _LOOPBACK:
        return None
    if parts.path in _AUTH_PATHS:
        return "auth.atlassian.com"
    if parts.path in _API_PATHS or parts.path.startswith(_API_PREFIXES):
        return "api.atlassian.com"
    return None


@dataclass(frozen=True)
class Exchange:
    """One request and its response, secrets masked."""

    method: str
    url: str
    status: int
    request_headers: dict[str, str]
    request_body: Any
    response_headers: dict[str, str]
    response_body: Any
    stands_for: str | None = None

    @property
    def summary(self) -> str:
        """``POST https://auth.atlassian.com/oauth/token → 200``."""
        return f"{self.method} {self.url} → {self.status}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "url": self.url, "status": self.status,
            "stands_for": self.stands_for,
            "request": {"headers": self.request_headers, "body": self.request_body},
            "response": {"headers": self.response_headers, "body": self.response_body},
        }

    def to_html(self) -> str:
        """A ``<details>`` panel: the summary line, then headers and pretty JSON (plain HTML,
        no script, so it reads the same in JupyterLab and on the static site)."""
        label = (
            f" <small>(the emulator, standing in for <b>{self.stands_for}</b>)</small>"
            if self.stands_for else ""
        )
        return "\n".join([
            "<details class='wire-exchange'>",
            f"<summary><code>{_escape(self.summary)}</code>{label}</summary>",
            _section("Request", self.request_headers, self.request_body),
            _section("Response", self.response_headers, self.response_body),
            "</details>",
        ])


@dataclass
class Wire:
    """The exchanges recorded during one step, in order; renders itself as panels."""

    exchanges: list[Exchange] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.exchanges)

    def __iter__(self) -> Iterator[Exchange]:
        return iter(self.exchanges)

    def __repr__(self) -> str:
        return "\n".join([f"Wire({len(self)} exchanges)", *(e.summary for e in self)])

    def to_html(self) -> str:
        """The panels under a heading, or ``""`` when nothing went over the wire. One HTML
        block without blank lines, so Markdown renderers pass it through untouched."""
        if not self.exchanges:
            return ""
        count = len(self.exchanges)
        heading = f"On the wire: {count} exchange{'s' if count != 1 else ''}"
        return "\n".join([
            "<div class='wire'>",
            f"<p><b>{heading}</b> <small>(secrets masked; open a line to see the request "
            "and the response)</small></p>",
            *(exchange.to_html() for exchange in self.exchanges),
            "</div>",
        ])

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_list(self) -> list[dict[str, Any]]:
        return [exchange.to_dict() for exchange in self.exchanges]


@contextlib.contextmanager
def recording() -> Iterator[Wire]:
    """Record every exchange of the clients made by :func:`~._http.new_client`, in this
    thread and context, until the block ends. Blocks nest: an exchange goes to each."""
    wire = Wire()
    token = _recorders.set((*_recorders.get(), wire))
    try:
        yield wire
    finally:
        _recorders.reset(token)


def hooks() -> dict[str, list]:
    """httpx ``event_hooks`` feeding the enclosing :func:`recording` blocks (none: no cost)."""
    return {"response": [_on_response]}


def _on_response(response: httpx.Response) -> None:
    recorders = _recorders.get()
    if not recorders:
        return
    request = response.request
    if request.url.path.startswith(_EMULATOR_CONTROLS):
        return
    # httpx: a response hook must read the body itself before it can look at it.
    response.read()
    exchange = Exchange(
        method=request.method,
        url=redact(str(request.url)),
        status=response.status_code,
        request_headers=_headers(request.headers, _REQUEST_HEADERS),
        request_body=_body(request.headers.get("content-type"), request.content),
        response_headers=_headers(response.headers, _RESPONSE_HEADERS, _RESPONSE_HEADER_PREFIXES),
        response_body=_body(response.headers.get("content-type"), response.content),
        stands_for=stands_for(str(request.url)),
    )
    for wire in recorders:
        wire.exchanges.append(exchange)


def _headers(headers: Mapping[str, str], names: tuple[str, ...],
             prefixes: tuple[str, ...] = ()) -> dict[str, str]:
    shown: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key not in names and not key.startswith(prefixes):
            continue
        if key == "authorization":
            scheme, _, credential = value.partition(" ")
            value = f"{scheme} {mask(credential)}" if credential else mask(value)
        shown[name] = redact(value)
    return shown


def _body(content_type: str | None, content: bytes) -> Any:
    """The body as JSON with secret values masked; a form as a dict likewise; anything else
    only described (an HTML page is not what a learner reads here)."""
    if not content:
        return None
    kind = (content_type or "").split(";")[0].strip().lower()
    text = content.decode("utf-8", "replace")
    if kind == "application/json" or kind.endswith("+json"):
        try:
            return _masked(json.loads(text))
        except ValueError:
            pass
    if kind == "application/x-www-form-urlencoded":
        return _masked(dict(parse_qsl(text, keep_blank_values=True)))
    return f"({kind or 'a body'} of {len(content)} bytes, not shown)"


def _masked(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            key: mask(str(item)) if key in _SECRET_KEYS and item else _masked(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_masked(item) for item in value]
    if isinstance(value, str):
        return redact(value)
    return value


def _section(title: str, headers: Mapping[str, str], body: Any) -> str:
    rows = "".join(
        f"<tr><td style='text-align:left'><code>{_escape(name)}</code></td>"
        f"<td style='text-align:left'><code>{_escape(value)}</code></td></tr>"
        for name, value in headers.items()
    )
    parts = [f"<p><b>{title}</b></p>"]
    if rows:
        parts.append(f"<table>{rows}</table>")
    if body is not None:
        text = body if isinstance(body, str) else json.dumps(body, indent=2, ensure_ascii=False)
        if len(text) > _BODY_LIMIT:
            text = f"{text[:_BODY_LIMIT]}\n… ({len(text) - _BODY_LIMIT} more characters)"
        parts.append(f"<pre>{_escape(text)}</pre>")
    return "\n".join(parts)


def _escape(text: str) -> str:
    # Values were masked when recorded; masking by shape again would change the fingerprints
    # (a refresh token's, which shows that it rotated), so only known secrets are looked for.
    return html.escape(redact(text, shapes=False))
