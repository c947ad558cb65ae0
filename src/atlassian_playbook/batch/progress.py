"""Progress displays: a tqdm bar on the terminal, a live summary in a notebook, or nothing.

The runner calls ``start(total, done)``, ``update(result)`` for each finished run and
``close()``, always from the thread that called :func:`~.runner.run_batch` (so a notebook's
display is updated from the kernel's main thread).
"""

from __future__ import annotations

import html
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

from ..redact import redact
from .results import RunResult, where

__all__ = ["Progress", "PROGRESS", "create_progress", "live_summary_html"]


class Progress(Protocol):
    def start(self, total: int, done: Sequence[RunResult]) -> None: ...

    def update(self, result: RunResult) -> None: ...

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...


class NoProgress:
    """No bar; the rare messages (stopping, abandoning) still reach stderr."""

    def start(self, total: int, done: Sequence[RunResult]) -> None:
        pass

    def update(self, result: RunResult) -> None:
        pass

    def message(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class TerminalProgress:
    """A tqdm bar on stderr; the postfix counts runs by status; failures print as they come."""

    def __init__(self, stream=None, *, desc: str = "batch", failures: bool = True) -> None:
        self._stream = stream or sys.stderr
        self._desc = desc
        self._failures = failures  # off where another display already printed them
        self._bar = None
        self._counts: Counter[str] = Counter()

    def start(self, total: int, done: Sequence[RunResult]) -> None:
        from tqdm import tqdm  # not tqdm.auto: that imports IPython to look for a notebook

        self._counts.update(r.status for r in done)
        # disable=None: no bar when stderr is not a terminal (CI logs); failures still print.
        self._bar = tqdm(total=total, initial=len(done), unit="run", file=self._stream,
                         dynamic_ncols=True, desc=self._desc, disable=None)
        self._bar.set_postfix(self._counts, refresh=True)

    def update(self, result: RunResult) -> None:
        self._counts[result.status] += 1
        if self._bar is not None:
            if not result.ok and self._failures:
                self._bar.write(redact(_line(result)), file=self._stream)
            self._bar.set_postfix(self._counts, refresh=False)
            self._bar.update(1)

    def message(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self._stream)
        else:
            print(text, file=self._stream)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _line(result: RunResult) -> str:
    failure = result.failure or {}
    cell = f" at {where(failure)}" if where(failure) else ""
    hint = f"  hint: {failure['hint']}" if failure.get("hint") else ""
    params = " ".join(f"{k}={v}" for k, v in result.parameters.items())
    return (f"{result.status}: run {result.index} ({params}){cell}: "
            f"{failure.get('error', '')} {failure.get('message', '')}{hint}")


def live_summary_html(results: Sequence[RunResult], total: int, last: int = 10) -> str:
    """The notebook's live summary: counts by status and the latest finished runs."""
    counts = Counter(r.status for r in results)
    done = len(results)
    percent = round(100 * done / total) if total else 100
    badges = " ".join(f"<b>{html.escape(s)}</b>: {n}" for s, n in sorted(counts.items()))
    rows = []
    for result in list(results)[-last:][::-1]:
        failure = result.failure or {}
        rows.append(
            "<tr>" + "".join(f"<td>{html.escape(redact(str(v)))}</td>" for v in (
                result.index, result.status,
                " ".join(f"{k}={v}" for k, v in result.parameters.items()),
                "" if result.duration is None else f"{result.duration:.1f} s",
                failure.get("hint") or failure.get("message") or "",
            )) + "</tr>")
    table = ("<table><thead><tr><th>#</th><th>status</th><th>parameters</th><th>time</th>"
             "<th>hint</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    return (f"<div><progress max='{total}' value='{done}'></progress> {done}/{total} runs "
            f"({percent}%) — {badges or 'starting'}</div>{table}")


class NotebookProgress:
    """A summary in the notebook's output that updates as runs finish (IPython display)."""

    def __init__(self) -> None:
        self._handle = None
        self._results: list[RunResult] = []
        self._total = 0
        self._note = ""

    def _render(self):
        from IPython.display import HTML

        note = f"<p>{html.escape(self._note)}</p>" if self._note else ""
        return HTML(live_summary_html(self._results, self._total) + note)

    def start(self, total: int, done: Sequence[RunResult]) -> None:
        from IPython.display import display

        self._total = total
        self._results = list(done)
        self._handle = display(self._render(), display_id=True)

    def update(self, result: RunResult) -> None:
        self._results.append(result)
        if self._handle is not None:
            self._handle.update(self._render())

    def message(self, text: str) -> None:
        self._note = text
        if self._handle is not None:
            self._handle.update(self._render())

    def close(self) -> None:
        pass


def _in_notebook() -> bool:
    if "IPython" not in sys.modules:  # a kernel has imported it; a terminal need not
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


PROGRESS: dict[str, Callable[[], Progress]] = {
    "bar": TerminalProgress,
    "notebook": NotebookProgress,
    "none": NoProgress,
}


def create_progress(kind: str | Progress = "auto") -> Progress:
    """``auto``: the notebook summary inside a Jupyter kernel, else the terminal bar."""
    if not isinstance(kind, str):
        return kind
    if kind == "auto":
        kind = "notebook" if _in_notebook() else "bar"
    try:
        return PROGRESS[kind]()
    except KeyError:
        raise ValueError(f"progress must be one of {', '.join(['auto', *PROGRESS])}") from None
