"""One run, as a worker process executes it: the function every executor ships.

:func:`execute_run` never raises: whatever happens (a failing cell, a timeout, a bad parameter)
comes back as a :class:`~.results.RunResult`, so an exception out of an executor always means
the worker itself was lost. :func:`warm_up` imports papermill and friends once per worker
process (without the IRI grammar nbformat never uses: :mod:`.._iri_grammar`); every later run
reuses them. A worker of the local pool runs one notebook at a time, so it also keeps a spare
kernel started ahead (:func:`worker_kernels`) for its next run.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .._files import atomic_write_text
from ..errors import PlaybookError
from ..kernels import SpareKernels
from ..redact import redact, redact_mapping, register_secret
from .plan import RunSpec
from .results import RunResult, failure
from .workspace import known_secrets

__all__ = ["execute_run", "warm_up", "worker_kernels", "WATCHDOG_GRACE"]

# The whole-run watchdog fires this long after --timeout, so that a single blocked cell is
# stopped first by papermill's own per-cell limit (a clean stop, with the cell's output).
WATCHDOG_GRACE = 2.0
_TIMEOUT_ERRORS = {"CellTimeoutError", "TimeoutError"}


def warm_up() -> int:
    """Import what a run needs, once per worker process; returns the process id."""
    from .. import _iri_grammar

    _iri_grammar.defer()
    import jupyter_client  # noqa: F401
    import nbclient  # noqa: F401
    import nbformat  # noqa: F401
    import papermill  # noqa: F401

    from .. import execute  # noqa: F401

    return os.getpid()


@functools.cache
def worker_kernels() -> SpareKernels:
    """This process's spare kernels, stopped when it exits (a pool worker's exit runs
    multiprocessing's finalizers, not ``atexit``; a main process, the reverse)."""
    from multiprocessing import util

    kernels = SpareKernels()
    atexit.register(kernels.close)
    util.Finalize(kernels, kernels.close, exitpriority=10)
    return kernels


class _Watchdog:
    """Stops a run that outlives its timeout by killing the kernel it runs in.

    Only safe where this process runs one notebook at a time (the local pool): the kernel is
    then the one ``kernels`` has in use, or without them the one child process that was not
    there before the run (a spare started during the run is not the run's kernel).
    """

    def __init__(self, seconds: float, kernels: SpareKernels | None = None) -> None:
        import psutil

        self._process = psutil.Process()
        self._before = {child.pid for child in self._process.children(recursive=True)}
        self._kernels = kernels
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        if self._kernels is not None:
            self._kernels.kill_in_use()
            return
        for child in self._process.children(recursive=True):
            if child.pid not in self._before:
                try:
                    child.kill()
                except Exception:  # already gone
                    pass

    def stop(self) -> bool:
        self._timer.cancel()
        return self.fired


