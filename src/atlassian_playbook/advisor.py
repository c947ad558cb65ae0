"""The scope advisor: "my integration calls these endpoints; which scopes do I tick?"

"Scope does not match" is the 3LO failure people meet most, and it comes from guessing scopes
from their names. Atlassian's OpenAPI documents say which scopes each operation accepts (the
catalog, :mod:`.scopes`): one complete classic set *or* one complete granular set. The advisor
turns a list of endpoints into the smallest set of each kind that covers them all, and says
under which API of the console's Permissions tab each scope is ticked.

Smallest is exact: one alternative is chosen per endpoint so that the union is as small as
possible. An endpoint has one or two alternatives of a kind, so the search is exhaustive up to
:data:`MAX_COMBINATIONS` combinations and greedy beyond it (``ScopeSet.exact`` says which). An
endpoint with no alternative of the set's kind (Confluence v2 has only granular scopes) is
covered by the other kind, and the set says so in ``borrowed``. Nothing is dropped silently:
endpoints the catalog does not know, endpoints any token can call and endpoints whose spec names
no scope are reported on their own.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import scopes
from .errors import PlaybookError

__all__ = [
    "Endpoint",
    "EndpointAdvice",
    "ScopeSet",
    "ScopeAdvice",
    "MAX_COMBINATIONS",
    "METHODS",
    "parse_endpoint",
    "split_endpoints",
    "advise",
]

# Beyond this many combinations of alternatives, the union is minimised greedily.
MAX_COMBINATIONS = 50_000
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
EXAMPLE = "GET /rest/api/3/issue/{issueIdOrKey}"


@dataclass(frozen=True)
class Endpoint:
    """``METHOD path`` as the user wrote it, spaces squeezed and the method upper-cased."""

    text: str
    method: str
    path: str


def parse_endpoint(text: str) -> Endpoint:
    """``"GET /rest/api/3/issue/ABC-1"`` (or a gateway path, or a full URL) as an Endpoint.

    Raises :class:`PlaybookError` when the method is missing or unknown, or the path is, with
    the line to write instead.
    """
    line = " ".join(text.split())
    method, _, path = line.partition(" ")
    if not line:
        raise PlaybookError("An endpoint is empty.", f"Write each endpoint as {EXAMPLE!r}.")
    if method.startswith("/") or "://" in method:
        raise PlaybookError(
            f"The endpoint {line!r} has no HTTP method.",
            f"Put the method first: 'GET {line}' (or POST, PUT, DELETE...).",
        )
    if method.upper() not in METHODS:
        close = scopes.close_matches(method.upper(), METHODS, n=1)
        fix = f"Did you mean {close[0]}? " if close else ""
        raise PlaybookError(
            f"The endpoint {line!r} starts with {method!r}, which is no HTTP method.",
            f"{fix}Write it as 'METHOD path', the method one of {', '.join(METHODS)}.",
        )
    if not path or " " in path or not (path.startswith("/") or "://" in path):
        raise PlaybookError(
            f"The endpoint {line!r} has no API path after {method}.",
            f"Write it as {EXAMPLE!r}: one method, one path (or gateway URL), no spaces.",
        )
    return Endpoint(f"{method.upper()} {path}", method.upper(), path)


def split_endpoints(text: str) -> list[str]:
    """Endpoints from a pasted block: one per line or ``;``-separated; blank lines and ``#``
    comments are skipped (the notebook parameter, the widget's text box, the CLI's stdin)."""
    parts = (part.strip() for line in text.splitlines() for part in line.split(";"))
    return [part for part in parts if part and not part.startswith("#")]


@dataclass(frozen=True)
class EndpointAdvice:
    """What the catalog says about one endpoint.

    ``status``: ``covered`` (some scope set satisfies it), ``any-token`` (no scope needed),
    ``no-scope`` (the spec names no scope: no set can cover it; 3LO apps often cannot call it),
    ``unknown`` (not in the catalog; ``hint`` says how to write it).
    """

    endpoint: Endpoint
    status: str
    operation: str | None = None
    alternatives: tuple[scopes.Alternative, ...] = ()
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint.text,
            "status": self.status,
            "operation": self.operation,
            "alternatives": [{"kind": a.kind, "scopes": list(a.scopes)}
                             for a in self.alternatives],
            "hint": self.hint,
        }


@dataclass(frozen=True)
class ScopeSet:
    """The smallest set of one ``kind`` covering the covered endpoints.

    ``exact`` is False when the search hit :data:`MAX_COMBINATIONS` and fell back to greedy.
    ``borrowed`` lists the endpoints that have no alternative of ``kind``, covered by the other
    kind's scopes (which are in ``scopes`` too).
    """

    kind: str
    scopes: tuple[str, ...]
    exact: bool = True
    borrowed: tuple[str, ...] = ()

    @property
    def console_apis(self) -> list[str]:
        """The Permissions-tab APIs to Add, in the console's order."""
        return [api for api, _ in self.by_console_api()]

    def by_console_api(self) -> list[tuple[str, dict[str, list[str]]]]:
        """``[(console API, {"classic": [...], "granular": [...]})]`` in the console's order,
        as its Permissions tab shows them: each API, then its Classic and Granular tabs."""
        known = scopes.catalog()
        groups: dict[str, dict[str, list[str]]] = {}
        for name in self.scopes:
            scope = known[name]
            if scope.console_api is None:
                continue
            tabs = groups.setdefault(scope.console_api, {})
            tabs.setdefault(scope.kind, []).append(name)
        return [
            (api, {kind: sorted(groups[api][kind]) for kind in scopes.KINDS
                   if kind in groups[api]})
            for api in scopes.CONSOLE_APIS
            if api in groups
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "scopes": list(self.scopes),
            "exact": self.exact,
            "borrowed": list(self.borrowed),
            "console_apis": {api: tabs for api, tabs in self.by_console_api()},
        }


