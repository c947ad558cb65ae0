"""``run_health``: a fleet's health check without kernels, and notebook pages where it failed.

A health check through notebooks costs 30–65 times its real work: each connection's refresh
and verify take tens of milliseconds, its kernel's start and stop about a second. So:

1. the plan ``batch --from-store`` would run (one run of notebook 11 per token-store entry)
   goes to :func:`~.runner.run_batch` on the :mod:`.in_process` executor: the notebook's own
   check in threads, with the runner's guarantees (never two runs of one entry at once, each
   result journaled) and its ``summary.json`` and ``summary.html``;
2. the connections that failed are run again through notebook 11 on the local pool, into
   ``notebooks/`` in the same folder (a batch of its own, with its journal and summary), so
   the page a person reads exists exactly where someone must look;
3. each failed run of the summary becomes its notebook run: the failing cell, its error and
   hint, the records, the link to the executed notebook, as a batch failure has them. The
   reports are written again.

A connection that failed in process and then passed in its notebook (a 429 that went away, a
blip of the network) is ``ok`` with a warning that says so. A notebook run that did not finish
(stopped, timed out, lost) keeps the in-process failure, with a link to what it wrote.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .in_process import InProcessHealthExecutor, default_threads
from .plan import Plan, plan_from_store
from .progress import Progress
from .report import BatchSummary, write_reports
from .results import RunResult
from .runner import run_batch

__all__ = ["run_health", "health_plan", "PAGES_FOLDER", "PAGE_STATUSES"]

PAGES_FOLDER = "notebooks"  # in the health folder: the batch of notebook 11 over the failed
# The in-process statuses that get a notebook page (cancelled: not run, nothing to look at).
PAGE_STATUSES = ("failed", "lost")
_FINISHED = ("ok", "failed")  # notebook runs whose outcome replaces the in-process one


def run_health(
    workspaces: Sequence[str | Path],
    *,
    output_dir: str | Path,
    workers: int | None = None,
    refresh_webhooks: bool = False,
    progress: str | Progress = "none",
    pages_progress: str | Progress | None = None,
    page_workers: int | None = None,
    on_pages: Callable[[int], object] | None = None,
    plan: Plan | None = None,
) -> BatchSummary:
    """Check every stored connection of ``workspaces`` in process, then run notebook 11 for
    those that failed; write ``summary.json`` and ``summary.html`` into ``output_dir``.

    ``workers``: checks in flight (threads; default :func:`~.in_process.default_threads`: 1
    when every workspace runs on its embedded emulator, else 4). ``page_workers``: notebook
    runs at once for the failed ones (default: as many as failed, at most the CPU count).
    ``progress`` shows the in-process checks, ``pages_progress`` (default: ``progress``'s
    kind) the notebook runs; ``on_pages(count)`` is called before those start. ``plan``:
    :func:`health_plan` of the same arguments, when the caller has built it already (the CLI
    lists its workspaces first). Raises :class:`~.plan.PlanError` when no workspace holds a
    connection.
    """
    folder = Path(output_dir).expanduser().resolve()
    plan = plan or health_plan(workspaces, refresh_webhooks=refresh_webhooks)
    threads = workers or default_threads(workspaces)
    summary = run_batch(plan, output_dir=folder, executor=InProcessHealthExecutor(threads),
                        progress=progress)
    failed = [r for r in summary.results if r.status in PAGE_STATUSES]
    if not failed or summary.interrupted:
        return summary
    if on_pages is not None:
        on_pages(len(failed))
    pages_plan = Plan(name=f"{plan.name}-pages", notebook=plan.notebook,
                      runs=[plan.runs[r.index] for r in failed])
    pages = run_batch(
        pages_plan, output_dir=folder / PAGES_FOLDER, executor="local",
        workers=page_workers or min(len(failed), os.cpu_count() or 1),
        progress=progress if pages_progress is None else pages_progress,
    )
    by_index = {r.index: _merged(r, page) for r, page in zip(failed, pages.results, strict=True)}
    summary.results = [by_index.get(r.index, r) for r in summary.results]
    summary.interrupted = summary.interrupted or pages.interrupted
    summary.finished = time.time()
    write_reports(summary)
    return summary


def health_plan(workspaces: Sequence[str | Path], *, refresh_webhooks: bool = False) -> Plan:
    """What :func:`run_health` checks: a run of notebook 11 per stored connection."""
    return plan_from_store(workspaces, name="health",
                           parameters={"refresh_webhooks": True} if refresh_webhooks else None)


def _merged(checked: RunResult, page: RunResult) -> RunResult:
    """What the summary keeps of a connection that failed in process, once its notebook ran."""
    if page.status not in _FINISHED:
        return dataclasses.replace(checked, output=page.output)
    merged = dataclasses.replace(page, index=checked.index, entry=checked.entry)
    if page.ok:  # passed in its notebook, a moment after failing: say so, fail nothing
        failure: dict[str, Any] = checked.failure or {}
        merged.records = {**page.records, "in-process check": {"warnings": [
            f"failed in process ({failure.get('error')}: {failure.get('message')}), then "
            "passed when notebook 11 ran: a transient failure (rate limit, network)?"]}}
    return merged
