"""Parameterized batch runs of a notebook: many parameter sets, in parallel, with reports.

The seams follow papermill's: a **plan** (:mod:`.plan`, what to run), an **executor**
(:mod:`.executors`: a local process pool or a Dask cluster, behind one interface), a
**recorder** (:mod:`.results`, a JSONL journal written as runs finish) and a **reporter**
(:mod:`.report`, JSON and HTML). :func:`run_batch` (:mod:`.runner`) ties them together::

    from atlassian_playbook.batch import run_batch
    summary = run_batch("examples/batch-plan.yaml", workers=2, progress="notebook")
    summary.counts        # {"ok": 15, "failed": 1}

A plan is checked whole before anything runs or is written (no secret at any depth, its
notebook in its folder or notebooks/, at most ``max_runs`` runs): see :mod:`.plan`.

Importing this package imports neither papermill nor Dask: workers import papermill, and
Dask only when the ``dask`` executor is chosen.
"""

from __future__ import annotations

from .plan import (
    DEFAULT_MAX_RUNS,
    HEALTH_CHECK_NOTEBOOK,
    Plan,
    PlanError,
    RunSpec,
    load_plan,
    plan_from_store,
)
from .report import BatchSummary
from .results import STATUSES, RunResult
from .runner import DEFAULT_TIMEOUT, run_batch

__all__ = [
    "run_batch",
    "load_plan",
    "plan_from_store",
    "Plan",
    "PlanError",
    "RunSpec",
    "RunResult",
    "BatchSummary",
    "STATUSES",
    "HEALTH_CHECK_NOTEBOOK",
    "DEFAULT_TIMEOUT",
    "DEFAULT_MAX_RUNS",
]
