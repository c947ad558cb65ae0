"""`health --from-store` vs `batch --from-store` over the same fleet (issue 13, item 3).

    PYTHONPATH=src .venv/bin/python benchmarks/health_fleet.py [--connections 64] [--repeat 1]
        [--batch-workers 2] [--health-workers 8] [--json FILE]

Seeds ``connections`` emulator workspaces (one headless login each: the emulator has one user,
so each workspace, with its own emulated world and token store, is one connection), then in
each round runs, each in a fresh CLI process as a user runs it, ``batch --from-store`` (one
kernel per connection) and ``health --from-store`` (the same check in threads, no kernel) over
the same workspaces. Every connection is healthy, so ``health`` runs no notebook.

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
    parser.add_argument("--health-workers", type=int, default=None,
                        help="health's threads (default: its own, 8)")
    parser.add_argument("--json", type=Path, default=Path("output/benchmarks/health_fleet.json"),
                        help="where to write the figures")
    args = parser.parse_args(argv)
    for name in [n for n in os.environ if n.startswith("ATLASSIAN_")]:
        del os.environ[name]  # the emulator only, whatever the shell says

    root = Path(tempfile.mkdtemp(prefix="playbook-fleet-"))
    workspaces, seeding = seed(root, args.connections)
    n = len(workspaces)
    print(f"seeded {n} workspaces (one emulator login each) in {seeding:.1f} s")
    batch_args = ["batch", "--workers", str(args.batch_workers), "--progress", "none"]
    health_args = ["health", "--progress", "none"]
    if args.health_workers:
        health_args += ["--workers", str(args.health_workers)]
    rounds = []
    for index in range(max(1, args.repeat)):
        batch = command(batch_args, workspaces, root / f"batch-{index}")
        health = command(health_args, workspaces, root / f"health-{index}")
        rounds.append({"batch": batch, "health": health,
                       "ratio_process": batch["process_wall"] / health["process_wall"],
                       "ratio_after_start": batch["after_start"] / health["after_start"]})
    median = {kind: {key: statistics.median(r[kind][key] for r in rounds)
                     for key in ("process_wall", "summary_wall", "startup", "after_start",
                                 "mean_run")} for kind in ("batch", "health")}
    ratio = statistics.median(r["ratio_process"] for r in rounds)
    ratio_after = statistics.median(r["ratio_after_start"] for r in rounds)
    print(f"{n} healthy connections, one CLI process per command, median of {len(rounds)} "
          "round(s):")
    print("  command                     workers  process wall  per connection  after start"
          "  per connection  mean check  notebooks")
    for kind, label in (("batch", "batch --from-store"), ("health", "health --from-store")):
        m, last = median[kind], rounds[-1][kind]
        print(f"  {label:<26} {last['workers']:>3} {last['executor'][:9]:<9}"
              f" {m['process_wall']:>8.2f} s  {m['process_wall'] / n * 1000:>10.1f} ms"
              f"  {m['after_start']:>8.2f} s  {m['after_start'] / n * 1000:>10.1f} ms"
              f"  {m['mean_run'] * 1000:>7.1f} ms  {last['notebooks']:>9}")
    verdict = "met" if ratio >= GOAL else "NOT met"
    print(f"  health vs batch per connection, same round: {ratio:.1f}x faster end to end "
          f"(goal {GOAL:g}x: {verdict}); {ratio_after:.1f}x after each executor started")
    for key, label in (("ratio_process", "end to end"), ("ratio_after_start", "after start")):
        print(f"  ratio {label}, each round: "
              + " / ".join(f"{r[key]:.1f}x" for r in rounds))
    result = {"machine": machine(), "connections": n, "seeding_seconds": seeding,
              "rounds": rounds, "median": median, "ratio_per_connection": ratio,
              "ratio_after_start": ratio_after, "goal": GOAL, "goal_met": ratio >= GOAL}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"  figures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
