"""The in-process executor: notebook 11's check run in threads of this process, no kernel.

``atlassian-playbook health`` hands this executor to :func:`~.runner.run_batch` with the same
plan ``batch --from-store`` runs (one run of ``11-health-check.ipynb`` per token-store entry),
so everything the runner guarantees holds unchanged: at most ``capacity`` checks in flight,
never two of one token-store entry at once (two refreshes of a rotating refresh token outside
a lock can revoke the whole grant), each result journaled as it finishes, the same
``summary.json`` and ``summary.html``. Only where a run executes differs: instead of a kernel
executing the notebook, a thread calls :func:`~atlassian_playbook.health.check_health`, the
function the notebook's step calls, and records its ``data`` as the notebook would
(``records["health"]``), so the report reads the same either way. The token store's
per-entry file lock still serialises refreshes across threads and processes on this machine.

A check costs its HTTP calls (about 20 ms against the embedded emulator) where a notebook run
costs a kernel's start and stop (about a second). What it lacks is the executed notebook a
person reads when something broke: the ``health`` command runs notebook 11 for the failed
connections afterwards (:mod:`atlassian_playbook.cli.health`).

Not in :data:`~.executors.EXECUTORS`: it runs the health check whatever notebook a plan
names, so ``batch PLAN --executor`` must not offer it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ..errors import PlaybookError
from ..redact import redact, redact_mapping
from .plan import RunSpec
from .results import RunResult, failure

__all__ = ["InProcessHealthExecutor", "DEFAULT_THREADS", "EMULATOR_THREADS", "check_run",
           "default_threads"]

# Checks in flight by default. Against Atlassian a check mostly waits on HTTP (tens to hundreds
# of milliseconds an answer), so threads overlap those waits; more may pay off there, within
# the app's rate limits. Against embedded emulators the checks are CPU in this one interpreter
# (the emulators serve from it too), where more threads only contend for the GIL.
DEFAULT_THREADS = 4
# Against embedded emulators only: one thread. Measured over 64 connections on 2 cores, 4
# threads took 46.8 ms a connection end to end and 1 thread 37.3 ms (benchmarks/health_fleet.py).
EMULATOR_THREADS = 1


def default_threads(workspaces: Sequence[str | Path]) -> int:
    """Threads for the checks when none were asked for: :data:`EMULATOR_THREADS` when every
    workspace runs on its embedded emulator (no credentials in its settings), else
    :data:`DEFAULT_THREADS`."""
    from .workspace import workspace_settings

    embedded = all(not workspace_settings(ws).has_credentials for ws in workspaces)
    return EMULATOR_THREADS if embedded else DEFAULT_THREADS


def _not_set(value: object) -> object:
    return None if value in ("", None) else value


def check_run(spec: RunSpec) -> RunResult:
    """Run the health check of ``spec``'s connection (``workspace``, ``account_id``,
    ``refresh_webhooks``, as notebook 11 takes them) in this thread. Never raises: an
    unhealthy connection, an unreadable workspace or a bug is the result's ``failure``."""
    from ..config import load_workspace_settings
    from ..health import check_health
    from ..target import connect

    parameters = spec.parameters
    result = RunResult(
        index=spec.index, run_id=spec.run_id, notebook=Path(spec.notebook).name,
        parameters=redact_mapping(parameters), status="failed", entry=spec.entry,
        worker=f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}",
    )
    result.started = time.time()
    try:
        workspace = parameters.get("workspace")
        if not isinstance(workspace, str) or not workspace:
            raise PlaybookError("The run names no workspace.",
                                "Give each run a `workspace` (the folder holding .env).")
        with connect(load_workspace_settings(workspace)) as target:
            report = check_health(target, account_id=_not_set(parameters.get("account_id")),
                                  refresh_webhooks=bool(parameters.get("refresh_webhooks")))
            kind = target.kind
        # What notebook 11 records (its session's target, then the step's data), as the
        # record travels: through JSON, secrets masked.
        result.records = json.loads(redact(json.dumps(
            {"target": kind, "health": report.data}, default=str)))
        if report.error is None:
            result.status = "ok"
        else:
            result.failure = failure(type(report.error).__name__, redact(report.error.message),
                                     redact(report.error.hint))
    except PlaybookError as error:
        result.failure = failure(type(error).__name__, redact(error.message), redact(error.hint))
    except Exception as error:  # a bug or the machine: still this connection's result
        first = redact(str(error)).splitlines()[0] if str(error) else ""
        result.failure = failure(type(error).__name__, first,
                                 "Run `atlassian-playbook --debug health` for the traceback, "
                                 "and report it if it is not your machine's.")
    result.finished = time.time()
    return result


class InProcessHealthExecutor:
    """An :class:`~.executors.Executor` whose runs are :func:`check_run` on a thread pool."""

    name = "in-process"
    logs = "the command's stderr"

    def __init__(self, workers: int | None = None) -> None:
        self.capacity = workers or DEFAULT_THREADS
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(self.capacity, thread_name_prefix="health")

    def submit(self, spec: RunSpec) -> Future[RunResult]:
        assert self._pool is not None, "start() first"
        return self._pool.submit(check_run, spec)

    def shutdown(self, *, abandon: bool = False) -> None:
        """Wait for the checks in flight, unless ``abandon`` (a second Ctrl-C): then return at
        once; a check already sending its refresh still finishes and saves the rotated token
        before the interpreter exits (the pool's threads are joined at exit)."""
        if self._pool is not None:
            self._pool.shutdown(wait=not abandon, cancel_futures=True)
