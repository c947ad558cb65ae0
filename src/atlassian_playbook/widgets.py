"""The playbook's ipywidgets: views over plain package functions.

Each widget changes state only through a callback that the headless path calls directly
(papermill runs pass the same choice as a notebook parameter), so people and batch runs take
the same code path. Rules that keep secrets out of saved notebooks:

* no widget is ever created holding a secret value, except :class:`SecretReveal` while its
  Reveal button is down; it empties itself when released;
* :class:`CredentialsForm` empties its password field as soon as the secret is saved.

Everything renders in JupyterLab 4 with the stock ipywidgets 8 (no extra extension).
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterable, Sequence

import ipywidgets as w

from .redact import Secret, mask, redact
from .presets import preset, preset_names
from .scopes import OFFLINE_ACCESS, check_scopes, list_scopes

__all__ = [
    "ChecklistWidget",
    "ScopePicker",
    "CredentialsForm",
    "AuthorizationPanel",
    "SecretReveal",
]

# In the console's Permissions-tab order; "Platform" is offline_access and personal data reporting.
API_FILTERS = (
    ("All", None),
    ("Identity", "identity"),
    ("Jira", "jira"),
    ("JSM", "jsm"),
    ("Confluence", "confluence"),
    ("Platform", "platform"),
)
KIND_FILTERS = (("Both", None), ("Classic", "classic"), ("Granular", "granular"))


class _Displayable:
    widget: w.Widget

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


class ChecklistWidget(_Displayable):
    """One checkbox per console step, with the values to enter; ticks go to ``on_tick``."""

    def __init__(
        self, checklist, done: Iterable[str], on_tick: Callable[[str, bool], object]
    ) -> None:
        done = set(done)
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
            values = "".join(
                f"<li><code>{html.escape(k)}</code>: <code>{html.escape(str(v))}</code></li>"
                for k, v in step.values.items()
            )
            detail = (
                f"<div style='margin-left:2em'>{html.escape(step.detail)}<ul>{values}</ul></div>"
            )
            rows += [box, w.HTML(detail)]
        self.widget = w.VBox(rows)


class ScopePicker(_Displayable):
    """Scopes grouped by API, with search, a classic/granular filter, presets and live checks.

    The list shows each scope as ``[API · kind] name — description``, grouped by API in the
    console's order. Filters only change what is shown: a scope selected under one filter stays
    selected under another. ``on_save(scopes)`` persists the choice (the notebook passes the
    function that validates and writes ``ATLASSIAN_SCOPES`` to .env, the one the headless
    parameters call too) and may return the saved, normalised selection.
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
        self._updating = False
        self.search = w.Text(
            placeholder="search scopes or descriptions",
            description="Search",
            continuous_update=True,
        )
        self.api = w.ToggleButtons(options=API_FILTERS, value=None, description="API")
        self.kind = w.ToggleButtons(options=KIND_FILTERS, value=None, description="Kind")
        self.preset = w.Dropdown(
            options=[("(keep selection)", ""), *[(name, name) for name in preset_names()]],
            value="",
            description="Preset",
        )
        self.offline = w.Checkbox(
            value=OFFLINE_ACCESS in self.selected,
            indent=False,
            description="offline_access (refresh token)",
        )
        self.options = w.SelectMultiple(rows=14, description="Scopes", layout=w.Layout(width="95%"))
        self.shown = w.HTML()
        self.summary = w.HTML()
        self.warnings = w.HTML()
        self.save = w.Button(description="Save to .env", button_style="primary", icon="save")
        self.status = w.HTML()
        for control in (self.search, self.api, self.kind):
            control.observe(lambda _: self._refresh_options(), names="value")
        self.preset.observe(self._apply_preset, names="value")
        self.offline.observe(self._toggle_offline, names="value")
        self.options.observe(self._on_pick, names="value")
        self.save.on_click(lambda _: self.save_now())
        self.widget = w.VBox(
            [
                self.search,
                self.api,
                self.kind,
                w.HBox([self.preset, self.offline]),
                self.options,
                self.shown,
                self.summary,
                self.warnings,
                w.HBox([self.save, self.status]),
            ]
        )
        self._refresh_options()

    @staticmethod
    def _order(scope) -> tuple:
        api_rank = {api: i for i, (_, api) in enumerate(API_FILTERS)}
        return (api_rank.get(scope.api, 99), scope.kind, scope.name)

    def _refresh_options(self) -> None:
        needle = self.search.value.strip().lower()
        shown = sorted(
            (
                s
                for s in list_scopes(api=self.api.value, kind=self.kind.value)
                if not needle or needle in s.name.lower() or needle in s.description.lower()
            ),
            key=self._order,
        )
        labels = dict((api, label) for label, api in API_FILTERS)
        self._updating = True
        try:
            self.options.options = [
                (
                    f"[{labels.get(s.api, s.api)} · {s.kind}] {s.name} — {s.description}"[:160],
                    s.name,
                )
                for s in shown
            ]
            visible = {s.name for s in shown}
            self.options.value = tuple(n for n in self.selected if n in visible)
        finally:
            self._updating = False
        self.shown.value = f"<small>{len(shown)} scope(s) shown</small>"
        self._render()

    @property
    def visible(self) -> list[str]:
        """The scope names the current filters show."""
        return [value for _, value in self.options.options]

    def _on_pick(self, change) -> None:
        if self._updating:
            return
        visible = set(self.visible)
        picked = list(change["new"])
        self.selected = list(
            dict.fromkeys([n for n in self.selected if n not in visible or n in picked] + picked)
        )
        self._changed()

    def _apply_preset(self, change) -> None:
        if change["new"]:
            self.select(preset(change["new"]))

    def _toggle_offline(self, change) -> None:
        if self._updating:
            return
        has = OFFLINE_ACCESS in self.selected
        if change["new"] and not has:
            self.selected.append(OFFLINE_ACCESS)
        elif not change["new"] and has:
            self.selected.remove(OFFLINE_ACCESS)
        else:
            return
        self._changed()
        self._refresh_options()

    def select(self, scopes: Iterable[str]) -> None:
        """Replace the selection (what a preset or a notebook parameter does)."""
        self.selected = list(dict.fromkeys(scopes))
        self._changed()
        self._refresh_options()

    def _changed(self) -> None:
        self._updating = True
        try:
            self.offline.value = OFFLINE_ACCESS in self.selected
        finally:
            self._updating = False
        self.status.value = "<i>unsaved changes</i>"
        self._render()

    def _render(self) -> None:
        self.summary.value = f"<b>Selected ({len(self.selected)}):</b> " + html.escape(
            " ".join(self.selected) or "(none)"
        )
        found = check_scopes(self.selected, console_apis=self._console_apis)
        self.warnings.value = "".join(
            f"<div style='color:#a15c00'>⚠ {html.escape(x.message)} "
            f"<i>{html.escape(x.hint)}</i></div>"
            for x in found
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
        self.status.value = f"saved to .env at {time.strftime('%H:%M:%S')}"
        self._render()
        return saved


class CredentialsForm(_Displayable):
    """Client id and a masked secret field; ``on_save(client_id, Secret)`` writes .env.

    The password field is emptied as soon as the secret is saved, so no widget state (which
    JupyterLab can save into the notebook) keeps it.
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


class AuthorizationPanel:
    """The authorization link and a status line, as two updatable outputs.

    Plain display outputs (``display_id``), not widget state, so they survive in an executed
    or saved notebook, where widget state is not kept. Shown before anything waits, so a person
    can always open the link by hand. The redirected URL, which holds the code, is asked for in
    a masked input box, never here.
    """

    def __init__(self) -> None:
        from IPython.display import HTML, display

        self.url: str | None = None
        self._link = display(HTML("<i>preparing the authorization URL…</i>"), display_id=True)
        self._status = display(HTML(""), display_id=True)

    def set_url(self, url: str) -> None:
        from IPython.display import HTML

        self.url = url
        self._update(
            self._link,
            HTML(
                f"<a href='{html.escape(url, quote=True)}' target='_blank' rel='noopener' "
                "id='authorize-link'>Authorize the app at Atlassian →</a>"
            ),
        )

    def show(self, html_text: str) -> None:
        from IPython.display import HTML

        self._update(self._status, HTML(redact(html_text)))

    @staticmethod
    def _update(handle, value) -> None:
        if handle is not None:  # None outside IPython
            handle.update(value)


class SecretReveal(_Displayable):
    """A secret shown masked, with a Reveal toggle for copying it into a partner's form.

    While revealed, the value sits in a text field's widget state; releasing the toggle empties
    it. (Do not save the notebook with widget state while a secret is revealed.)
    """

    def __init__(self, label: str, secret: Secret | None) -> None:
        self._secret = secret
        shown = mask(secret.reveal()) if secret else "«none»"
        self.masked = w.HTML(f"<b>{html.escape(label)}</b>: <code>{shown}</code>")
        self.toggle = w.ToggleButton(
            description="Reveal to copy", icon="eye", disabled=secret is None
        )
        self.field = w.Text(layout=w.Layout(width="60%", display="none"))
        self.toggle.observe(self._flip, names="value")
        self.widget = w.HBox([self.masked, self.toggle, self.field])

    def _flip(self, change) -> None:
        if change["new"] and self._secret is not None:
            self.field.value = self._secret.reveal()
            self.field.layout.display = None
        else:
            self.field.value = ""
            self.field.layout.display = "none"


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
