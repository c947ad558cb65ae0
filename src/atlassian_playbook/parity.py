"""Parity with the real Atlassian: record the *shape* of every answer, compare the emulator's.

LocalStack keeps its AWS emulation true with recordings from the real service; this module does
the same for ours. A :class:`Recorder` observes every httpx client the package makes inside
``recorder.recording()`` (through :func:`atlassian_playbook._http.observing`) and keeps, per
request, only what describes the contract: the method, a path template
(``/ex/jira/{cloudid}/rest/api/3/myself``), the status, the response header *names* and, for a
JSON body, its key paths and value types (``$[].id: string``). It keeps no value, not even an
id, so the file a user attaches to a bug report (``doctor --record FILE``) cannot leak anything.

:func:`diff` lists how two records differ; :func:`compare_with_emulator` replays a record
against a fresh emulator (``emulator compare FILE``) and diffs the emulator's shapes with it.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._files import atomic_write_text
from ._http import new_client, observing
from .errors import ParityRecordError, PlaybookError

if TYPE_CHECKING:
    import httpx

    from .config import Settings
    from .connection import LoginResult
    from .emulator import Emulator
    from .target import Target
    from .verify import VerificationReport

__all__ = [
    "Comparison",
    "Difference",
    "Exchange",
    "Record",
    "Recorder",
    "compare_with_emulator",
    "diff",
    "json_shape",
    "login_headless",
    "record_read_only_calls",
    "template_path",
]

FORMAT = "parity-record"
VERSION = 1

# How the bytes travelled, not what the API said: these follow the HTTP stack and body size.
_TRANSPORT_HEADERS = frozenset(
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
_FILLED = re.compile(r"\{(\w+)\}")


def _placeholder(text: str) -> str | None:
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
            segments[index] = _placeholder(segment) or segment
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


def json_shape(value: Any, path: str = "$", into: dict[str, set[str]] | None = None
               ) -> dict[str, set[str]]:
    """Every key path of a parsed JSON value with the types seen there: ``{"$[].id":
    {"string"}}``. List items share one path (``[]``); keys that look like ids are
    templated, so a map keyed by account ids does not leak them."""
    shape = {} if into is None else into
    shape.setdefault(path, set()).add(_type_name(value))
    if isinstance(value, dict):
        for key, item in value.items():
            name = _placeholder(str(key)) or str(key)
            child = (f"{path}.{name}" if _IDENTIFIER.fullmatch(name) or name.startswith("{")
                     else f"{path}[{json.dumps(name)}]")
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
        return {"base": self.base, "method": self.method, "path": self.path, "auth": self.auth,
                "status": self.status, "query": list(self.query), "headers": list(self.headers),
                "body": self.body, "json": dict(sorted(self.json_types.items()))}


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
        return {"format": FORMAT, "version": VERSION, "target": self.target,
                "exchanges": [e.to_dict() for e in sorted(self.exchanges, key=_sort_key)]}

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
                "Record it again with this playbook's `doctor --record`, or upgrade.")
        if not isinstance(data.get("target"), str) or not isinstance(data.get("exchanges"), list):
            raise invalid('it needs a "target" string and an "exchanges" list')
        return cls(data["target"], tuple(_exchange(entry, index, invalid)
                                         for index, entry in enumerate(data["exchanges"])))


def _exchange(entry: Any, index: int, invalid) -> Exchange:
    fields = {"base": str, "method": str, "path": str, "auth": str, "status": int,
              "query": list, "headers": list, "body": str, "json": dict}
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
    return Exchange(entry["base"], entry["method"], entry["path"], entry["auth"],
                    entry["status"], tuple(entry["query"]), tuple(entry["headers"]),
                    entry["body"], dict(entry["json"]))


class Recorder:
    """Collects shapes from the answers of every client made inside :meth:`recording`.

    Requests to a host other than the two bases are not recorded: that host's name alone
    would be a value. Identical requests with the same status merge into one exchange.
    """

    def __init__(self, auth_base_url: str, api_base_url: str) -> None:
        import httpx

        self._bases = []
        for base, url in (("auth", auth_base_url), ("api", api_base_url)):
            parsed = httpx.URL(url)
            self._bases.append((base, parsed.scheme, parsed.netloc, parsed.path.rstrip("/")))
        self._bases.sort(key=lambda entry: -len(entry[3]))  # the longest path prefix first
        self._seen: dict[tuple, dict[str, Any]] = {}
        self._lock = threading.Lock()  # a client may be shared by threads

    @classmethod
    def for_settings(cls, settings: Settings) -> Recorder:
        return cls(settings.auth_base_url, settings.api_base_url)

    @contextlib.contextmanager
    def recording(self) -> Iterator[Recorder]:
        with observing({"response": [self.observe]}):
            yield self

    def _locate(self, url: httpx.URL) -> tuple[str, str] | None:
        for base, scheme, netloc, prefix in self._bases:
            if (url.scheme, url.netloc) == (scheme, netloc) and (
                url.path == prefix or url.path.startswith(prefix + "/")
            ):
                return base, url.path[len(prefix):] or "/"
        return None

    def observe(self, response: httpx.Response) -> None:
        """The httpx response hook."""
        request = response.request
        located = self._locate(request.url)
        if located is None:
            return
        base, path = located
        scheme = (request.headers.get("authorization") or "").split(" ", 1)[0].lower()
        auth = scheme if scheme in ("bearer", "basic") else "other" if scheme else "none"
        response.read()
        body, shape = "none", {}
        if response.content:
            try:
                shape = json_shape(json.loads(response.content))
                body = "json"
            except ValueError:
                body = "other"
        key = (base, request.method, template_path(path), auth, response.status_code)
        with self._lock:
            seen = self._seen.setdefault(
                key, {"query": set(), "headers": set(), "body": set(), "json": {}})
            seen["query"] |= {_placeholder(name) or name for name in request.url.params}
            seen["headers"] |= {name.lower() for name in response.headers} - _TRANSPORT_HEADERS
            seen["body"].add(body)
            for path_, types in shape.items():
                seen["json"].setdefault(path_, set()).update(types)

    def record(self, target: str) -> Record:
        with self._lock:
            return Record(target, tuple(
                Exchange(*key, query=tuple(sorted(seen["query"])),
                         headers=tuple(sorted(seen["headers"])),
                         body="|".join(sorted(seen["body"])),
                         json_types={p: "|".join(sorted(t)) for p, t in seen["json"].items()})
                for key, seen in self._seen.items()))


@dataclass(frozen=True)
class Difference:
    """One way the emulator's answer differs from the record's.

    ``kind``: ``missing status`` / ``extra status``, ``missing header`` / ``extra header``,
    ``missing key`` / ``extra key`` ("missing" is in the record, not from the emulator),
    ``type mismatch`` or ``body mismatch`` (then ``expected`` and ``actual`` say what).
    """

    kind: str
    request: str
    status: int
    name: str = ""
    expected: str | None = None
    actual: str | None = None

    def to_text(self) -> str:
        where = f"{self.request} -> {self.status}"
        side, _, thing = self.kind.partition(" ")  # "missing header" -> "missing", "header"
        if thing == "mismatch":
            what = self.name if side == "type" else "the body"
            return (f"{where}: {what} is {self.expected} in the record, {self.actual} from "
                    "the emulator")
        subject = "status" if thing == "status" else f"{thing} {self.name}"
        if side == "missing":
            return f"{where}: {subject} in the record, not from the emulator"
        return f"{where}: {subject} from the emulator, not in the record"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "request": self.request, "status": self.status,
                "name": self.name, "expected": self.expected, "actual": self.actual}


def diff(expected: Record, actual: Record) -> list[Difference]:
    """Every difference between ``expected`` (the record) and ``actual`` (the emulator's)."""
    wanted, answered = expected.by_request(), actual.by_request()
    out: list[Difference] = []
    for request in sorted(set(wanted) | set(answered)):
        mine, theirs = wanted.get(request, {}), answered.get(request, {})
        for status in sorted(set(mine) | set(theirs)):
            want, got = mine.get(status), theirs.get(status)
            if got is None or want is None:
                out.append(Difference("missing status" if got is None else "extra status",
                                      (want or got).label, status))
                continue
            out += _diff_exchange(want, got)
    return out


def _diff_exchange(want: Exchange, got: Exchange) -> list[Difference]:
    out = [Difference(kind, want.label, want.status, name)
           for kind, names in (("missing header", set(want.headers) - set(got.headers)),
                               ("extra header", set(got.headers) - set(want.headers)))
           for name in sorted(names)]
    if want.body != got.body:
        out.append(Difference("body mismatch", want.label, want.status, "", want.body, got.body))
    for path in sorted(set(want.json_types) | set(got.json_types)):
        expected, actual = want.json_types.get(path), got.json_types.get(path)
        if actual is None or expected is None:
            out.append(Difference("missing key" if actual is None else "extra key",
                                  want.label, want.status, path))
        elif expected != actual:
            out.append(Difference("type mismatch", want.label, want.status, path,
                                  expected, actual))
    return out


@dataclass
class Comparison:
    """What ``emulator compare`` found: ``ok`` when the replayed requests matched the record."""

    record_target: str
    differences: list[Difference]
    replayed: list[str]
    skipped: list[tuple[str, str]]  # (request, why it was not replayed)

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "record_target": self.record_target,
                "differences": [d.to_dict() for d in self.differences],
                "replayed": list(self.replayed),
                "skipped": [{"request": r, "why": why} for r, why in self.skipped]}

    def to_text(self) -> str:
        lines = [f"Replayed {len(self.replayed)} request(s) of a record from {self.record_target} "
                 "against the emulator."]
        lines += [f"skipped  {request}: {why}" for request, why in self.skipped]
        lines += [f"differs  {d.to_text()}" for d in self.differences]
        lines.append("no differences" if self.ok else f"{len(self.differences)} difference(s)")
        return "\n".join(lines)


