"""`health --from-store` vs `batch --from-store` over the same fleet (issue 13, item 3).

    PYTHONPATH=src .venv/bin/python benchmarks/health_fleet.py [--connections 64] [--repeat 1]
        [--batch-workers 2] [--health-workers 0 1] [--json FILE]

Seeds ``connections`` emulator workspaces (one headless login each: the emulator has one user,
so each workspace, with its own emulated world and token store, is one connection), then in
each round runs, each in a fresh CLI process as a user runs it, ``batch --from-store`` (one
kernel per connection) and ``health --from-store`` (the same check in threads, no kernel) over
the same workspaces (``health`` once per ``--health-workers`` count, 0 meaning its default).
Every connection is healthy, so ``health`` runs no notebook.

It prints, per command, the process wall and the summary's wall (after the executor started)
per connection, and their ratio within each round: the issue's goal is ``health`` at least 30
times faster per connection. The figures are written as JSON too (default
``output/benchmarks/health_fleet.json``). Ratios within one run are what to compare; absolute
times depend on the machine. Not a timed test.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 30.0  # health at least this many times faster per connection (issue 13)


def machine() -> dict:
    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "system": f"{platform.system()} {platform.machine()}",
            "load": os.getloadavg()[0], "date": datetime.date.today().isoformat()}


def seed(root: Path, count: int) -> tuple[list[Path], float]:
    from atlassian_playbook.batch.workspace import seed_emulator_workspace

    started = time.perf_counter()
    workspaces = [root / f"customer-{i:02d}" for i in range(count)]
    for workspace in workspaces:
        seed_emulator_workspace(workspace)
    return workspaces, time.perf_counter() - started


def command(args: list[str], workspaces: list[Path], out: Path) -> dict:
    """One CLI process; its wall and its summary's figures."""
    where = [arg for ws in workspaces for arg in ("--workspace", str(ws))]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "atlassian_playbook", *args, "--from-store",
                           *where, "--json", "--output", str(out)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    assert summary["ok"] and summary["counts"] == {"ok": len(workspaces)}, summary["counts"]
    durations = [r["duration"] for r in summary["runs"]]
    return {"process_wall": wall, "summary_wall": summary["wall_seconds"],
            "startup": summary["startup_seconds"],
            "after_start": summary["wall_seconds"] - summary["startup_seconds"],
            "mean_run": statistics.mean(durations), "workers": summary["workers"],
            "executor": summary["executor"],
            "notebooks": len(list(out.rglob("*.ipynb")))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1, help="rounds; medians are printed")
    parser.add_argument("--batch-workers", type=int, default=os.cpu_count() or 1,
                        help="batch's worker processes (default: the CPU count, batch's own)")
    parser.add_argument("--health-workers", type=int, nargs="+", default=[0, 1],
                        help="health's threads, a row each; 0: health's default (default: 0 1)")
    parser.add_argument("--json", type=Path, default=Path("output/benchmarks/health_fleet.json"),
                        help="where to write the figures")
    args = parser.parse_args(argv)
    for name in [n for n in os.environ if n.startswith("ATLASSIAN_")]:
        del os.environ[name]  # the emulator only, whatever the shell says

    root = Path(tempfile.mkdtemp(prefix="playbook-fleet-"))
    workspaces, seeding = seed(root, args.connections)
    n = len(workspaces)
    print(f"seeded {n} workspaces (one emulator login each) in {seeding:.1f} s")
    rows = {"batch": ["batch", "--workers", str(args.batch_workers), "--progress", "none"]}
    for threads in args.health_workers:
        rows[f"health-{threads or 'default'}"] = (["health", "--progress", "none"]
                                                  + (["--workers", str(threads)] if threads
                                                     else []))
    rounds = []
    for index in range(max(1, args.repeat)):  # interleaved: a slow spell hits every row
        done = {label: command(cli, workspaces, root / f"{label}-{index}")
                for label, cli in rows.items()}
        for label in rows:
            done[label]["ratio_process"] = done["batch"]["process_wall"] / done[label][
                "process_wall"]
            done[label]["ratio_after_start"] = done["batch"]["after_start"] / done[label][
                "after_start"]
        rounds.append(done)
    keys = ("process_wall", "summary_wall", "startup", "after_start", "mean_run",
            "ratio_process", "ratio_after_start")
    median = {label: {key: statistics.median(r[label][key] for r in rounds) for key in keys}
              for label in rows}
    print(f"{n} healthy connections, one CLI process per command, median of {len(rounds)} "
          "round(s); ratio: batch's time per connection over the row's, same round:")
    print(f"  {'command':<22} {'workers':<14} {'process':>9}  {'per conn.':>9}  {'ratio':>5}"
          f"  {'after start':>11}  {'per conn.':>9}  {'ratio':>5}  {'mean run':>8}  notebooks")
    for label, cli in rows.items():
        m, last = median[label], rounds[-1][label]
        shown = f"{cli[0]} --from-store"
        print(f"  {shown:<22} {last['workers']:>3} {last['executor'][:10]:<10}"
              f" {m['process_wall']:>7.2f} s  {m['process_wall'] / n * 1000:>6.1f} ms"
              f"  {m['ratio_process']:>4.1f}x  {m['after_start']:>9.2f} s"
              f"  {m['after_start'] / n * 1000:>6.1f} ms  {m['ratio_after_start']:>4.1f}x"
              f"  {m['mean_run'] * 1000:>5.0f} ms  {last['notebooks']:>9}")
    default = next(label for label in rows if label.startswith("health-"))
    ratio = median[default]["ratio_process"]
    verdict = "met" if ratio >= GOAL else "NOT met"
    print(f"  goal: health at least {GOAL:g}x faster per connection end to end; "
          f"{default}: {ratio:.1f}x ({verdict})")
    for label in rows:
        if label != "batch":
            print(f"  {label} end-to-end ratio, each round: "
                  + " / ".join(f"{r[label]['ratio_process']:.1f}x" for r in rounds))
    result = {"machine": machine(), "connections": n, "seeding_seconds": seeding,
              "commands": rows, "rounds": rounds, "median": median,
              "ratio_per_connection": ratio, "goal": GOAL, "goal_met": ratio >= GOAL}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"  figures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
