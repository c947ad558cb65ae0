"""The playbook's ipywidgets: views over plain package functions.

Each widget changes state only through a callback that the headless path calls directly
(papermill runs pass the same choice as a notebook parameter), so people and batch runs take
the same code path. Rules that keep secrets out of saved notebooks:

* no widget is ever created holding a secret value, except :class:`SecretReveal` while its
  Reveal button is down; it empties itself when released (its Copy button releases it);
* :class:`CredentialsForm` empties its password field as soon as the secret is saved.

Every widget, displayed, offers two views in one mimebundle: the live widget (JupyterLab shows
it) and a ``text/html`` snapshot of what it shows at that moment, which is what an executed
notebook keeps (no widget state is saved) and what the training site's pages show. A snapshot
never holds a secret: the form is drawn empty, a secret masked.

Copy buttons are plain HTML buttons inside an ``HTML`` widget: ipywidgets 8 sets that HTML
as ``innerHTML`` and the browser runs the inline handler (``navigator.clipboard.writeText``),
in JupyterLab and in a static page alike. Everything renders in JupyterLab 4 with the stock
ipywidgets 8 (no extra extension).
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as w

from .presets import preset, preset_names
from .redact import Secret, mask, redact
from .scopes import (
    CONSOLE_APIS,
    KINDS,
    OFFLINE_ACCESS,
    Scope,
    check_scopes,
    list_scopes,
    or_list,
    suggest,
)

__all__ = [
    "ChecklistWidget",
    "ScopePicker",
    "ScopeGroup",
    "scope_groups",
    "CredentialsForm",
    "AuthorizationPanel",
    "SecretReveal",
    "ScopeAdvisorPanel",
    "copy_button",
]

# A search matching at most this many scopes opens the sections that hold them; a wider one
# only updates the sections' counts, so a one-letter search does not build every checkbox.
OPEN_MATCHES_AT_MOST = 60

_COPY_JS = (
    "navigator.clipboard.writeText(this.dataset.copy).then("
    "() => { this.textContent = 'copied'; }, () => { this.textContent = 'copy failed'; })"
)
_CHIP_STYLE = (
    "display:inline-block;margin:2px;padding:1px 6px;border:1px solid #888;"
    "border-radius:10px;font-family:monospace"
)


def copy_button(value: str, label: str = "copy") -> str:
    """A small HTML button that puts ``value`` on the clipboard. The value is in the page, so
    never pass a secret (:class:`SecretReveal` copies its field instead)."""
    return (
        "<button type='button' class='ap-copy' title='Copy to the clipboard' "
        f"data-copy='{html.escape(value, quote=True)}' "
        f'onclick="{_COPY_JS}">{html.escape(label)}</button>'
    )


class _Displayable:
    """Display = the live widget's view plus a static ``text/html`` snapshot (see the module
    docstring); ``text/plain`` names the widget instead of ipywidgets' ``VBox(children=(…``."""

    widget: w.Widget

    def snapshot_html(self) -> str:
        raise NotImplementedError

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = self.widget._repr_mimebundle_()
        bundle["text/plain"] = f"{type(self).__name__} (a live widget in JupyterLab)"
        bundle["text/html"] = self.snapshot_html()
        return bundle


def _is_pasteable(value: str) -> bool:
    """A value to paste as it is: not a ``<REPLACE: …>`` placeholder for the reader to fill
    in, nor a pointer to where the value is (``the Client ID from the console's …``)."""
    return not value.startswith(("<REPLACE", "the "))


def _step_html(step, *, copy: bool) -> str:
    """A step's detail and values; ``copy`` adds a copy button beside each value to paste."""
    items = []
    for key, value in step.values.items():
        value = str(value)
        button = f" {copy_button(value)}" if copy and _is_pasteable(value) else ""
        items.append(
            f"<li><code>{html.escape(key)}</code>: <code>{html.escape(value)}</code>{button}</li>"
        )
    return f"<div style='margin-left:2em'>{html.escape(step.detail)}<ul>{''.join(items)}</ul></div>"


