"""Reading one profile file: every key typed and checked, and an error that names the file and
the dotted key and says how to fix it."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError, ProfileError
from ..scopes import validate_scopes
from ._model import (
    CALLBACK_RULES,
    FLOWS,
    FORMAT,
    HANDOFF_FIELDS,
    SKIPPABLE_WARNINGS,
    SLUG,
    STEP_POSITIONS,
    TABS,
    UNKNOWN,
    Profile,
    ProfileCallback,
    ProfileHandoff,
    ProfileScopes,
    ProfileStep,
)


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


def parse(text: str, *, name: str, path: str) -> Profile:
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
            "flow",
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
    flow = top.choice("flow", FLOWS) or "3lo"
    three_legged = flow == "3lo"  # client credentials: no callback, no consent, no hand-off
    scopes = _scopes(
        top.table_at(
            "scopes",
            ("documented", "optional", "required", "offline_access_via", "without_offline_access"),
            required=True,
        ),
        three_legged,
    )
    callback = (_callback(top.table_at("callback", ("rule", "url", "shown_as"), required=True))
                if three_legged else ProfileCallback(rule="yours"))
    if not three_legged:
        for key in ("callback", "distribution"):
            if key in raw:
                top.fail(key, 'is set with flow = "client-credentials"',
                         "A service account has no callback and no distribution: remove it.")
    handoff_table = top.table_at("handoff", ("destination", "labels"), required=three_legged)
    labels_table = handoff_table.table_at("labels", HANDOFF_FIELDS)
    labels = {key: labels_table.text(key) for key in HANDOFF_FIELDS if key in labels_table.table}
    handoff = ProfileHandoff(
        destination=handoff_table.text(
            "destination", required=three_legged, example='"Acme\'s OAuth settings page"'
        ) or ".env",
        labels=labels,
        partner=partner,
    )
    distribution = top.table_at("distribution", ("sharing_required", "terms_required"))
    personal = top.table_at("personal_data", ("stored", "why", "when"), required=True)
    stored = personal.get("stored", (bool, str), required=True, example='true, false or "unknown"')
    if isinstance(stored, str) and stored != UNKNOWN:
        personal.fail("stored", f"is {stored!r}", 'Write true, false or "unknown".')
    if stored != UNKNOWN and "why" not in personal.table:
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
        stores_personal_data=None if stored == UNKNOWN else stored,
        personal_data_why=personal.text("why") or "",
        personal_data_when=when or "",
        partner=partner,
        source=top.text("source") or "",
        sharing_required=distribution.get("sharing_required", bool, default=True, example="true"),
        terms_required=distribution.get("terms_required", bool, default=False, example="true"),
        skip_warnings=frozenset(skip),
        steps=steps,
        path=path,
        flow=flow,
    )


def _scopes(table: _Reader, three_legged: bool = True) -> ProfileScopes:
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
            "offline_access_via", required=three_legged, example='"the scopes Acme requests"'
        ) or "",
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
        if not SLUG.fullmatch(step_id):
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