# Never contacted: the callback is not loopback, so the headless browser stops at the redirect
# and the code is read from that URL; nothing binds a port (parallel runs cannot collide).
REPLAY_CALLBACK = "https://parity.invalid/callback"


def login_headless(emulator: Emulator, scopes: Sequence[str]) -> tuple[Target, LoginResult]:
    """Consent on an auto-consenting ``emulator`` with a new app registered for the replay;
    the tokens go to the emulator's own scratch token store."""
    from . import connection
    from .target import Target, emulator_settings

    client = emulator.register_client(redirect_uris=(REPLAY_CALLBACK,))
    settings = emulator_settings(emulator, client_id=client.client_id,
                                 client_secret=client.client_secret,
                                 redirect_uri=REPLAY_CALLBACK, scopes=tuple(scopes))
    target = Target(settings, emulator)
    result = connection.login(target, browser="headless", show_url=lambda url: None)
    return target, result


def _replay_scopes(requests: Sequence[tuple[str, str, str, str]]) -> tuple[str, ...]:
    """The default scopes plus one scope set for each recorded gateway request the catalog
    knows, so the emulator grants what each replayed call needs."""
    from . import scopes
    from .config import DEFAULT_SCOPES

    wanted = DEFAULT_SCOPES.split()
    for base, method, path, _ in requests:
        if base != "api":
            continue
        try:
            alternatives = scopes.required_scopes(method, path)
        except PlaybookError:  # not in the catalog: replayed with the default scopes
            continue
        wanted += alternatives[0] if alternatives else ()
    return tuple(dict.fromkeys(wanted))


