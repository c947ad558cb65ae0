"""``run_batch``: a plan's runs on an executor, recorded as they finish, then reported.

The runner is the only place that decides what runs when:

* at most ``executor.capacity`` runs are in flight;
* never two runs of one token-store entry at once (a run's entry is derived from its
  ``workspace`` and ``account_id``; see :mod:`.workspace`): the next run of an entry is
  submitted only after the previous one's result came back;
* a failing run does not stop the others; each result is appended to ``results.jsonl`` at
  once;
* stopping (Ctrl-C, or ``cancel.set()`` from Python) submits nothing more and waits for the
  runs in flight, because killing a run mid-refresh could lose a rotated refresh token; a
  second Ctrl-C abandons them. What finished is kept, the rest is reported ``cancelled``, and
  ``--resume`` picks up from there.

Once runs are going, Ctrl-C reaches the loop as a count, not as ``KeyboardInterrupt``: an
exception raised wherever the signal lands could cut a result's recording short (journaled but
missing from the summary, or a finished run reported ``cancelled``).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any

from .._files import atomic_write_text
from ..redact import redact, redact_mapping
from .executors import Executor, create_executor
from .plan import (
    DEFAULT_MAX_RUNS,
    Plan,
    PlanError,
    RunSpec,
    check_max_runs,
    load_plan,
    positive_seconds,
)
from .progress import Progress, create_progress
from .report import BatchSummary, write_reports
from .results import Journal, RunResult, failure

__all__ = ["run_batch", "DEFAULT_TIMEOUT", "default_output_dir"]

DEFAULT_TIMEOUT = 600.0
_POLL = 0.5  # seconds between checks of `cancel` while waiting for results


def default_output_dir(plan: Plan) -> Path:
    return Path("output") / "batch" / plan.name


def run_batch(
    plan: Plan | str | Path,
    *,
    output_dir: str | Path | None = None,
    workers: int | None = None,
    timeout: float | None = None,
    executor: str | Executor = "local",
    scheduler: str | None = None,
    client: Any = None,
    resume: bool = False,
    progress: str | Progress = "auto",
    cancel: threading.Event | None = None,
    on_result: Callable[[RunResult], object] | None = None,
    max_runs: int = DEFAULT_MAX_RUNS,
) -> BatchSummary:
    """Run every run of ``plan`` and write ``summary.json`` and ``summary.html``.

    ``executor``: ``local`` (a process pool of ``workers``, default the CPU count) or ``dask``
    (``scheduler`` address or a ``distributed.Client`` as ``client``; ``workers`` caps the
    runs in flight). ``timeout``: seconds per run (default: the plan's, else 600).
    ``progress``: ``auto`` (a live summary in a notebook, a bar on a terminal), ``bar``,
    ``notebook`` or ``none``. ``on_result(result)`` is called as each run finishes.
    ``max_runs``: refuse a plan of more runs than this, before anything starts.

    Everything is checked before the batch folder is touched: ``workers`` and ``timeout``
    positive, the plan (no secret, its notebook where it belongs, at most ``max_runs`` runs).
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise PlanError(f"workers (--workers) must be a positive whole number, not {workers!r}.",
                        "Give 1 or more, or leave it out for the CPU count.")
    if timeout is not None:
        timeout = positive_seconds(timeout, "timeout (--timeout)")
    plan = plan if isinstance(plan, Plan) else load_plan(plan, max_runs=max_runs)
    check_max_runs(len(plan.runs), max_runs)
    folder = Path(output_dir or default_output_dir(plan)).resolve()
    specs = plan.specs(folder, timeout=timeout)
    specs = [s if s.timeout else _with_timeout(s, DEFAULT_TIMEOUT) for s in specs]
    # Built (options checked, e.g. a Dask address) before the folder and its journal are.
    runner = executor if not isinstance(executor, str) else create_executor(
        executor, workers=workers, scheduler=scheduler, client=client, log_dir=folder)
    folder.mkdir(parents=True, exist_ok=True)
    journal = Journal(folder / "results.jsonl", resume=resume)

    results: dict[int, RunResult] = {}
    todo: list[RunSpec] = []
    for spec in specs:
        earlier = journal.succeeded(spec.run_id) if resume else None
        if earlier is not None:
            earlier.index, earlier.resumed = spec.index, True
            results[spec.index] = earlier
        else:
            todo.append(spec)

    display = create_progress(progress)
    started = time.time()
    display.start(len(specs), list(results.values()))
    state = _Loop(runner, display, journal, results, cancel, on_result)
    startup = 0.0
    try:
        if todo:
            try:
                runner.start()
            except KeyboardInterrupt:  # during start() (a connection may hang): nothing ran
                state.interrupted = True
            else:
                startup = time.time() - started
                with _Interrupts() as interrupts:
                    state.run(todo, interrupts)
    finally:
        runner.shutdown(abandon=state.abandon)
        display.close()
    for spec in state.unfinished(todo):
        results[spec.index] = _not_run(spec, state.abandoned.get(spec.index, False))
    summary = BatchSummary(
        name=plan.name, notebook=plan.notebook.name, executor=runner.name,
        workers=runner.capacity, folder=folder, started=started, finished=time.time(),
        results=[results[i] for i in sorted(results)],
        interrupted=state.interrupted or bool(cancel is not None and cancel.is_set()),
        startup_seconds=startup,
    )
    write_reports(summary)
    return summary


class _Interrupts:
    """Counts Ctrl-C (SIGINT) while a batch runs, instead of raising ``KeyboardInterrupt``.

    Only the main thread can set a signal handler; run elsewhere, SIGINT interrupts the main
    thread as usual and never this loop. A SIGINT that was ignored stays ignored.
    """

    def __init__(self) -> None:
        self.count = 0
        self._previous: Any = None

    def _count(self, signum: int, frame: object) -> None:
        self.count += 1

    def __enter__(self) -> _Interrupts:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
            self._previous = signal.signal(signal.SIGINT, self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class _Loop:
    """The scheduling loop, with its state kept for the report when it is cut short."""

    def __init__(self, runner: Executor, display: Progress, journal: Journal,
                 results: dict[int, RunResult], cancel: threading.Event | None,
                 on_result: Callable[[RunResult], object] | None) -> None:
        self.runner, self.display, self.journal = runner, display, journal
        self.results, self.cancel, self.on_result = results, cancel, on_result
        self.in_flight: dict[Future[RunResult], RunSpec] = {}
        self.busy: set[str] = set()
        self.stopping = self.interrupted = self.abandon = False
        self.abandoned: dict[int, bool] = {}

    def run(self, todo: list[RunSpec], interrupts: _Interrupts) -> None:
        pending = list(todo)
        seen = 0
        while True:
            while seen < interrupts.count:  # each Ctrl-C since the last look
                seen += 1
                if self.stopping:
                    self.abandon = True
                    self.abandoned = {spec.index: True for spec in self.in_flight.values()}
                    self.display.message("abandoning the runs in flight")
                    return
                self.interrupted = True
                self._stop("interrupted")
            if not self.stopping and self.cancel is not None and self.cancel.is_set():
                self._stop("stopping")
            if not self.stopping:
                self._fill(pending)
            if not self.in_flight:
                return
            done, _ = wait(self.in_flight, timeout=_POLL, return_when=FIRST_COMPLETED)
            for future in done:
                self._finish(future)

    def _stop(self, why: str) -> None:
        self.stopping = True
        if self.in_flight:
            self.display.message(
                f"{why}: waiting for {len(self.in_flight)} running run(s) to finish "
                "(Ctrl-C again to abandon them); nothing new starts")

    def _fill(self, pending: list[RunSpec]) -> None:
        index = 0
        while len(self.in_flight) < self.runner.capacity and index < len(pending):
            spec = pending[index]
            if spec.entry is not None and spec.entry in self.busy:
                index += 1  # this entry's previous run is still going
                continue
            pending.pop(index)
            self.in_flight[self.runner.submit(spec)] = spec
            if spec.entry is not None:
                self.busy.add(spec.entry)

    def _finish(self, future: Future[RunResult]) -> None:
        spec = self.in_flight.pop(future)
        self.busy.discard(spec.entry)
        try:
            result = future.result()
        except BaseException as error:  # the worker was lost, or the task was cancelled
            result = _lost(spec, error, self.runner.logs)
        if result.notebook_text is not None:
            atomic_write_text(spec.output_path, result.notebook_text, mode=0o644)
            result.notebook_text = None
        result.parameters = redact_mapping(spec.parameters)
        self.journal.append(result)
        self.results[spec.index] = result
        self.display.update(result)
        if self.on_result is not None:
            self.on_result(result)

    def unfinished(self, todo: list[RunSpec]) -> list[RunSpec]:
        return [spec for spec in todo if spec.index not in self.results]


def _with_timeout(spec: RunSpec, timeout: float) -> RunSpec:
    from dataclasses import replace

    return replace(spec, timeout=timeout)


def _base(spec: RunSpec, status: str, failure: dict[str, Any] | None) -> RunResult:
    return RunResult(index=spec.index, run_id=spec.run_id, notebook=Path(spec.notebook).name,
                     parameters=redact_mapping(spec.parameters), status=status,
                     entry=spec.entry, failure=failure)


def _lost(spec: RunSpec, error: BaseException, logs: str) -> RunResult:
    return _base(spec, "lost", failure(
        type(error).__name__,
        redact(str(error)).splitlines()[0] if str(error) else "worker lost",
        f"The worker died during the run (see {logs}). It may have refreshed the token "
        "first: check the entry, then rerun with --resume.",
    ))


def _not_run(spec: RunSpec, abandoned: bool) -> RunResult:
    if abandoned:
        return _base(spec, "cancelled", failure(
            "Abandoned", "Stopped by a second Ctrl-C while it was running.",
            "It may have refreshed the token: check the entry, then rerun with --resume.",
        ))
    return _base(spec, "cancelled", None)
