"""Speed figures for the README, measured in one run on this machine (not timed tests).

    .venv/bin/python benchmarks/run_benchmarks.py [--runs 16] [--workers 1 2 4] [--repeat 3]
        [--before OTHER/src] [--no-overhead] [--fleet 64] [--no-health-fleet]

1. ``import atlassian_playbook`` vs ``import httpx``, each in fresh interpreters (median), and
   which heavy modules the import pulls in (none of papermill, ipywidgets, jupyter, dask);
   ``import papermill`` with the IRI grammar built at import and deferred, paired.
2. The emulator's token endpoint: refresh grants per second over one httpx connection, with
   the world in memory and in a state file (as the notebooks' embedded emulators share it).
3. A batch of health checks (notebook 11) with 1, 2 and 4 local workers, each in a fresh CLI
   process: wall time end to end and after the pool started, speedups over 1 worker, the
   runner's overhead per run, and the batch next to as many bare kernel start/stop cycles
   timed in the same round. ``--before`` runs the same rows with another source tree (a
   checkout of an earlier commit) first in each round, for before/after figures.
4. ``benchmarks/playbook_overhead.py``, if present: the playbook vs bare kernels.
5. ``benchmarks/health_fleet.py``: ``health --from-store`` vs ``batch --from-store`` over the
   same fleet (``--fleet``, default 64 connections), per connection.

The health-check batch needs one token-store entry per run. The emulator has one user, so each
entry gets its own workspace (its own emulated world and store, one headless login each):
N workspaces give N independent grants, as N customers' connections would be.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEAVY = ("papermill", "ipywidgets", "jupyter_client", "jupyter_core", "nbclient", "nbconvert",
         "IPython", "dask", "distributed", "tornado", "zmq")


def machine() -> str:
    version = subprocess.run([sys.executable, "-V"], capture_output=True, text=True).stdout
    return (f"{os.cpu_count()} cores, {version.strip()}, {platform.system()} "
            f"{platform.machine()}, {datetime.date.today().isoformat()}")


# --- 1. imports ------------------------------------------------------------------------------


def import_seconds(module: str, repeat: int) -> float:
    code = (f"import time; t = time.perf_counter(); import {module}; "
            "print(time.perf_counter() - t)")
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  check=True).stdout) for _ in range(repeat)]
    return statistics.median(times)


def paired_import(repeat: int) -> tuple[float, float, float]:
    """``import papermill`` in fresh interpreters, the IRI grammar built at import (as before)
    and deferred (as our notebook-running processes do), in turn: medians and paired ratio."""
    timer = ("import time; t = time.perf_counter(); {}import papermill; "
             "print(time.perf_counter() - t)")
    defer = "from atlassian_playbook import _iri_grammar; _iri_grammar.defer(); "
    built, deferred = [], []
    for _ in range(repeat):
        for code, into in ((timer.format(""), built), (timer.format(defer), deferred)):
            into.append(float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                             text=True, check=True).stdout))
    ratio = statistics.median(b / d for b, d in zip(built, deferred, strict=True))
    return statistics.median(built), statistics.median(deferred), ratio


def heavy_after_import() -> list[str]:
    code = ("import sys, atlassian_playbook, atlassian_playbook.batch, atlassian_playbook.cli\n"
            "atlassian_playbook.cli.build_parser()\n"
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    return [m for m in out.split(",") if m]


def bench_imports(repeat: int = 7) -> None:
    ours = import_seconds("atlassian_playbook", repeat)
    httpx = import_seconds("httpx", repeat)
    print(f"import atlassian_playbook: {ours * 1000:.1f} ms   import httpx: {httpx * 1000:.1f} ms"
          f"   (median of {repeat} fresh interpreters)")
    built, deferred, ratio = paired_import(repeat)
    print(f"import papermill: {built * 1000:.0f} ms with the IRI grammar built at import, "
          f"{deferred * 1000:.0f} ms with it deferred ({ratio:.2f}x, paired, median of {repeat})")
    heavy = heavy_after_import()
    assert not heavy, f"imported too eagerly: {heavy}"
    print("  after `import atlassian_playbook, atlassian_playbook.batch, atlassian_playbook.cli`"
          f": none of {', '.join(HEAVY)} in sys.modules")


# --- 2. the emulator's token endpoint --------------------------------------------------------


def refresh_rate(state_path: Path | None, requests: int) -> float:
    import httpx

    from atlassian_playbook import connection
    from atlassian_playbook.emulator import Emulator
    from atlassian_playbook.target import Target, emulator_settings

    with Emulator(auto_consent=True, state_path=state_path) as emu:
        settings = emulator_settings(emu, token_store=Path(tempfile.mkdtemp()) / "tokens.json")
        target = Target(settings, emu)
        refresh = connection.login(target, browser="headless",
                                   show_url=lambda url: None).entry.tokens.refresh_token.reveal()
        client = emu.default_client
        with httpx.Client(base_url=emu.auth_base_url) as http:
            started = time.perf_counter()
            for _ in range(requests):
                response = http.post("/oauth/token", json={
                    "grant_type": "refresh_token", "client_id": client.client_id,
                    "client_secret": client.client_secret.reveal(), "refresh_token": refresh})
                response.raise_for_status()
                refresh = response.json()["refresh_token"]
            return requests / (time.perf_counter() - started)


def bench_token_endpoint(requests: int = 500) -> None:
    memory = refresh_rate(None, requests)
    with tempfile.TemporaryDirectory() as folder:
        shared = refresh_rate(Path(folder) / "emulator-state.json", requests)
    print(f"emulator token endpoint, refresh grant loop ({requests} requests, one connection): "
          f"{memory:.0f} req/s in memory, {shared:.0f} req/s with a shared state file")


# --- 3. batch of health checks ---------------------------------------------------------------


def bare_kernel_seconds(folder: Path, repeat: int = 3) -> float:
    import nbformat

    from atlassian_playbook.execute import run_notebook

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("")]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, folder / "empty.ipynb")
    run_notebook(folder / "empty.ipynb", folder / "empty-out.ipynb")  # papermill imported
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run_notebook(folder / "empty.ipynb", folder / "empty-out.ipynb")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cli_batch(plan: Path, workers: int, out: Path, src: str | None = None) -> tuple[float, dict]:
    """One ``atlassian-playbook batch`` process; ``src``: the source tree it imports (default:
    this process's)."""
    import json

    cli = Path(sys.executable).with_name("atlassian-playbook")
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src
    started = time.perf_counter()
    done = subprocess.run([str(cli), "batch", str(plan), "--workers", str(workers),
                           "--progress", "none", "--json", "--output", str(out)],
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    summary = json.loads(done.stdout)
    assert done.returncode == 0 and summary["ok"], done.stderr[-2000:]
    return wall, summary


def seed_plan(folder: Path, runs: int, src: str | None) -> Path:
    """``runs`` workspaces with one emulator login each, seeded by the tree that will check
    them (each tree reads the emulator state files it writes), and the plan over them."""
    import json

    workspaces = [folder / f"customer-{i:02d}" for i in range(runs)]
    seed = ("import sys\nfrom pathlib import Path\n"
            "from atlassian_playbook.batch.workspace import seed_emulator_workspace\n"
            "for folder in sys.argv[1:]:\n    seed_emulator_workspace(Path(folder))\n")
    env = dict(os.environ, **({"PYTHONPATH": src} if src else {}))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", seed, *map(str, workspaces)], env=env, check=True)
    print(f"seeded {runs} workspaces in {folder} (one emulator login each) in "
          f"{time.perf_counter() - started:.1f} s")
    plan = folder / "plan.json"
    plan.write_text(json.dumps({"name": "bench", "notebook": "11-health-check.ipynb",
                                "product": {"workspace": [str(w) for w in workspaces],
                                            "account_id": [""]}}))
    return plan


def bench_batch(runs: int, worker_counts: list[int], repeat: int,
                before: str | None = None) -> None:
    """Each worker count in a fresh ``atlassian-playbook batch`` process, as a user runs it
    (``repeat`` times, medians): the process wall includes the interpreter, the imports and
    starting the worker pool; the batch wall is the runner's time after the pool started.
    Each round also times ``runs`` bare kernel start/stop cycles, for ratios in that round."""

    from playbook_overhead import bare_cycles

    root = Path(tempfile.mkdtemp(prefix="playbook-bench-"))
    kernel = bare_kernel_seconds(root)
    print(f"bare kernel run (empty notebook through run_notebook, in process): {kernel:.2f} s")
    trees = ([("before", before)] if before else []) + [("after", None)]
    plans = {label: seed_plan(root / label, runs, src) for label, src in trees}
    rows: dict[tuple[str, int], list[dict]] = {}
    bare_rounds: list[float] = []
    bare_cycles(1)
    for _ in range(repeat):  # interleaved, so a slow spell of the machine hits every row
        bare = bare_cycles(runs)
        bare_rounds.append(bare)
        for label, src in trees:
            for workers in worker_counts:
                wall, summary = cli_batch(plans[label], workers, root / f"{label}-w{workers}",
                                          src)
                durations = [r["duration"] for r in summary["runs"]]
                batch = summary["wall_seconds"] - summary["startup_seconds"]
                rows.setdefault((label, workers), []).append({
                    "wall": wall, "start": summary["startup_seconds"], "batch": batch,
                    "mean": statistics.mean(durations),
                    # Worker time outside runs: dispatch, pickling, journal, idle tail.
                    "overhead": (batch * workers - sum(durations)) / runs,
                    "to_bare": batch / bare, "wall_to_bare": wall / bare,
                })
    median = {key: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
              for key, rs in rows.items()}
    print(f"{runs} bare kernel start/stop cycles, one after another: "
          f"{statistics.median(bare_rounds):.2f} s (median of {repeat} rounds)")
    print(f"batch of {runs} health checks (notebook 11), one `atlassian-playbook batch` process"
          f" per row, median of {repeat}:")
    print("  tree    workers  process wall  speedup  pool start  batch wall  speedup  mean run"
          "  overhead/run  batch/bare  wall/bare")
    for label, _ in trees:
        base = rows[(label, worker_counts[0])]
        for workers in worker_counts:
            m, mine = median[(label, workers)], rows[(label, workers)]
            wall_speedup = statistics.median(
                b["wall"] / r["wall"] for b, r in zip(base, mine, strict=True))
            batch_speedup = statistics.median(
                b["batch"] / r["batch"] for b, r in zip(base, mine, strict=True))
            print(f"  {label:<6}  {workers:>7}  {m['wall']:>10.2f} s  {wall_speedup:>6.2f}x  "
                  f"{m['start']:>8.2f} s  {m['batch']:>8.2f} s  {batch_speedup:>6.2f}x"
                  f"  {m['mean']:>6.2f} s  {m['overhead']:>10.3f} s  {m['to_bare']:>9.2f}x"
                  f"  {m['wall_to_bare']:>8.2f}x")
    if before:
        for workers in worker_counts:
            paired = statistics.median(
                b["wall"] / a["wall"] for b, a in zip(rows[("before", workers)],
                                                      rows[("after", workers)], strict=True))
            print(f"  after vs before, {workers} worker(s), process wall, paired: "
                  f"{paired:.2f}x faster")
    print("  (speedups: to the first worker count of the same tree, paired by round; a run's"
          " time includes starting and stopping its kernel)")
    for (label, workers), rs in rows.items():
        walls = " / ".join(f"{r['wall']:.1f}" for r in rs)
        print(f"  process walls, {label}, {workers} worker(s), each repetition: {walls} s")


# --- 4. playbook vs bare kernels -------------------------------------------------------------


def bench_playbook_overhead() -> None:
    script = HERE / "playbook_overhead.py"
    if not script.exists():
        print("benchmarks/playbook_overhead.py not present: skipped")
        return
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    print("playbook_overhead.py:")
    print("\n".join(f"  {line}" for line in done.stdout.strip().splitlines()))
    if done.returncode:
        print(f"  (exit {done.returncode}) {done.stderr.strip().splitlines()[-1:]}")


# --- 5. health vs batch over a fleet ----------------------------------------------------------


def bench_health_fleet(connections: int) -> None:
    done = subprocess.run([sys.executable, str(HERE / "health_fleet.py"),
                           "--connections", str(connections)], capture_output=True, text=True)
    print("health_fleet.py:")
    print("\n".join(f"  {line}" for line in done.stdout.strip().splitlines()))
    if done.returncode:
        print(f"  (exit {done.returncode}) {done.stderr.strip().splitlines()[-1:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeat", type=int, default=3,
                        help="batches per worker count; medians are printed (default 3)")
    parser.add_argument("--before", metavar="SRC",
                        help="also run the batch rows with this source tree (e.g. an earlier "
                             "commit's src/), first in each round")
    parser.add_argument("--no-overhead", action="store_true",
                        help="skip benchmarks/playbook_overhead.py")
    parser.add_argument("--fleet", type=int, default=64, metavar="N",
                        help="connections for health_fleet.py (default 64)")
    parser.add_argument("--no-health-fleet", action="store_true",
                        help="skip benchmarks/health_fleet.py")
    args = parser.parse_args()
    for name in list(os.environ):
        if name.startswith("ATLASSIAN_"):  # the emulator only, whatever the shell says
            del os.environ[name]
    print(f"machine: {machine()}")
    bench_imports()
    bench_token_endpoint()
    bench_batch(args.runs, args.workers, args.repeat, args.before)
    if not args.no_overhead:
        bench_playbook_overhead()
    if not args.no_health_fleet:
        bench_health_fleet(args.fleet)


if __name__ == "__main__":  # the worker processes import this file again; keep it guarded
    main()