class ChecklistWidget(_Displayable):
    """One checkbox per console step, with the values to enter, each with a copy button;
    ticks go to ``on_tick``."""

    def __init__(
        self, checklist, done: Iterable[str], on_tick: Callable[[str, bool], object]
    ) -> None:
        done = set(done)
        self._checklist = checklist
        self.boxes: dict[str, w.Checkbox] = {}
        rows: list[w.Widget] = [w.HTML(f"<b>{html.escape(checklist.policy_note)}</b>")]
        for number, step in enumerate(checklist.steps, 1):
            box = w.Checkbox(
                value=step.id in done,
                indent=False,
                description=f"{number}. [{step.tab}] {step.title}",
                layout=w.Layout(width="auto"),
            )
            box.observe(lambda change, sid=step.id: on_tick(sid, change["new"]), names="value")
            self.boxes[step.id] = box
            rows += [box, w.HTML(_step_html(step, copy=True))]
        self.widget = w.VBox(rows)

    def snapshot_html(self) -> str:
        parts = [f"<p><b>{html.escape(self._checklist.policy_note)}</b></p>"]
        for number, step in enumerate(self._checklist.steps, 1):
            tick = "☑" if self.boxes[step.id].value else "☐"
            parts.append(
                f"<div>{tick} {number}. [{html.escape(step.tab)}] {html.escape(step.title)}</div>"
                + _step_html(step, copy=True)
            )
        return "<div class='ap-checklist'>" + "".join(parts) + "</div>"


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


class ScopePicker(_Displayable):
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
            f"<span style='{_CHIP_STYLE}'>{html.escape(name)}</span>" for name in self.selected
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


class CredentialsForm(_Displayable):
    """Client id and a masked secret field; ``on_save(client_id, Secret)`` writes .env.

    The password field is emptied as soon as the secret is saved, so no widget state (which
    JupyterLab can save into the notebook) keeps it. Its snapshot is the form, empty.
    """

    def __init__(self, client_id: str | None, on_save: Callable[[str, Secret], object]) -> None:
        self._on_save = on_save
        self.client_id = w.Text(
            value=client_id or "",
            description="Client ID",
            placeholder="from the console's Settings tab",
        )
        self.secret = w.Password(description="Secret", placeholder="paste the Secret")
        self.save = w.Button(description="Save to .env", button_style="primary", icon="lock")
        self.status = w.HTML()
        self.save.on_click(lambda _: self.save_now())
        self.widget = w.VBox([self.client_id, self.secret, w.HBox([self.save, self.status])])

    def save_now(self) -> bool:
        """Hand the values to ``on_save``; the password field is empty afterwards, whatever
        happened. Returns True when saved."""
        client_id, value = self.client_id.value.strip(), self.secret.value.strip()
        self.secret.value = ""
        if not client_id or not value:
            self.status.value = "<span style='color:#b00'>Both fields are needed.</span>"
            return False
        secret = Secret(value)
        try:
            self._on_save(client_id, secret)
        except Exception as error:  # shown, not raised: a button callback has no cell
            self.status.value = (
                f"<span style='color:#b00'>not saved: {html.escape(redact(error))}</span>"
            )
            return False
        self.status.value = f"saved to .env (mode 0600); secret {html.escape(str(secret))}"
        return True

    def snapshot_html(self) -> str:
        """The form as a reader fills it in, with nothing in it (whatever was typed)."""
        field = "<label>{0} <input type='{1}' placeholder='{2}' disabled></label><br>"
        return (
            "<form class='ap-credentials'>"
            + field.format("Client ID", "text", html.escape(self.client_id.placeholder, True))
            + field.format("Secret", "password", html.escape(self.secret.placeholder, True))
            + "<button type='button' disabled>Save to .env</button></form>"
        )