def compare_with_emulator(record: Record) -> Comparison:
    """Replay ``record``'s read-only requests against a fresh in-process emulator, filled with
    the emulator's own ids (the consented site's cloud id, the account id), and diff shapes.

    A record keeps query parameter names, never their values, so requests go without a query.
    """
    from .emulator import Emulator

    grouped = record.by_request()
    labels = {request: next(iter(answers.values())).label for request, answers in grouped.items()}
    replayed, skipped = [], []
    with Emulator(auto_consent=True) as emulator:
        target, login = login_headless(emulator, _replay_scopes(sorted(grouped)))
        settings = target.settings
        values = {"accountid": login.entry.account_id,
                  "cloudid": (login.entry.site or {}).get("id")}
        token = login.entry.tokens.access_token
        recorder = Recorder.for_settings(settings)
        with recorder.recording(), new_client(timeout=30) as http:
            for request in sorted(grouped):
                base, method, path, auth = request
                unknown = [n for n in _FILLED.findall(path) if not values.get(n)]
                if method != "GET":
                    skipped.append((labels[request], "only read-only GET requests are replayed"))
                elif auth not in ("bearer", "none"):
                    skipped.append((labels[request], f"{auth} authentication is not replayed"))
                elif unknown:
                    skipped.append((labels[request],
                                    f"the emulator has no value for {{{unknown[0]}}}"))
                else:
                    headers = {"Accept": "application/json"}
                    if auth == "bearer":
                        headers["Authorization"] = f"Bearer {token.reveal()}"
                    url = settings.auth_base_url if base == "auth" else settings.api_base_url
                    http.request(method, url + _FILLED.sub(lambda m: values[m[1]], path),
                                 headers=headers)
                    replayed.append(request)
        actual = recorder.record("emulator")
    expected = Record(record.target, tuple(e for e in record.exchanges if e.request in replayed))
    return Comparison(record.target, diff(expected, actual), [labels[r] for r in replayed],
                      skipped)


def record_read_only_calls(target: Target, *, account_id: str | None = None
                           ) -> VerificationReport:
    """The read-only calls ``verify`` makes (accessible-resources, ``/me``, Jira myself,
    Confluence spaces), plus Jira's serverInfo, over the stored connection: run inside
    :meth:`Recorder.recording` so a record holds authenticated shapes. A failed call is an
    answer too (recorded); the returned report says which checks failed."""
    from . import connection

    report = connection.verify(target, account_id=account_id)
    site = report.chosen_site
    if site is not None and "jira" in site.products:
        with target.api_client(account_id=account_id) as api, \
                contextlib.suppress(PlaybookError):  # its answer is recorded either way
            api.jira_server_info(site.id)
    return report
