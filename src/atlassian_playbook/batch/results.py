"""The recorder: what each run produced, appended to a JSONL journal as it finishes.

The journal (``results.jsonl`` in the batch folder) is written one line per finished run and
flushed at once, so a Ctrl-C, a crash or a killed runner loses nothing that finished.
``--resume`` reads it back: a run whose id already succeeded is not run again.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..redact import redact

__all__ = ["RunResult", "Journal", "STATUSES", "failure", "where"]

# Every status a run can end with, and what it means (the HTML report's legend).
STATUSES: dict[str, str] = {
    "ok": "ran to the end",
    "failed": "a cell raised; see the failing cell and its hint",
    "timeout": "stopped after the per-run timeout",
    "lost": "the worker died during the run; not retried, since it may have refreshed tokens",
    "cancelled": "not run (the batch was stopped)",
}


def failure(error: str, message: str, hint: str | None, *, cell: int | None = None,
            execution_count: int | None = None, source: str | None = None) -> dict[str, Any]:
    """A run's failure, shaped like :meth:`~atlassian_playbook.execute.RunFailure.to_dict`."""
    return {"cell": cell, "error": error, "message": message, "hint": hint,
            "execution_count": execution_count, "source": source}


def where(failure: dict[str, Any] | None) -> str:
    """``cell 4 (In [3]: pb.health_check(...))``: where a person finds the failure."""
    failure = failure or {}
    if failure.get("cell") is None:
        return ""
    text = f"cell {failure['cell']}"
    if failure.get("execution_count") is not None or failure.get("source"):
        count = failure.get("execution_count")
        text += f" (In [{'' if count is None else count}]: {failure.get('source') or ''})"
    return text


@dataclass
class RunResult:
    """One run's outcome. ``parameters`` and every text are redacted; no secret is kept."""

    index: int
    run_id: str
    notebook: str
    parameters: dict[str, Any]
    status: str
    entry: str | None = None
    started: float | None = None
    finished: float | None = None
    failure: dict[str, Any] | None = None  # cell, error, message, hint
    records: dict[str, Any] = field(default_factory=dict)
    output: str | None = None
    worker: str | None = None
    resumed: bool = False
    # Kernels that died before their first reply and were started again (a start race).
    kernel_restarts: int = 0
    # The executed notebook, when the worker cannot write the batch folder (Dask); the runner
    # writes it and drops it. Never journaled.
    notebook_text: str | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def duration(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return round(self.finished - self.started, 3)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("notebook_text")
        data["duration"] = self.duration
        return json.loads(redact(json.dumps(data, default=str)))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResult:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class Journal:
    """``results.jsonl``: one line per finished run; the last line of a run id wins."""

    def __init__(self, path: str | Path, *, resume: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.previous: dict[str, RunResult] = self._read() if resume else {}
        if not resume:
            self.path.write_text("", encoding="utf-8")

    def _read(self) -> dict[str, RunResult]:
        found: dict[str, RunResult] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return found
        for line in lines:
            try:
                result = RunResult.from_json(json.loads(line))
            except (ValueError, TypeError):
                continue  # a line cut short by a crash: that run simply runs again
            found[result.run_id] = result
        return found

    def succeeded(self, run_id: str) -> RunResult | None:
        """The earlier successful result of ``run_id``, if ``--resume`` may skip it."""
        result = self.previous.get(run_id)
        return result if result is not None and result.ok else None

    def append(self, result: RunResult) -> None:
        line = json.dumps(result.to_json(), sort_keys=True, ensure_ascii=False)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
