"""The scope advisor as a widget: endpoints in, the smallest scope sets out."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

import ipywidgets as w

from ..redact import redact
from ._display import Displayable


class ScopeAdvisorPanel(Displayable):
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
        from ..scopes import operation_names

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
        from ..advisor import advise, split_endpoints
        from ..errors import PlaybookError

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
        from ..playbook._results import table_html

        if self.advice is None:
            return
        chosen = next(s for s in self.advice.sets if s.kind == self.kind.value)
        tabs = "".join(
            f"<li><b>{html.escape(api)}</b>: "
            + "; ".join(
                f"{k} tab: <code>{html.escape(' '.join(v))}</code>" for k, v in groups.items()
            )
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
