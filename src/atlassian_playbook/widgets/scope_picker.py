"""The scope picker: the catalog grouped as the console's Permissions tab shows it."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import ipywidgets as w

from ..presets import preset, preset_names
from ..redact import redact
from ..scopes import (
    CONSOLE_APIS,
    KINDS,
    OFFLINE_ACCESS,
    Scope,
    check_scopes,
    list_scopes,
    or_list,
    suggest,
)
from ._display import CHIP_STYLE, Displayable

# A search matching at most this many scopes opens the sections that hold them; a wider one
# only updates the sections' counts, so a one-letter search does not build every checkbox.
OPEN_MATCHES_AT_MOST = 60


@dataclass(frozen=True)
class ScopeGroup:
    """The scopes of one API of the console's Permissions tab, on one of its tabs (classic or
    granular), sorted by name: one section of the picker."""

    console_api: str
    kind: str
    scopes: tuple[Scope, ...]

    @property
    def title(self) -> str:
        return f"{self.console_api} · {self.kind.capitalize()} scopes"


def scope_groups() -> list[ScopeGroup]:
    """The catalog as the Permissions tab shows it: by API in the console's order, classic
    before granular. ``offline_access`` is in no group: it is on no tab (it is requested in
    the authorization URL)."""
    everything = list_scopes()
    groups = []
    for api in CONSOLE_APIS:
        for kind in KINDS:
            members = sorted(
                (s for s in everything if s.console_api == api and s.kind == kind),
                key=lambda s: s.name,
            )
            if members:
                groups.append(ScopeGroup(api, kind, tuple(members)))
    return groups


def _matches(scope: Scope, needle: str) -> bool:
    return not needle or needle in scope.name.lower() or needle in scope.description.lower()


class _Section:
    """One :class:`ScopeGroup` as a one-section Accordion (several can be open at once). Its
    checkboxes are built the first time it opens, and only for the scopes the search shows."""

    def __init__(self, group: ScopeGroup, build_box: Callable[[Scope], w.Checkbox]) -> None:
        self.group = group
        self._build_box = build_box
        self.matching: tuple[Scope, ...] = group.scopes
        self.body = w.VBox()
        self.accordion = w.Accordion(children=[self.body], selected_index=None)
        self.accordion.observe(lambda _: self.fill(), names="selected_index")

    @property
    def is_open(self) -> bool:
        return self.accordion.selected_index == 0

    def show(self, matching: Sequence[Scope], searching: bool) -> None:
        self.matching = tuple(matching)
        count = len(self.matching)
        total = len(self.group.scopes)
        self.accordion.set_title(
            0,
            f"{self.group.title} ({count} of {total} match)"
            if searching
            else f"{self.group.title} ({total})",
        )
        self.accordion.layout.display = None if count else "none"
        self.fill()

    def fill(self) -> None:
        if self.is_open:
            self.body.children = [self._build_box(s) for s in self.matching]


class ScopePicker(Displayable):
    """Scopes grouped as the console's Permissions tab shows them, a checkbox each.

    A click toggles one scope; searching, opening or closing a section only changes what is
    shown, never the selection. A search with no match offers "did you mean" (buttons that
    search for the suggestion); the paste box takes a scope string (space- or comma-separated).
    The selection shows as chips (a click removes the scope) with the live warnings of
    :func:`~atlassian_playbook.scopes.check_scopes` beside it. ``on_save(scopes)`` persists the
    choice (the notebook passes the function that validates and writes ``ATLASSIAN_SCOPES``,
    the one the headless parameters call too) and may return the saved, normalised selection.

    Checkboxes are built lazily (see :class:`_Section`), so the widget shows at once whatever
    the catalog's size.
    """

    def __init__(
        self,
        selected: Sequence[str],
        on_save: Callable[[tuple[str, ...]], object],
        *,
        console_apis: Iterable[str] | None = None,
    ) -> None:
        self.selected: list[str] = list(dict.fromkeys(selected))
        self._on_save = on_save
        self._console_apis = list(console_apis) if console_apis is not None else None
        self._known = {s.name for s in list_scopes()}
        self._updating = False
        self._applied_preset: tuple[str, ...] | None = None
        self.boxes: dict[str, w.Checkbox] = {}
        self.suggestions: list[str] = []

        self.preset = w.Dropdown(
            options=[("(keep selection)", ""), *[(name, name) for name in preset_names()]],
            value="",
            description="Preset",
        )
        self.summary = w.HTML()
        self.chips = w.Box(layout=w.Layout(flex_flow="row wrap"))
        self.warnings = w.HTML()
        self.save = w.Button(description="Save to .env", button_style="primary", icon="save")
        self.status = w.HTML()
        self.search = w.Text(
            placeholder="search scope names and descriptions",
            description="Search",
            continuous_update=True,
            layout=w.Layout(width="60%"),
        )
        self.shown = w.HTML()
        self.did_you_mean = w.HBox()
        self.paste = w.Text(
            placeholder="paste scopes: read:me, offline_access …",
            description="Paste",
            continuous_update=False,  # Enter (or leaving the box) adds
            layout=w.Layout(width="60%"),
        )
        self.add = w.Button(description="Add", icon="plus")
        self.paste_status = w.HTML()
        self.offline = w.Checkbox(
            value=OFFLINE_ACCESS in self.selected,
            indent=False,
            description="offline_access (a refresh token)",
        )
        self.offline_note = w.HTML(
            "<small>Not on the Permissions tab: <code>offline_access</code> is requested in the "
            "authorization URL (notebook 04 builds it from <code>ATLASSIAN_SCOPES</code>).</small>"
        )
        self.sections = [_Section(group, self._box) for group in scope_groups()]

        self.preset.observe(self._apply_preset, names="value")
        self.search.observe(lambda _: self._refresh_view(), names="value")
        self.paste.observe(self._pasted, names="value")
        self.add.on_click(lambda _: self.add_scopes(self.paste.value))
        self.offline.observe(lambda change: self._tick(OFFLINE_ACCESS, change["new"]), "value")
        self.save.on_click(lambda _: self.save_now())

        self.widget = w.VBox(
            [
                self.preset,
                self.summary,
                self.chips,
                self.warnings,
                w.HBox([self.save, self.status]),
                self.search,
                self.shown,
                self.did_you_mean,
                w.HBox([self.paste, self.add]),
                self.paste_status,
                w.HTML("<b>In the authorization URL</b>"),
                w.HBox([self.offline, self.offline_note]),
                w.HTML(
                    "<b>On the Permissions tab</b> <small>(Add each API, then Configure it and "
                    "tick its scopes on the Classic or Granular tab)</small>"
                ),
                *[s.accordion for s in self.sections],
            ]
        )
        self.widget.add_class("ap-scope-picker")
        self._refresh_view()
        self._render()

    # --- what is shown ------------------------------------------------------------------

    def _box(self, scope: Scope) -> w.Checkbox:
        """The checkbox of one scope, built once, on first show."""
        box = self.boxes.get(scope.name)
        if box is None:
            box = w.Checkbox(
                value=scope.name in self.selected,
                indent=False,
                description=f"<code>{html.escape(scope.name)}</code> "
                f"<small>{html.escape(scope.description)}</small>",
                description_allow_html=True,
                layout=w.Layout(width="auto"),
            )
            box.add_class("ap-scope")
            box.observe(lambda change, name=scope.name: self._tick(name, change["new"]), "value")
            self.boxes[scope.name] = box
        return box

    def _refresh_view(self) -> None:
        needle = self.search.value.strip().lower()
        matching = [
            [s for s in section.group.scopes if _matches(s, needle)] for section in self.sections
        ]
        count = sum(map(len, matching))
        for section, found in zip(self.sections, matching, strict=True):
            section.show(found, bool(needle))
            if found and needle and count <= OPEN_MATCHES_AT_MOST:
                section.accordion.selected_index = 0  # builds its (few) checkboxes
        offline = bool(needle) and needle in OFFLINE_ACCESS
        self.suggestions = suggest(needle) if needle and not count and not offline else []
        if not needle:
            self.shown.value = f"<small>{count} scopes in {len(self.sections)} sections</small>"
        elif count or offline:
            self.shown.value = (
                f"<small>{count} scope{'s' if count != 1 else ''} match "
                f"<code>{html.escape(needle)}</code>"
                + (" (and offline_access, apart below)" if offline else "")
                + "</small>"
            )
        else:
            self.shown.value = f"No scope matches <code>{html.escape(needle)}</code>" + (
                ". Did you mean:" if self.suggestions else " in its name or description."
            )
        self.did_you_mean.children = [self._suggestion(name) for name in self.suggestions]

    def _suggestion(self, name: str) -> w.Button:
        button = w.Button(
            description=name, tooltip=f"search for {name}", layout=w.Layout(width="auto")
        )
        button.add_class("ap-suggestion")
        button.on_click(lambda _: setattr(self.search, "value", name))
        return button

    @property
    def visible(self) -> list[str]:
        """The scope names the search shows, section by section (opened or not)."""
        return [s.name for section in self.sections for s in section.matching]

    # --- changing the selection ---------------------------------------------------------

    def _tick(self, name: str, on: bool) -> None:
        if self._updating:
            return
        if on and name not in self.selected:
            self.selected.append(name)
        elif not on and name in self.selected:
            self.selected.remove(name)
        else:
            return
        self._changed()

    def deselect(self, name: str) -> None:
        """Remove one scope (what its chip does)."""
        self._tick(name, False)

    def select(self, scopes: Iterable[str]) -> None:
        """Replace the selection (what a preset or a notebook parameter does)."""
        self.selected = list(dict.fromkeys(scopes))
        self._changed()

    def add_scopes(self, text: str) -> tuple[list[str], list[str]]:
        """Add the scopes of a pasted string (space- or comma-separated); return the ones
        added and the unknown ones (not added; the paste line suggests what they meant)."""
        items = list(dict.fromkeys(p for p in re.split(r"[\s,]+", text) if p))
        if not items:
            return [], []
        added = [s for s in items if s in self._known and s not in self.selected]
        already = [s for s in items if s in self.selected]
        unknown = [s for s in items if s not in self._known and s not in self.selected]
        lines = []
        if added:
            lines.append(f"Added {', '.join(added)}.")
        if already:
            lines.append(f"Already selected: {', '.join(already)}.")
        for name in unknown:
            close = suggest(name)
            lines.append(
                f"Unknown, not added: {name}"
                + (f" (did you mean {or_list(close)}?)" if close else " (check its spelling).")
            )
        self.paste_status.value = "<br>".join(html.escape(line) for line in lines)
        self._updating = True
        try:
            self.paste.value = ""
        finally:
            self._updating = False
        if added:
            self.selected += added
            self._changed()
        return added, unknown

    def _pasted(self, change) -> None:
        if not self._updating:
            self.add_scopes(change["new"])

    def _apply_preset(self, change) -> None:
        if self._updating or not change["new"]:
            return
        self.select(preset(change["new"]))
        self._applied_preset = tuple(self.selected)

    def _changed(self) -> None:
        self._updating = True
        try:
            for name, box in self.boxes.items():
                box.value = name in self.selected
            self.offline.value = OFFLINE_ACCESS in self.selected
            if self._applied_preset is not None and tuple(self.selected) != self._applied_preset:
                self.preset.value, self._applied_preset = "", None
        finally:
            self._updating = False
        self.status.value = "<i>unsaved changes</i>"
        self._render()

    # --- the selection and its warnings -------------------------------------------------

    def _chip(self, name: str) -> w.Button:
        chip = w.Button(
            description=f"{name} ✕", tooltip=f"Remove {name}", layout=w.Layout(width="auto")
        )
        chip.add_class("ap-chip")
        chip.on_click(lambda _: self.deselect(name))
        return chip

    def _render(self) -> None:
        self.summary.value = f"<b>Selected ({len(self.selected)})</b>" + (
            "" if self.selected else ": (none)"
        )
        self.chips.children = [self._chip(name) for name in self.selected]
        self.warnings.value = "".join(
            f"<div style='color:#a15c00'>⚠ {html.escape(x.message)} "
            f"<i>{html.escape(x.hint)}</i></div>"
            for x in check_scopes(self.selected, console_apis=self._console_apis)
        )

    @property
    def warning_codes(self) -> list[str]:
        """The live validation's findings, as stable codes (``missing-offline-access``…)."""
        return [x.code for x in check_scopes(self.selected, console_apis=self._console_apis)]

    def save_now(self) -> tuple[str, ...] | None:
        """Save through ``on_save``; an invalid selection is shown, not raised (a button
        callback has no cell to raise into)."""
        try:
            saved = self._on_save(tuple(self.selected))
        except Exception as error:
            self.status.value = (
                f"<span style='color:#b00'>not saved: {html.escape(redact(error))}</span>"
            )
            return None
        saved = tuple(saved) if saved else tuple(self.selected)
        self.selected = list(saved)
        self._render()
        self.status.value = f"saved to .env at {time.strftime('%H:%M:%S')}"
        return saved

    def snapshot_html(self) -> str:
        """The selection as chips, the warnings, then the selection grouped as on the console."""
        chips = "".join(
            f"<span style='{CHIP_STYLE}'>{html.escape(name)}</span>" for name in self.selected
        )
        parts = [
            f"<p><b>Selected ({len(self.selected)})</b> {chips or '(none)'}</p>",
            self.warnings.value,
        ]
        if self.preset.value:
            parts.insert(0, f"<p>Preset: <code>{html.escape(self.preset.value)}</code></p>")
        chosen = set(self.selected)
        rows = []
        for group in scope_groups():
            picked = [s for s in group.scopes if s.name in chosen]
            if picked:
                items = "".join(
                    f"<li>☑ <code>{html.escape(s.name)}</code> "
                    f"<small>{html.escape(s.description)}</small></li>"
                    for s in picked
                )
                rows.append(f"<li>{html.escape(group.title)}<ul>{items}</ul></li>")
        if rows:
            parts.append(f"<p><b>On the Permissions tab</b></p><ul>{''.join(rows)}</ul>")
        parts.append(
            f"<p><b>In the authorization URL</b>: "
            f"{'☑' if OFFLINE_ACCESS in chosen else '☐'} <code>offline_access</code></p>"
        )
        return "<div class='ap-scope-picker'>" + "".join(parts) + "</div>"