OFFLINE_REMINDER = (
    "offline_access (a refresh token) is not ticked on the Permissions tab: it is requested in "
    "the authorization URL's scope, with the scopes above."
)


@dataclass(frozen=True)
class ScopeAdvice:
    """What :func:`advise` found: the smallest ``classic`` and ``granular`` sets and, per
    endpoint, what the catalog says (``endpoints``, in the order given)."""

    endpoints: tuple[EndpointAdvice, ...]
    classic: ScopeSet
    granular: ScopeSet
    sets: tuple[ScopeSet, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sets", (self.classic, self.granular))

    def _with(self, status: str) -> list[EndpointAdvice]:
        return [e for e in self.endpoints if e.status == status]

    @property
    def unknown(self) -> list[EndpointAdvice]:
        return self._with("unknown")

    @property
    def any_token(self) -> list[EndpointAdvice]:
        return self._with("any-token")

    @property
    def no_scope(self) -> list[EndpointAdvice]:
        return self._with("no-scope")

    @property
    def covered(self) -> list[EndpointAdvice]:
        return self._with("covered")

    def rows(self) -> list[dict[str, str]]:
        """One row per endpoint: the catalog operation it matched and each kind's scopes for
        it (the table notebook 03 and its advisor widget show)."""
        notes = {
            "covered": "",
            "any-token": "any token can call it",
            "no-scope": "no documented scope: no set covers it",
            "unknown": "not in the scope catalog",
        }
        rows = []
        for item in self.endpoints:
            by_kind = {
                kind: " or ".join(" ".join(a.scopes) for a in item.alternatives if a.kind == kind)
                if item.status == "covered" else ""
                for kind in scopes.KINDS
            }
            rows.append({
                "endpoint": item.endpoint.text,
                "matches": item.operation or "",
                **by_kind,
                "note": notes[item.status] + (f" ({item.hint})" if item.hint else ""),
            })
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "classic": self.classic.to_dict(),
            "granular": self.granular.to_dict(),
            "endpoints": [e.to_dict() for e in self.endpoints],
            "offline_access": OFFLINE_REMINDER,
        }

    def to_text(self) -> str:
        """What ``atlassian-playbook scopes for`` prints: each set grouped as the console's
        Permissions tab lists it, then the endpoints no set covers."""
        lines = [f"{len(self.endpoints)} endpoint(s), {len(self.covered)} needing scopes."]
        if self.covered:
            for scope_set in self.sets:
                lines += ["", *_set_lines(scope_set)]
        for title, found in (
            ("Any token can call (no scope to tick)", self.any_token),
            ("No documented scope (no scope set can cover these; 3LO apps often cannot call "
             "them)", self.no_scope),
            ("Not in the scope catalog", self.unknown),
        ):
            if found:
                lines += ["", f"{title}:"]
                lines += [f"  {e.endpoint.text}" + (f"  hint: {e.hint}" if e.hint else "")
                          for e in found]
        lines += ["", OFFLINE_REMINDER]
        return "\n".join(lines)


