"""A parity record: per request, the method, a path template, the status, the response
header names and the JSON key paths with their value types; never a value."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._files import atomic_write_text
from ..errors import ParityRecordError

FORMAT = "parity-record"
VERSION = 1

# How the bytes travelled, not what the API said: these follow the HTTP stack and body size.
TRANSPORT_HEADERS = frozenset(
    {"connection", "content-encoding", "content-length", "keep-alive", "transfer-encoding"}
)
_PLACEHOLDERS = (
    # Atlassian account ids: 24 hex digits, or "557058:" and a UUID.
    ("accountid", re.compile(r"[0-9a-f]{24}|\d+:[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.I)),
    ("uuid", re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.I)),
    ("issuekey", re.compile(r"[A-Z][A-Z0-9_]+-\d+")),
    # Two digits or more: a single digit is an API version (/rest/api/3), not an id.
    ("id", re.compile(r"\d{2,}")),
    ("email", re.compile(r"[^@\s]+@[^@\s]+")),
)
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")
FILLED = re.compile(r"\{(\w+)\}")


def placeholder(text: str) -> str | None:
    """``{cloudid}``-style stand-in for an id-like path segment or JSON key, else None."""
    for name, pattern in _PLACEHOLDERS:
        if pattern.fullmatch(text):
            return "{" + name + "}"
    return None


def template_path(path: str) -> str:
    """``/ex/jira/<cloud id>/rest/api/3/issue/PROJ-1`` -> ``/ex/jira/{cloudid}/.../{issuekey}``.

    The segment after ``/ex/<product>/`` is the cloud id whatever it looks like (FACTS.md,
    "Call the APIs through the gateway"); elsewhere ids are recognised by their form.
    """
    segments = path.split("/")
    for index, segment in enumerate(segments):
        if index == 3 and segments[1] == "ex" and segment:
            segments[index] = "{cloudid}"
        elif segment:
            segments[index] = placeholder(segment) or segment
    return "/".join(segments)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def json_shape(
    value: Any, path: str = "$", into: dict[str, set[str]] | None = None
) -> dict[str, set[str]]:
    """Every key path of a parsed JSON value with the types seen there: ``{"$[].id":
    {"string"}}``. List items share one path (``[]``); keys that look like ids are
    templated, so a map keyed by account ids does not leak them."""
    shape = {} if into is None else into
    shape.setdefault(path, set()).add(_type_name(value))
    if isinstance(value, dict):
        for key, item in value.items():
            name = placeholder(str(key)) or str(key)
            child = (
                f"{path}.{name}"
                if _IDENTIFIER.fullmatch(name) or name.startswith("{")
                else f"{path}[{json.dumps(name)}]"
            )
            json_shape(item, child, shape)
    elif isinstance(value, list):
        for item in value:
            json_shape(item, f"{path}[]", shape)
    return shape


@dataclass(frozen=True)
class Exchange:
    """The shape of one (or several identical) request and answer.

    ``base`` is ``auth`` (the authorization server) or ``api`` (the gateway); ``auth`` the
    request's ``Authorization`` scheme (``bearer``, ``basic``, ``other``) or ``none``;
    ``query`` the query parameter names; ``body`` ``json``, ``other`` or ``none``;
    ``json_types`` maps key paths to types (``string``, or ``null|string`` when both were seen).
    """

    base: str
    method: str
    path: str
    auth: str
    status: int
    query: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    body: str = "none"
    json_types: Mapping[str, str] = field(default_factory=dict)

    @property
    def request(self) -> tuple[str, str, str, str]:
        return (self.base, self.method, self.path, self.auth)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path} [{self.base}, {self.auth}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "method": self.method,
            "path": self.path,
            "auth": self.auth,
            "status": self.status,
            "query": list(self.query),
            "headers": list(self.headers),
            "body": self.body,
            "json": dict(sorted(self.json_types.items())),
        }


def _sort_key(exchange: Exchange) -> tuple:
    return (exchange.base, exchange.path, exchange.method, exchange.auth, exchange.status)


@dataclass(frozen=True)
class Record:
    """What one run saw: ``target`` is ``atlassian``, ``emulator`` or ``custom``."""

    target: str
    exchanges: tuple[Exchange, ...] = ()

    def by_request(self) -> dict[tuple[str, str, str, str], dict[int, Exchange]]:
        grouped: dict[tuple[str, str, str, str], dict[int, Exchange]] = {}
        for exchange in self.exchanges:
            grouped.setdefault(exchange.request, {})[exchange.status] = exchange
        return grouped

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "target": self.target,
            "exchanges": [e.to_dict() for e in sorted(self.exchanges, key=_sort_key)],
        }

    def to_json(self) -> str:
        """Deterministic: the same answers give the same bytes, so records diff cleanly."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save(self, path: str | Path) -> None:
        # 0644: the file holds no secret and is made to be attached to bug reports.
        atomic_write_text(path, self.to_json(), mode=0o644)

    @classmethod
    def load(cls, path: str | Path) -> Record:
        """Read a record; anything else raises :class:`ParityRecordError` naming the file."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ParityRecordError(f"{path} does not exist.") from None
        except (OSError, UnicodeDecodeError) as error:
            raise ParityRecordError(f"{path} cannot be read ({error}).") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise ParityRecordError(f"{path} is not a parity record: not JSON.") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "the record") -> Record:
        def invalid(why: str) -> ParityRecordError:
            return ParityRecordError(f"{source} is not a parity record: {why}.")

        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise invalid(f'no "format": "{FORMAT}"')
        if data.get("version") != VERSION:
            raise ParityRecordError(
                f"{source} is a parity record of version {data.get('version')!r}; this "
                f"playbook reads version {VERSION}.",
                "Record it again with this playbook's `doctor --record`, or upgrade.",
            )
        if not isinstance(data.get("target"), str) or not isinstance(data.get("exchanges"), list):
            raise invalid('it needs a "target" string and an "exchanges" list')
        return cls(
            data["target"],
            tuple(
                _exchange(entry, index, invalid) for index, entry in enumerate(data["exchanges"])
            ),
        )


def _exchange(entry: Any, index: int, invalid) -> Exchange:
    fields = {
        "base": str,
        "method": str,
        "path": str,
        "auth": str,
        "status": int,
        "query": list,
        "headers": list,
        "body": str,
        "json": dict,
    }
    if not isinstance(entry, dict):
        raise invalid(f"exchange {index} is not an object")
    for name, kind in fields.items():
        value = entry.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise invalid(f'exchange {index} has no {kind.__name__} "{name}"')
    if entry["base"] not in ("auth", "api"):
        raise invalid(f'exchange {index} has base {entry["base"]!r}, not "auth" or "api"')
    strings = [*entry["query"], *entry["headers"], *entry["json"], *entry["json"].values()]
    if not all(isinstance(item, str) for item in strings):
        raise invalid(f"exchange {index} holds a name or type that is not a string")
    return Exchange(
        entry["base"],
        entry["method"],
        entry["path"],
        entry["auth"],
        entry["status"],
        tuple(entry["query"]),
        tuple(entry["headers"]),
        entry["body"],
        dict(entry["json"]),
    )
