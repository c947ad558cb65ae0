"""The profile registry: every integration profile (a partner such as a unified-API vendor or an
auth provider, or ``custom`` for an organisation's own integration) as one TOML data file.

A partner's facts used to be code spread over many modules: its callback URL, its scope set,
its field labels, which checklist warnings its documented set makes moot. Here each profile is
one file under ``data/profiles/`` (bundled) or a user's own file (``--profile-file``, the
notebooks' ``profile_file`` parameter), validated once when read, so adding a partner is one
data file and the checklist, scopes, CLI and playbook read it generically.

Where the public facts stop (a partner's field labels, whether it stores personal data), the
file leaves the key out or says ``"unknown"``, and the checklist turns that into an explicit
"check in the partner's dashboard" instruction: a profile never carries a guessed value.
The schema is described in ``docs/PROFILES.md``; ``atlassian-playbook profiles show custom``
prints a complete example.
"""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError, ProfileError

__all__ = [
    "DEFAULT_PROFILE",
    "CALLBACK_RULES",
    "HANDOFF_FIELDS",
    "TABS",
    "Profile",
    "ProfileScopes",
    "ProfileCallback",
    "ProfileHandoff",
    "ProfileStep",
    "profile_names",
    "get_profile",
    "load_profile",
    "resolve_profile",
]

# The profile of an organisation's own integration: the playbook's default everywhere.
DEFAULT_PROFILE = "custom"
# fixed: the partner documents one URL; partner-shows: the partner's dashboard shows one per
# instance; yours: the callback is the playbook's own (ATLASSIAN_REDIRECT_URI).
CALLBACK_RULES = ("fixed", "partner-shows", "yours")
# The values handed to a partner, with the name used when the partner's own label is unknown.
HANDOFF_FIELDS = {
    "client_id": "Client ID",
    "client_secret": "Client Secret",
    "redirect_uri": "Redirect URI",
    "extra_scopes": "Scopes",
}
# Where a checklist step happens: the console's tabs, and "Partner" for the partner's dashboard.
TABS = ("Create", "Permissions", "Authorization", "Settings", "Distribution", "Partner")
# Checklist warnings a partner's documented set can make moot (scopes.check_scopes, checklist).
SKIPPABLE_WARNINGS = (
    "missing-offline-access",
    "mixed-classic-granular",
    "api-not-added",
    "missing-report-personal-data",
    "callback-not-https",
)
STEP_POSITIONS = ("start", "end")
FORMAT = 1

_DATA_PACKAGE = "atlassian_playbook"
_DATA_DIR = "data/profiles"
_SLUG = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_UNKNOWN = "unknown"


@dataclass(frozen=True)
class ProfileScopes:
    """The scope preset: the partner's documented set, or the user's own choice.

    ``documented`` is ``None`` when the partner documents no set ("yours": the scopes in
    ``ATLASSIAN_SCOPES``, the playbook's minimal set until chosen). ``optional`` scopes (such as
    ``offline_access`` for a sign-in provider) are added only when asked for; ``required`` ones
    are put first whatever the user chose. ``offline_access_via`` says where ``offline_access``
    is requested for this profile, ``without_offline_access`` what its absence means here.
    """

    documented: tuple[str, ...] | None
    optional: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    offline_access_via: str = ""
    without_offline_access: str = ""

    def extra(self, scopes: Iterable[str]) -> tuple[str, ...]:
        """``scopes`` beyond the required ones: what a partner needs entered besides them."""
        return tuple(s for s in scopes if s not in self.required)

    def for_partner(self, scopes: Iterable[str]) -> tuple[str, ...]:
        """The scopes to enter in the partner: ``scopes`` beyond the required ones, leaving out
        an ``optional`` one the profile's set does not ask for. Notebook 03 adds
        ``offline_access`` by default (the playbook's refresh notebooks need it); a sign-in
        provider needs it only when the user says so (an explicit ``extra_scopes``)."""
        asked = self.documented or ()
        return tuple(s for s in self.extra(scopes) if s not in self.optional or s in asked)


