"""What a step hands back: an object that a notebook shows and a run records.

A step computes a :class:`StepResult` and returns it; :func:`step` records it (``to_dict()``,
under the result's ``name``) and, when the step failed, shows it and raises its error, so the
failing cell holds what was found and the hint. Returning the result from the cell's last
expression is what displays it: steps themselves display nothing, so nothing shows twice.

A result renders as Markdown (``_repr_markdown_``): its text, with tables as HTML blocks
(escaped, redacted, left-aligned); ``to_text()`` is its plain-text form. An
:class:`InteractiveResult` also carries live controls (a checklist's checkboxes, a form) and
shows its parts in order through ``_ipython_display_``, the controls between the texts.

While a step runs, :mod:`..wire` records each HTTP exchange it makes (secrets masked); the
result shows them under its text as collapsible panels (``wire``), and a step that raises
shows them before its error, so even a failed cell holds what went over the wire.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, Self, TypeVar

from ..errors import PlaybookError
from ..records import record
from ..redact import redact
from ..wire import Wire, recording

__all__ = ["StepResult", "InteractiveResult", "Table", "skipped", "step", "show", "table_html"]


def show(*objects: Any) -> None:
    """Display in the notebook (outside IPython: printed). Tests replace it to keep quiet."""
    from IPython.display import display

    display(*objects)


@dataclass
class Table:
    """Rows shown as an HTML table; ``columns`` default to the first row's keys."""

    rows: Sequence[dict[str, Any]]
    columns: Sequence[str] | None = None

    def to_html(self) -> str:
        return table_html(self.rows, self.columns)


def table_html(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """An HTML table of ``rows`` (escaped, redacted): readable in JupyterLab and in HTML."""
    if not rows:
        return "_(nothing to show)_"
    columns = list(columns or rows[0].keys())
    # Left-aligned: JupyterLab right-aligns table cells, which makes prose columns hard to read.
    left = "style='text-align:left'"
    head = "".join(f"<th {left}>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td {left}>{html.escape(redact(_cell(row.get(c))))}</td>" for c in columns)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if value is True:
        return "✔"
    if value is False:
        return "✘"
    if value is None:
        return "—"
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    return str(value)


@dataclass(repr=False)
class StepResult:
    """One step's outcome: ``data`` is the record (``to_dict()``), ``parts`` what a person
    reads (Markdown text or :class:`Table`), ``error`` set when the step failed, ``wire`` the
    HTTP exchanges the step made (filled in by :func:`step`)."""

    name: str
    data: Any = None
    parts: list[Any] = field(default_factory=list)
    error: PlaybookError | None = None
    wire: Wire = field(default_factory=Wire)

    def say(self, text: str) -> Self:
        self.parts.append(text)
        return self

    def table(self, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> Self:
        self.parts.append(Table(rows, columns))
        return self

    def to_dict(self) -> Any:
        return self.data

    def to_markdown(self) -> str:
        texts = [_markdown(part) for part in self.parts if _is_text(part)]
        return "\n\n".join([*texts, self.wire.to_html()] if self.wire else texts)

    def to_text(self) -> str:
        """Plain text (a console, ``text/plain``): the texts, each table row on a line."""
        lines: list[str] = []
        for part in self.parts:
            if isinstance(part, Table):
                columns = list(part.columns or (part.rows[0].keys() if part.rows else ()))
                lines.append(" | ".join(columns))
                lines += [" | ".join(_cell(row.get(c)) for c in columns) for row in part.rows]
            elif isinstance(part, str):
                lines.append(part)
        return redact("\n".join(lines))

    def _repr_markdown_(self) -> str:
        return redact(self.to_markdown())

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


@dataclass(repr=False)
class InteractiveResult(StepResult):
    """A result that carries live controls (a checklist's checkboxes, a form): in JupyterLab
    each run of text and each control show in order; the Markdown (an executed or rendered
    notebook, where widget state is not kept) is the texts alone."""

    def control(self, widget: Any) -> Self:
        self.parts.append(widget)
        return self

    def _ipython_display_(self) -> None:
        from IPython.display import Markdown

        texts: list[Any] = []
        for part in [*self.parts, None]:
            if part is not None and _is_text(part):
                texts.append(part)
                continue
            if texts:
                show(Markdown(redact("\n\n".join(map(_markdown, texts)))))
                texts = []
            if part is not None:
                show(part)
        if self.wire:
            show(self.wire)


def _is_text(part: Any) -> bool:
    return isinstance(part, str | Table)


def _markdown(part: str | Table) -> str:
    return part.to_html() if isinstance(part, Table) else part


def skipped(name: str, reason: str, *, hint: str | None = None, **data: Any) -> StepResult:
    """A step (or a rehearsal) that did not run here, recorded as ``skipped`` with the reason."""
    result = StepResult(name, {"status": "skipped", "reason": reason, **data})
    if hint:
        result.data["hint"] = hint
    return result.say(f"**Skipped.** {reason}" + (f" {hint}" if hint else ""))


P = ParamSpec("P")
R = TypeVar("R", bound=StepResult)


def step(*, shows_itself: bool = False) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Record what the step returns; on failure show it and raise its error.

    ``shows_itself``: the step's result is also displayed at once, for the steps whose result
    a notebook keeps in a variable (``refreshed = pb.refresh_tokens(...)``), where Jupyter
    shows nothing. Any other step is the last expression of its cell, which shows it.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with recording() as wire:
                try:
                    result = func(*args, **kwargs)
                except (PlaybookError, KeyboardInterrupt):
                    if wire:
                        show(wire)
                    raise
            result.wire.exchanges.extend(wire.exchanges)
            record(result.name, result.to_dict())
            if result.error is not None:
                show(result)
                raise result.error
            if shows_itself:
                show(result)
            return result

        return run

    return decorate
