"""The reporter: a batch's summary as JSON (for machines) and an HTML page (for people).

Per run: parameters, status, duration, the failing cell with its error and hint, the values the
notebook recorded, and a link to the executed notebook. Everything passes through
:func:`~atlassian_playbook.redact.redact` on the way out.
"""

from __future__ import annotations

import html
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._files import atomic_write_text
from ..redact import redact
from .results import STATUSES, RunResult, where

__all__ = ["BatchSummary", "write_reports"]


@dataclass
class BatchSummary:
    name: str
    notebook: str
    executor: str
    workers: int
    folder: Path
    started: float
    finished: float
    results: list[RunResult] = field(default_factory=list)
    interrupted: bool = False
    startup_seconds: float = 0.0  # starting the executor (worker processes, cluster client)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(r.status for r in self.results))

    @property
    def kernel_restarts(self) -> int:
        """Kernels that died before their first reply and were started again, in all runs."""
        return sum(r.kernel_restarts for r in self.results)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results if not r.ok]

    @property
    def exit_code(self) -> int:
        """0 when every run succeeded, 130 when stopped by Ctrl-C, otherwise 1."""
        if self.interrupted:
            return 130
        return 0 if self.ok else 1

    @property
    def json_path(self) -> Path:
        return self.folder / "summary.json"

    @property
    def html_path(self) -> Path:
        return self.folder / "summary.html"

    @property
    def warnings(self) -> list[dict[str, Any]]:
        """What runs flagged without failing (a record's ``warnings``, e.g. the health check's
        webhooks that expire within a week), by run."""
        return [{"run": r.index, "record": name, "warning": text}
                for r in self.results for name, record in (r.records or {}).items()
                if isinstance(record, dict) for text in record.get("warnings") or ()]

    def to_dict(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "notebook": self.notebook,
            "executor": self.executor,
            "workers": self.workers,
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "wall_seconds": round(self.finished - self.started, 3),
            "startup_seconds": round(self.startup_seconds, 3),
            "interrupted": self.interrupted,
            "ok": self.ok,
            "counts": self.counts,
            "kernel_restarts": self.kernel_restarts,
            "warnings": self.warnings,
            "runs": [r.to_json() for r in self.results],
        }
        return json.loads(redact(json.dumps(data, default=str)))

    def to_text(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))
        lines = [f"batch {self.name}: {len(self.results)} runs ({counts}) in "
                 f"{self.finished - self.started:.1f} s with {self.workers} {self.executor} "
                 f"worker(s)"]
        if self.kernel_restarts:
            lines.append(f"  {_restarts(self.kernel_restarts)}: a kernel that dies before its "
                         "first reply is started again, once")
        not_run = [r for r in self.failed if r.status == "cancelled" and not r.failure]
        if not_run:
            lines.append(f"  {len(not_run)} run(s) not started (stopped); "
                         "run again with --resume to do them")
        for result in self.failed:
            if result in not_run:
                continue
            failure = result.failure or {}
            cell = f" at {where(failure)}" if where(failure) else ""
            lines.append(f"  {result.status}: run {result.index}{cell}: "
                         f"{failure.get('message') or ''}"
                         + (f"  hint: {failure['hint']}" if failure.get("hint") else ""))
        lines += [f"  warning: run {w['run']}: {w['warning']}" for w in self.warnings]
        lines.append(f"summary: {self.json_path} and {self.html_path}")
        return redact("\n".join(lines))


def _restarts(count: int) -> str:
    return f"{count} kernel restart{'' if count == 1 else 's'}"


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def write_reports(summary: BatchSummary) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``summary.html`` into the batch folder."""
    data = summary.to_dict()
    atomic_write_text(summary.json_path, json.dumps(data, indent=2, ensure_ascii=False) + "\n",
                      mode=0o644)
    atomic_write_text(summary.html_path, _html(summary, data), mode=0o644)
    return summary.json_path, summary.html_path


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;line-height:1.4;color:#172b4d}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #dfe1e6;padding:.35em .5em;
vertical-align:top;text-align:left;font-size:.92em}th{background:#f4f5f7}
.ok{color:#006644;font-weight:600}.failed,.timeout,.lost{color:#bf2600;font-weight:600}
.cancelled{color:#6b778c;font-weight:600}code,pre{font-size:.88em}pre{margin:0;white-space:pre-wrap}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:600}
"""


def _e(value: Any) -> str:
    return html.escape(redact("" if value is None else str(value)))


def _html(summary: BatchSummary, data: dict[str, Any]) -> str:
    head = (
        f"<dl><dt>notebook</dt><dd><code>{_e(data['notebook'])}</code></dd>"
        f"<dt>executor</dt><dd>{_e(data['executor'])}, {data['workers']} worker(s)</dd>"
        f"<dt>started</dt><dd>{_e(data['started'])}</dd>"
        f"<dt>wall time</dt><dd>{data['wall_seconds']:.1f} s</dd>"
        f"<dt>runs</dt><dd>"
        + ", ".join(f"<span class='{_e(s)}'>{n} {_e(s)}</span>"
                    for s, n in sorted(data["counts"].items()))
        + (" — <b>interrupted</b>" if data["interrupted"] else "") + "</dd>"
        f"<dt>kernel restarts</dt><dd>{data['kernel_restarts']} (kernels that died before "
        "their first reply and were started again)</dd></dl>"
    )
    if data["warnings"]:
        head += ("<h2>Warnings</h2><ul>" + "".join(
            f"<li>run {w['run']}: {_e(w['warning'])}</li>" for w in data["warnings"]) + "</ul>")
    rows = []
    for run in data["runs"]:
        failure = run.get("failure") or {}
        params = "<br>".join(f"<code>{_e(k)}</code> = {_e(v)}"
                             for k, v in run["parameters"].items())
        records = run.get("records") or {}
        recorded = (
            f"<details><summary>{_e(', '.join(records))}</summary><pre>"
            f"{_e(json.dumps(records, indent=2, ensure_ascii=False))}</pre></details>"
            if records else ""
        )
        output = run.get("output")
        link = ""
        if output and Path(output).exists():
            rel = os.path.relpath(output, summary.folder)
            link = f"<a href='{html.escape(rel)}'>{_e(Path(output).name)}</a>"
        duration = "" if run.get("duration") is None else f"{run['duration']:.1f} s"
        notes = " (earlier batch)" if run.get("resumed") else ""
        if run.get("kernel_restarts"):
            notes += f" ({_restarts(run['kernel_restarts'])})"
        rows.append(
            f"<tr><td>{run['index']}</td><td class='{_e(run['status'])}'>{_e(run['status'])}"
            f"{notes}</td><td>{params}</td><td>{duration}</td>"
            f"<td>{_e(where(failure))}</td>"
            f"<td>{_e(failure.get('error'))} {_e(failure.get('message'))}</td>"
            f"<td>{_e(failure.get('hint'))}</td><td>{recorded}</td><td>{link}</td></tr>"
        )
    legend = "".join(f"<dt class='{_e(s)}'>{_e(s)}</dt><dd>{_e(m)}</dd>"
                     for s, m in STATUSES.items())
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Batch {_e(data['name'])}</title><style>{_CSS}</style></head><body>"
        f"<h1>Batch <code>{_e(data['name'])}</code></h1>{head}"
        "<table><thead><tr><th>#</th><th>status</th><th>parameters</th><th>time</th>"
        "<th>failing cell</th><th>error</th><th>hint</th><th>recorded</th>"
        "<th>executed notebook</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        f"<h2>Statuses</h2><dl>{legend}</dl></body></html>\n"
    )