@dataclass(frozen=True)
class ProfileCallback:
    """The callback rule: a fixed URL, one the partner shows, or the playbook's own."""

    rule: str
    url: str | None = None
    shown_as: str | None = None

    @property
    def belongs_to_partner(self) -> bool:
        """True when the partner, not the playbook, receives the browser after consent."""
        return self.rule != "yours"

    def expected(self, given: str | None = None, configured: str | None = None) -> str | None:
        """The callback this profile needs: ``given`` when passed, else the fixed URL; for a URL
        the partner shows, a non-loopback ``configured`` one (it was set for the partner);
        ``None`` when not known yet, or when the callback is the playbook's own."""
        if given:
            return given
        if self.rule == "fixed":
            return self.url
        if self.rule == "partner-shows" and configured and not _is_loopback(configured):
            return configured
        return None


@dataclass(frozen=True)
class ProfileHandoff:
    """Where the credentials go, and the labels of the fields there, as the partner names them.

    A label the public facts do not give is absent from ``labels``; :meth:`label` then says to
    check the field's name in the partner's dashboard.
    """

    destination: str
    labels: Mapping[str, str] = field(default_factory=dict)
    partner: str | None = None

    def label(self, name: str) -> str:
        """The label of handoff field ``name`` (one of :data:`HANDOFF_FIELDS`)."""
        if name in self.labels:
            return self.labels[name]
        generic = HANDOFF_FIELDS[name]
        if self.partner is None:
            return generic
        return f"{generic} (check the field's name in {self.partner}'s dashboard)"


@dataclass(frozen=True)
class ProfileStep:
    """A partner-specific checklist step, placed before the console steps (``at="start"``) or
    after them (``"end"``). ``fields`` are handoff fields whose label and value the checklist
    fills in; ``values`` are literal ones."""

    id: str
    title: str
    at: str
    tab: str = "Partner"
    detail: str = ""
    fields: tuple[str, ...] = ()
    values: Mapping[str, str] = field(default_factory=dict)
    required: bool = True


@dataclass(frozen=True)
class Profile:
    """One integration profile, as its TOML file states it (see the module docstring).

    ``partner`` is the partner's name as prose uses it (``None`` when the playbook itself is
    the client, as for ``custom``). ``stores_personal_data`` is ``None`` when the public facts
    do not say; ``personal_data_when`` is the condition a partner puts on it ("you sync Users
    and Groups through Merge"; empty: always). ``path`` is the file it was read from.
    """

    name: str
    title: str
    audience: str
    scopes: ProfileScopes
    callback: ProfileCallback
    handoff: ProfileHandoff
    stores_personal_data: bool | None
    personal_data_why: str = ""
    personal_data_when: str = ""
    partner: str | None = None
    source: str = ""
    sharing_required: bool = True
    terms_required: bool = False
    skip_warnings: frozenset[str] = frozenset()
    steps: tuple[ProfileStep, ...] = ()
    path: str = ""

    @property
    def handoff_fields(self) -> tuple[str, ...]:
        """The handoff fields (:data:`HANDOFF_FIELDS` order) this profile hands to its partner:
        those it has a label for or a step of it fills in (``extra_scopes`` only where the
        partner takes scopes of its own)."""
        return tuple(
            name
            for name in HANDOFF_FIELDS
            if name in self.handoff.labels or any(name in s.fields for s in self.steps)
        )

    @property
    def scope_source(self) -> str:
        """``"partner"`` when the partner documents the scope set, ``"yours"`` otherwise."""
        return "yours" if self.scopes.documented is None else "partner"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``atlassian-playbook profiles show --json``."""
        return {
            "name": self.name,
            "title": self.title,
            "partner": self.partner,
            "audience": self.audience,
            "source": self.source,
            "scopes": {
                "source": self.scope_source,
                "documented": (
                    None if self.scopes.documented is None else list(self.scopes.documented)
                ),
                "optional": list(self.scopes.optional),
                "required": list(self.scopes.required),
                "offline_access_via": self.scopes.offline_access_via,
            },
            "callback": {
                "rule": self.callback.rule,
                "url": self.callback.url,
                "shown_as": self.callback.shown_as,
            },
            "handoff": {
                "destination": self.handoff.destination,
                # A list, not a dict keyed by field: a "client_secret" key reads as a secret.
                "fields": [
                    {"field": name, "label": self.handoff.label(name)}
                    for name in self.handoff_fields
                ],
            },
            "stores_personal_data": (
                _UNKNOWN if self.stores_personal_data is None else self.stores_personal_data
            ),
            "stores_personal_data_when": self.personal_data_when or None,
            "sharing_required": self.sharing_required,
            "skip_warnings": sorted(self.skip_warnings),
            "steps": [{"id": s.id, "at": s.at, "title": s.title} for s in self.steps],
            "path": self.path,
        }


# --- the registry -------------------------------------------------------------------------


def _data_dir():
    from importlib.resources import files

    return files(_DATA_PACKAGE).joinpath(_DATA_DIR)


@functools.cache
def profile_names() -> tuple[str, ...]:
    """The bundled profiles' names, sorted (the file names; nothing is parsed)."""
    return tuple(
        sorted(p.name[: -len(".toml")] for p in _data_dir().iterdir() if p.name.endswith(".toml"))
    )


