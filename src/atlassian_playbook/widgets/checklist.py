"""The console checklist as ticks, with copy buttons beside the values to paste."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable

import ipywidgets as w

from ._display import Displayable, copy_button


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


class ChecklistWidget(Displayable):
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
