"""Executors: where runs execute, behind one small interface (papermill's engines idea).

An executor takes one :class:`~.plan.RunSpec` at a time and hands back a
:class:`concurrent.futures.Future` of its :class:`~.results.RunResult`. The runner decides what
to submit and when (at most ``capacity`` at once, never two runs of one token-store entry), so
an executor only has to run things and say when they are done. A future that raises means the
worker was lost, not that the notebook failed.

Executors are found by name in :data:`EXECUTORS`; each module is imported only when chosen, so
the default install never imports Dask.
"""

from __future__ import annotations

import importlib
from concurrent.futures import Future
from typing import Any, Protocol

from .plan import PlanError, RunSpec
from .results import RunResult

__all__ = ["Executor", "EXECUTORS", "create_executor"]


class Executor(Protocol):
    name: str
    #: How many runs may be in flight at once.
    capacity: int
    #: Where to look when a worker misbehaves (a log file or a dashboard URL), for messages.
    logs: str

    def start(self) -> None:
        """Get ready (start processes, connect); may take seconds."""

    def submit(self, spec: RunSpec) -> Future[RunResult]:
        """Start ``spec`` (or queue it); the future resolves when the run has finished."""

    def shutdown(self, *, abandon: bool = False) -> None:
        """Release everything. ``abandon``: do not wait for runs still going."""


# name -> "module:factory", imported on use
EXECUTORS: dict[str, str] = {
    "local": "atlassian_playbook.batch.local_pool:LocalPoolExecutor",
    "dask": "atlassian_playbook.batch.dask_cluster:DaskExecutor",
}


def create_executor(name: str, **options: Any) -> Executor:
    """The executor registered as ``name``, built with ``options``."""
    try:
        target = EXECUTORS[name]
    except KeyError:
        raise PlanError(f"Unknown executor {name!r}.",
                        f"Choose one of: {', '.join(EXECUTORS)}.") from None
    module_name, _, factory = target.partition(":")
    return getattr(importlib.import_module(module_name), factory)(**options)