@functools.cache
def get_profile(name: str) -> Profile:
    """The bundled profile ``name``; :class:`ProfileError` naming the known ones otherwise."""
    names = profile_names()
    if name not in names:
        close = difflib.get_close_matches(str(name).lower(), names, n=1, cutoff=0.5)
        raise ProfileError(
            f"Unknown profile {name!r}.",
            (f"Did you mean {close[0]}? " if close else "")
            + f"Profiles: {', '.join(names)}; or give your own profile file (--profile-file).",
        )
    entry = _data_dir().joinpath(f"{name}.toml")
    return _parse(entry.read_text(encoding="utf-8"), name=name, path=f"{_DATA_DIR}/{name}.toml")


def load_profile(path: str | Path) -> Profile:
    """A user's own profile file; its name is the file's stem (``acme.toml`` is ``acme``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ProfileError(
            f"The profile file {path} is unreadable ({error.strerror or error}).",
            "Give the path of a .toml profile file; `atlassian-playbook profiles show custom` "
            "prints an example to start from.",
            path=str(path),
        ) from None
    name = path.stem
    if not _SLUG.fullmatch(name):
        raise ProfileError(
            f"{path}: the file name {path.name!r} is not a usable profile name.",
            "Name the file with lowercase letters, digits and dashes, e.g. acme-sync.toml: "
            "the name prefixes its step ids.",
            path=str(path),
        )
    return _parse(text, name=name, path=str(path))


def resolve_profile(name: str | None = None, file: str | Path | None = None) -> Profile:
    """The one lookup the CLI (``--profile``/``--profile-file``) and the notebooks
    (``profile``/``profile_file``) use: a file wins over a name; neither is ``custom``."""
    if file:
        return load_profile(file)
    return get_profile(name or DEFAULT_PROFILE)


# --- reading one file ---------------------------------------------------------------------


class _Reader:
    """Typed access to one table, raising :class:`ProfileError` by file and dotted key."""

    def __init__(self, table: Mapping[str, Any], path: str, prefix: str, keys: Iterable[str]):
        self.table, self.path, self.prefix = table, path, prefix
        known = tuple(keys)
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                self.fail(
                    key,
                    "is not a profile key",
                    (f"Did you mean {close[0]!r}? " if close else "")
                    + f"Keys here: {', '.join(known)}.",
                )

    def key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def fail(self, key: str, problem: str, hint: str) -> None:
        raise ProfileError(
            f"{self.path}: {self.key(key)} {problem}.", hint, path=self.path, key=self.key(key)
        )

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        *,
        required: bool = False,
        default: Any = None,
        example: str = "",
    ) -> Any:
        if key not in self.table:
            if required:
                self.fail(key, "is missing", f"Add it, e.g. {self.key(key)} = {example}.")
            return default
        value = self.table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(_TYPE_NAMES[k] for k in kinds)
            self.fail(
                key,
                f"is {_TYPE_NAMES.get(type(value), type(value).__name__)}, not {names}",
                f"Write it as {names}, e.g. {self.key(key)} = {example}.",
            )
        return value

    def text(self, key: str, *, required: bool = False, example: str = '"..."') -> str | None:
        value = self.get(key, str, required=required, example=example)
        if value is not None and not value.strip():
            self.fail(key, "is empty", "Write the text, or leave the key out when not known.")
        return value

    def words(self, key: str, example: str = '["read:me"]') -> tuple[str, ...] | None:
        value = self.get(key, list, example=example)
        if value is None:
            return None
        if not all(isinstance(v, str) and v.strip() for v in value):
            self.fail(key, "holds something other than text", f"List strings: {example}.")
        return tuple(value)

    def table_at(self, key: str, keys: Iterable[str], *, required: bool = False) -> _Reader:
        value = self.get(key, dict, required=required, example="{ ... } (a [table])")
        return _Reader(value or {}, self.path, f"{self.key(key)}.", keys)

    def choice(self, key: str, choices: Iterable[str], *, required: bool = False) -> str | None:
        choices = tuple(choices)
        value = self.text(key, required=required, example=f'"{choices[0]}"')
        if value is not None and value not in choices:
            close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
            self.fail(
                key,
                f"is {value!r}",
                (f"Did you mean {close[0]!r}? " if close else "")
                + f"Use one of: {', '.join(choices)}.",
            )
        return value


_TYPE_NAMES = {
    str: "a string",
    bool: "true or false",
    int: "a number",
    list: "a list",
    dict: "a table",
    float: "a number",
}


def _parse(text: str, *, name: str, path: str) -> Profile:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(
            f"{path} is not valid TOML ({error}).",
            "Fix the line it names: strings in double quotes, lists in [ ], one key per line.",
            path=path,
        ) from None
    top = _Reader(
        raw,
        path,
        "",
        (
            "format",
            "title",
            "partner",
            "audience",
            "source",
            "skip_warnings",
            "scopes",
            "callback",
            "handoff",
            "distribution",
            "personal_data",
            "steps",
        ),
    )
    version = top.get("format", int, required=True, example=str(FORMAT))
    if version != FORMAT:
        top.fail("format", f"is {version}", f"This playbook reads format = {FORMAT}.")
    partner = top.text("partner", example='"Acme"')
    scopes = _scopes(
        top.table_at(
            "scopes",
            ("documented", "optional", "required", "offline_access_via", "without_offline_access"),
            required=True,
        )
    )
    callback = _callback(top.table_at("callback", ("rule", "url", "shown_as"), required=True))
    handoff_table = top.table_at("handoff", ("destination", "labels"), required=True)
    labels_table = handoff_table.table_at("labels", HANDOFF_FIELDS)
    labels = {key: labels_table.text(key) for key in HANDOFF_FIELDS if key in labels_table.table}
    handoff = ProfileHandoff(
        destination=handoff_table.text(
            "destination", required=True, example='"Acme\'s OAuth settings page"'
        ),
        labels=labels,
        partner=partner,
    )
    distribution = top.table_at("distribution", ("sharing_required", "terms_required"))
    personal = top.table_at("personal_data", ("stored", "why", "when"), required=True)
    stored = personal.get("stored", (bool, str), required=True, example='true, false or "unknown"')
    if isinstance(stored, str) and stored != _UNKNOWN:
        personal.fail("stored", f"is {stored!r}", 'Write true, false or "unknown".')
    if stored != _UNKNOWN and "why" not in personal.table:
        personal.fail(
            "why",
            "is missing",
            "Say why, shown with a Yes declaration: e.g. why = \"The app stores users' names "
            'and emails, so it reports the accounts it stores."',
        )
    when = personal.text("when", example='"you sync Users and Groups through Acme"')
    if when is not None and stored is not True:
        personal.fail(
            "when",
            f"is set with stored = {stored!r}",
            "A condition only qualifies stored = true: remove when, or set stored = true.",
        )
    # An app that declares personal data confirms the Personal Data Reporting API (FACTS.md,
    # Distribution), so a documented set without its scope contradicts the declaration.
    if (
        stored is True
        and scopes.documented is not None
        and ("report:personal-data" not in scopes.documented)
    ):
        top.fail(
            "scopes.documented",
            "lacks report:personal-data although personal_data.stored is true",
            "Declaring that the app stores personal data confirms the Personal Data Reporting "
            "API: add report:personal-data to scopes.documented, or set stored = false.",
        )
    skip = top.words("skip_warnings", example='["mixed-classic-granular"]') or ()
    for code in skip:
        if code not in SKIPPABLE_WARNINGS:
            close = difflib.get_close_matches(code, SKIPPABLE_WARNINGS, n=1, cutoff=0.5)
            top.fail(
                "skip_warnings",
                f"names {code!r}, which no check emits",
                (f"Did you mean {close[0]!r}? " if close else "")
                + f"Warnings: {', '.join(SKIPPABLE_WARNINGS)}.",
            )
    steps = _steps(top, name)
    if partner is None and callback.belongs_to_partner:
        top.fail(
            "partner",
            "is missing",
            'A partner receives the callback: name it, e.g. partner = "Acme".',
        )
    return Profile(
        name=name,
        title=top.text("title", required=True, example='"Acme Sync"'),
        audience=top.text(
            "audience", required=True, example='"This checklist is for the owner of ..."'
        ),
        scopes=scopes,
        callback=callback,
        handoff=handoff,
        stores_personal_data=None if stored == _UNKNOWN else stored,
        personal_data_why=personal.text("why") or "",
        personal_data_when=when or "",
        partner=partner,
        source=top.text("source") or "",
        sharing_required=distribution.get("sharing_required", bool, default=True, example="true"),
        terms_required=distribution.get("terms_required", bool, default=False, example="true"),
        skip_warnings=frozenset(skip),
        steps=steps,
        path=path,
    )


def _scopes(table: _Reader) -> ProfileScopes:
    from .scopes import validate_scopes

    lists = {}
    for key in ("documented", "optional", "required"):
        value = table.words(key)
        if value:
            try:
                validate_scopes(value, setting=table.key(key))
            except ConfigError as error:
                table.fail(key, f"is not a list of known scopes ({error.message})", error.hint)
        lists[key] = value
    return ProfileScopes(
        documented=lists["documented"],
        optional=lists["optional"] or (),
        required=lists["required"] or (),
        offline_access_via=table.text(
            "offline_access_via", required=True, example='"the scopes Acme requests"'
        ),
        without_offline_access=table.text("without_offline_access") or "",
    )


def _callback(table: _Reader) -> ProfileCallback:
    rule = table.choice("rule", CALLBACK_RULES, required=True)
    url = table.text("url", required=rule == "fixed", example='"https://acme.example/callback"')
    shown_as = table.text(
        "shown_as", required=rule == "partner-shows", example='"the redirect URI shown in Acme"'
    )
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.netloc:
            table.fail(
                "url",
                f"is {url!r}, not an absolute https URL",
                "A partner's callback is public: give its full https URL.",
            )
        if rule != "fixed":
            table.fail(
                "url",
                f"is set with rule = {rule!r}",
                'Only rule = "fixed" has a URL of its own: remove url or fix rule.',
            )
    return ProfileCallback(rule=rule, url=url, shown_as=shown_as)


def _steps(top: _Reader, name: str) -> tuple[ProfileStep, ...]:
    raw = top.get("steps", list, default=[], example='[{ id = "...", ... }] ([[steps]] tables)')
    steps: list[ProfileStep] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            top.fail(
                "steps", f"entry {index} is not a table", "Write each step as a [[steps]] table."
            )
        step = _Reader(
            entry,
            top.path,
            f"steps[{index}].",
            ("id", "title", "at", "tab", "detail", "fields", "values", "required"),
        )
        step_id = step.text("id", required=True, example=f'"{name}-credentials"')
        if not _SLUG.fullmatch(step_id):
            step.fail(
                "id",
                f"is {step_id!r}, not a slug",
                f"Use lowercase words joined by "
                f'dashes, e.g. "{name}-credentials": ticked progress is kept by id.',
            )
        if step_id in {s.id for s in steps}:
            step.fail("id", f"repeats {step_id!r}", "Give every step an id of its own.")
        fields = step.words("fields", example='["client_id", "client_secret"]') or ()
        for handoff_field in fields:
            if handoff_field not in HANDOFF_FIELDS:
                close = difflib.get_close_matches(handoff_field, HANDOFF_FIELDS, n=1, cutoff=0.5)
                step.fail(
                    "fields",
                    f"names {handoff_field!r}",
                    (f"Did you mean {close[0]!r}? " if close else "")
                    + f"Fields: {', '.join(HANDOFF_FIELDS)}.",
                )
        values = step.get("values", dict, default={}, example='{ "Field" = "value" }')
        if not all(isinstance(v, str) for v in values.values()):
            step.fail("values", "holds something other than text", 'Write "Label" = "value".')
        steps.append(
            ProfileStep(
                id=step_id,
                title=step.text("title", required=True, example='"In Acme, enter ..."'),
                at=step.choice("at", STEP_POSITIONS, required=True),
                tab=step.choice("tab", TABS) or "Partner",
                detail=step.text("detail") or "",
                fields=fields,
                values=dict(values),
                required=step.get("required", bool, default=True, example="false"),
            )
        )
    return tuple(steps)


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in ("localhost", "127.0.0.1", "::1")