def _set_lines(scope_set: ScopeSet) -> list[str]:
    noun = "scope" if len(scope_set.scopes) == 1 else "scopes"
    how = "" if scope_set.exact else " (greedy: too many combinations to search them all)"
    env = " ".join((*scope_set.scopes, scopes.OFFLINE_ACCESS))
    lines = [f"Smallest {scope_set.kind} set: {len(scope_set.scopes)} {noun}{how}",
             f"  in .env: ATLASSIAN_SCOPES=\"{env}\""]
    for api, tabs in scope_set.by_console_api():
        lines.append(f"  Permissions tab, {api}:")
        lines += [f"    {kind.capitalize()} scopes: {' '.join(names)}"
                  for kind, names in tabs.items()]
    if scope_set.borrowed:
        other = "granular" if scope_set.kind == "classic" else "classic"
        lines.append(f"  No {scope_set.kind} scope covers these, so {other} ones are in the set: "
                     + "; ".join(scope_set.borrowed))
    return lines


def _advise_one(endpoint: Endpoint) -> EndpointAdvice:
    operation = scopes.find_operation(endpoint.method, endpoint.path)
    if operation is None:
        error = scopes.unknown_operation_error(endpoint.method, endpoint.path)
        return EndpointAdvice(endpoint, "unknown", hint=error.hint)
    alternatives = operation.alternatives
    if any(not alt.scopes for alt in alternatives):
        status = "any-token"
    elif not alternatives:
        status = "no-scope"
    else:
        status = "covered"
    return EndpointAdvice(endpoint, status, operation.key, alternatives)


def _smallest_union(
    candidates: Sequence[Sequence[tuple[str, ...]]],
) -> tuple[frozenset[str], bool]:
    """One candidate per entry minimising the union; (union, exact)."""
    forced: set[str] = set()
    for options in candidates:
        if len(options) == 1:
            forced |= set(options[0])
    # Entries an option already inside the forced scopes satisfies cost nothing more.
    open_choices = [
        list(dict.fromkeys(options))
        for options in candidates
        if len(options) > 1 and not any(set(o) <= forced for o in options)
    ]
    open_choices = list({tuple(o): o for o in open_choices}.values())  # same choice once
    count = 1
    for options in open_choices:
        count *= len(options)
    if count <= MAX_COMBINATIONS:
        best: frozenset[str] | None = None
        for combination in itertools.product(*open_choices):
            union = frozenset(forced.union(*combination))
            if best is None or len(union) < len(best):
                best = union
        return best if best is not None else frozenset(forced), True
    union = set(forced)
    for options in open_choices:
        union |= set(min(options, key=lambda o: len(set(o) - union)))
    return frozenset(union), False


def _smallest_set(kind: str, covered: Sequence[EndpointAdvice]) -> ScopeSet:
    candidates, borrowed = [], []
    for advice in covered:
        own = [alt.scopes for alt in advice.alternatives if alt.kind == kind]
        if not own:
            borrowed.append(advice.endpoint.text)
            own = [alt.scopes for alt in advice.alternatives]
        candidates.append(own)
    union, exact = _smallest_union(candidates)
    # Catalog order (the order each endpoint lists its scopes), deterministic and readable.
    order = [s for options in candidates for option in options for s in option]
    ordered = tuple(s for s in dict.fromkeys(order) if s in union)
    return ScopeSet(kind, ordered, exact, tuple(dict.fromkeys(borrowed)))


def advise(endpoints: Iterable[str]) -> ScopeAdvice:
    """The smallest classic and granular scope sets that cover ``endpoints``.

    Each endpoint is ``"METHOD path"``: an API path with ``{placeholders}`` or real ids
    (``/rest/api/3/issue/ABC-1``), a gateway path or a full gateway URL. Blank entries are
    skipped; a malformed one (no method, an unknown method, no path) raises
    :class:`PlaybookError` saying how to write it. Endpoints the catalog does not know are
    reported in the advice (``unknown``, with the hint), never dropped.
    """
    parsed = [parse_endpoint(text) for text in endpoints if text.strip()]
    advice = tuple(_advise_one(endpoint) for endpoint in parsed)
    covered = [a for a in advice if a.status == "covered"]
    return ScopeAdvice(
        advice, _smallest_set("classic", covered), _smallest_set("granular", covered)
    )