class AuthorizationPanel:
    """The authorization link and a status line, as two updatable outputs.

    Plain display outputs (``display_id``), not widget state, so they survive in an executed
    or saved notebook, where widget state is not kept; the link's URL is also shown as text,
    so a static page says where it leads. Shown before anything waits, so a person can always
    open the link by hand. The redirected URL, which holds the code, is asked for in a masked
    input box, never here.
    """

    def __init__(self) -> None:
        from IPython.display import HTML, display

        self.url: str | None = None
        self._link = display(HTML("<i>preparing the authorization URL…</i>"), display_id=True)
        self._status = display(HTML(""), display_id=True)

    def set_url(self, url: str) -> None:
        from IPython.display import HTML

        self.url = url
        self._update(self._link, HTML(self._repr_html_()))

    def _repr_html_(self) -> str:
        if self.url is None:
            return "<i>preparing the authorization URL…</i>"
        href = html.escape(self.url, quote=True)
        return (
            f"<a href='{href}' target='_blank' rel='noopener' id='authorize-link'>"
            "Authorize the app at Atlassian →</a><br><small>or open: "
            f"<code style='word-break:break-all'>{html.escape(self.url)}</code></small>"
        )

    def show(self, html_text: str) -> None:
        from IPython.display import HTML

        self._update(self._status, HTML(redact(html_text)))

    @staticmethod
    def _update(handle, value) -> None:
        if handle is not None:  # None outside IPython
            handle.update(value)


# Copy the revealed field, then press the Reveal toggle so the kernel empties the field again.
_COPY_REVEALED_JS = (
    "const root = this.closest('.ap-secret-reveal');"
    "navigator.clipboard.writeText(root.querySelector('.ap-reveal-field input').value)"
    ".then(() => root.querySelector('.ap-reveal-toggle').click(),"
    " () => { this.textContent = 'copy failed'; })"
)


class SecretReveal(_Displayable):
    """A secret shown masked, with a Reveal toggle for copying it into a partner's form.

    While revealed, the value sits in a text field's widget state, with a Copy button beside
    it that puts the field's value on the clipboard and releases the toggle; releasing empties
    the field. The Copy button reads the field in the page, so its own HTML holds no secret.
    (Do not save the notebook with widget state while a secret is revealed.)
    """

    def __init__(self, label: str, secret: Secret | None) -> None:
        self._label = label
        self._secret = secret
        self.masked = w.HTML(f"<b>{html.escape(label)}</b>: <code>{self._shown()}</code>")
        self.toggle = w.ToggleButton(
            description="Reveal to copy", icon="eye", disabled=secret is None
        )
        self.toggle.add_class("ap-reveal-toggle")
        self.field = w.Text(layout=w.Layout(width="60%", display="none"))
        self.field.add_class("ap-reveal-field")
        self.copy = w.HTML(layout=w.Layout(display="none"))
        self.toggle.observe(self._flip, names="value")
        self.widget = w.HBox([self.masked, self.toggle, self.field, self.copy])
        self.widget.add_class("ap-secret-reveal")

    def _shown(self) -> str:
        return mask(self._secret.reveal()) if self._secret else "«none»"

    def _flip(self, change) -> None:
        revealed = bool(change["new"]) and self._secret is not None
        self.field.value = self._secret.reveal() if revealed else ""
        self.copy.value = (
            "<button type='button' class='ap-copy' title='Copy, then hide it again' "
            f'onclick="{_COPY_REVEALED_JS}">Copy and hide</button>'
            if revealed
            else ""
        )
        self.field.layout.display = self.copy.layout.display = None if revealed else "none"

    def snapshot_html(self) -> str:
        """Always masked, revealed or not."""
        return (
            f"<div class='ap-secret-reveal'><b>{html.escape(self._label)}</b>: "
            f"<code>{self._shown()}</code> <small>(masked; in JupyterLab, Reveal to copy)</small>"
            "</div>"
        )