def execute_run(spec: RunSpec, *, watchdog: bool = True, ship_notebook: bool = False,
                spare_kernel: bool = False) -> RunResult:
    """Run ``spec`` through :func:`~atlassian_playbook.execute.run_notebook`.

    ``watchdog``: also enforce the timeout on the whole run (see :class:`_Watchdog`); without
    it, only papermill's per-cell limit applies. ``ship_notebook``: execute into a temporary
    folder and return the executed notebook's text in the result (for workers that cannot write
    the batch folder). ``spare_kernel``: take the kernel from :func:`worker_kernels` and start
    the next run's during this one (only where this process runs one notebook at a time).
    """
    from ..execute import run_notebook

    workspace = spec.parameters.get("workspace")
    result = RunResult(
        index=spec.index, run_id=spec.run_id, notebook=Path(spec.notebook).name,
        parameters=redact_mapping(spec.parameters), status="failed", entry=spec.entry,
        output=spec.output_path, worker=f"{socket.gethostname()}:{os.getpid()}",
    )
    scratch = Path(tempfile.mkdtemp(prefix="playbook-run-")) if ship_notebook else None
    output = scratch / Path(spec.output_path).name if scratch else Path(spec.output_path)
    result.started = time.time()
    guard = None
    try:
        before = known_secrets(workspace)
        kernels = worker_kernels() if spare_kernel else None
        if watchdog and spec.timeout:
            guard = _Watchdog(spec.timeout + WATCHDOG_GRACE, kernels)
        try:
            # A kernel the watchdog killed while it started must stay dead: the run is over.
            outcome = run_notebook(spec.notebook, output, spec.parameters,
                                   timeout=spec.timeout, known_secrets=before,
                                   may_restart=lambda: not (guard and guard.fired),
                                   kernels=kernels)
        finally:
            fired = guard.stop() if guard else False
        result.finished = time.time()
        result.kernel_restarts = outcome.kernel_restarts
        # Tokens rotated during the run were unknown to the scrub inside run_notebook.
        records = _scrub_again(output, known_secrets(workspace) - before)
        result.records = outcome.records if records is None else records
        stopped = outcome.failure
        if stopped is None:
            result.status = "ok"
        elif fired or stopped.ename in _TIMEOUT_ERRORS:
            result.status = "timeout"
            cell, count, source = _running_cell(output)
            if stopped.cell_index is not None:
                cell = stopped.cell_index
            result.failure = failure(
                stopped.ename, redact(stopped.evalue.splitlines()[0] if stopped.evalue else ""),
                f"The run took longer than its timeout ({spec.timeout:g} s)"
                + (f" in cell {cell}" if cell is not None else "")
                + ". Raise --timeout, or look at what that cell waits for.",
                cell=cell, execution_count=count, source=source,
            )
        else:
            result.failure = stopped.to_dict()
        if scratch is not None and output.exists():
            result.notebook_text = output.read_text(encoding="utf-8")
    except PlaybookError as error:
        result.finished = result.finished or time.time()
        result.failure = failure(type(error).__name__, redact(error.message), redact(error.hint))
    except Exception as error:  # a bug or an environment problem: still this run's result
        result.finished = result.finished or time.time()
        result.failure = failure(type(error).__name__,
                                 redact(str(error)).splitlines()[0] if str(error) else "",
                                 "See the worker log in the batch folder.")
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return result


def _scrub_again(output: Path, new_secrets: set[str]) -> dict[str, Any] | None:
    """Mask ``new_secrets`` in the executed notebook; return its records if it changed."""
    if not new_secrets or not output.exists():
        return None
    for secret in new_secrets:
        register_secret(secret)
    text = output.read_text(encoding="utf-8")
    scrubbed = redact(text, shapes=False)
    if scrubbed == text:
        return None
    atomic_write_text(output, scrubbed, mode=0o644)
    from ..records import read_records

    return read_records(json.loads(scrubbed))


def _running_cell(output: Path) -> tuple[int | None, int | None, str | None]:
    """The cell a stopped run was in (index, ``In [n]``, first line): papermill marks it
    running, or it holds the error the interrupt left, or (when the kernel went before that
    error reached us, as on a busy machine) it is the last cell papermill started."""
    try:
        cells = json.loads(output.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return None, None, None
    found = next((i for i, c in enumerate(cells)
                  if c.get("metadata", {}).get("papermill", {}).get("status") == "running"), None)
    if found is None:
        found = next((i for i in range(len(cells) - 1, -1, -1)
                      if any(o.get("output_type") == "error"
                             for o in cells[i].get("outputs", []))), None)
    if found is None:
        found = next((i for i in range(len(cells) - 1, -1, -1)
                      if cells[i].get("metadata", {}).get("papermill", {}).get("start_time")),
                     None)
    if found is None:
        return None, None, None
    cell = cells[found]
    source = cell.get("source") or ""
    source = "".join(source) if isinstance(source, list) else source
    first = source.strip().splitlines()[0] if source.strip() else None
    return found, cell.get("execution_count"), redact(first) if first else None