class ScopeAdvisorPanel(_Displayable):
    """The scope advisor (:func:`atlassian_playbook.advisor.advise`) as a widget: pick
    catalog operations or paste endpoints, see the smallest classic and granular sets, and add
    one to the selection.

    ``on_apply(scopes)`` joins the advised scopes to the saved selection (the notebook passes
    the save function the ``endpoints`` parameter uses) and may return the saved selection.
    ``endpoints`` and ``kind`` are the notebook parameters' values, so the panel starts where
    the headless run ended.
    """

    def __init__(
        self,
        on_apply: Callable[[tuple[str, ...]], object],
        *,
        endpoints: Sequence[str] = (),
        kind: str = "classic",
    ) -> None:
        from .scopes import operation_names

        self._on_apply = on_apply
        self.advice = None
        self.pick = w.Combobox(
            placeholder="type to find an operation, e.g. GET /rest/api/3/issue",
            options=operation_names(),
            ensure_option=False,
            description="Endpoint",
            layout=w.Layout(width="70%"),
        )
        self.add = w.Button(description="Add endpoint", icon="plus")
        self.text = w.Textarea(
            value="\n".join(endpoints),
            placeholder="one per line: GET /rest/api/3/issue/ABC-1",
            description="Calls",
            rows=6,
            layout=w.Layout(width="95%"),
        )
        self.kind = w.ToggleButtons(
            options=(("Classic", "classic"), ("Granular", "granular")),
            value=kind,
            description="Kind",
        )
        self.advise_button = w.Button(description="Advise", button_style="info", icon="search")
        self.apply = w.Button(description="Add to .env", button_style="primary", icon="save")
        self.result = w.HTML()
        self.status = w.HTML()
        self.add.on_click(lambda _: self.add_endpoint(self.pick.value))
        self.advise_button.on_click(lambda _: self.advise_now())
        self.apply.on_click(lambda _: self.apply_now())
        self.kind.observe(lambda _: self._render(), names="value")
        self.widget = w.VBox(
            [
                w.HBox([self.pick, self.add]),
                self.text,
                self.kind,
                w.HBox([self.advise_button, self.apply, self.status]),
                self.result,
            ]
        )
        if endpoints:
            self.advise_now()

    def add_endpoint(self, endpoint: str) -> None:
        """Append ``endpoint`` (a catalog operation picked from the list) to the calls."""
        if endpoint.strip():
            self.text.value = "\n".join(filter(None, [self.text.value.rstrip(), endpoint]))
            self.pick.value = ""

    def advise_now(self):
        """Advise on the pasted calls; a malformed line shows its error and hint."""
        from .advisor import advise, split_endpoints
        from .errors import PlaybookError

        try:
            self.advice = advise(split_endpoints(self.text.value))
        except PlaybookError as error:
            self.advice = None
            self.status.value = f"<b>✘</b> {html.escape(redact(error.one_line()))}"
            self.result.value = ""
            return None
        self.status.value = ""
        self._render()
        return self.advice

    @property
    def advised(self) -> tuple[str, ...]:
        """The scopes of the chosen kind's smallest set (empty before advising)."""
        if self.advice is None:
            return ()
        return next(s.scopes for s in self.advice.sets if s.kind == self.kind.value)

    def _render(self) -> None:
        from .playbook._results import table_html

        if self.advice is None:
            return
        chosen = next(s for s in self.advice.sets if s.kind == self.kind.value)
        tabs = "".join(
            f"<li><b>{html.escape(api)}</b>: "
            + "; ".join(f"{k} tab: <code>{html.escape(' '.join(v))}</code>"
                        for k, v in groups.items())
            + "</li>"
            for api, groups in chosen.by_console_api()
        )
        self.result.value = (
            f"<p>Smallest {chosen.kind} set: <code>{html.escape(' '.join(chosen.scopes))}"
            f"</code></p><ul>{tabs}</ul>" + table_html(self.advice.rows())
        )

    def apply_now(self) -> tuple[str, ...]:
        """Advise (if not yet) and hand the chosen set to ``on_apply``."""
        if self.advice is None and self.advise_now() is None:
            return ()
        saved = self._on_apply(self.advised)
        count = len(saved) if isinstance(saved, tuple) else len(self.advised)
        self.status.value = f"✔ saved: ATLASSIAN_SCOPES has {count} scopes"
        return self.advised

    def snapshot_html(self) -> str:
        """The calls asked about and the advice shown, as the page showed them."""
        calls = "".join(
            f"<li><code>{html.escape(line)}</code></li>"
            for line in self.text.value.splitlines()
            if line.strip()
        )
        return (
            "<div class='ap-scope-advisor'><b>Scope advisor</b>"
            f"<ul>{calls or '<li><i>no calls yet</i></li>'}</ul>{self.result.value}</div>"
        )
