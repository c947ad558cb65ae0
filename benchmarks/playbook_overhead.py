"""What the playbook costs next to bare kernels, with and without the spare kernel.

Runs the whole headless playbook (the manifest's notebooks, default profile) against the
embedded emulator from this one process, through ``execute.run_notebook`` as ``make demo``
does: once with a cold kernel per notebook (papermill starts and stops it, the path without
``kernels``), once with :class:`~atlassian_playbook.kernels.SpareKernels` (the next kernel
started while the current notebook runs, as ``make demo`` and ``render`` now run). In the same
round it times as many bare kernel start/stop cycles (jupyter_client only: start, first
reply, shutdown, one after another) and as many empty notebooks under papermill. Rounds are
interleaved so a slow spell of the machine hits every row; medians are printed, and the
ratios are taken within each round.

    .venv/bin/python benchmarks/playbook_overhead.py [--repeat N]

Not a timed test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from atlassian_playbook.execute import run_notebook
from atlassian_playbook.kernels import SpareKernels, quick_shutdown_manager
from atlassian_playbook.render import playbook_notebooks

SEQUENCE = [path.name for path in playbook_notebooks()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def play_sequence(root: Path, *, spare: bool) -> float:
    """Seconds for the playbook in a fresh workspace, with the spare kernel (as the training
    build has it) or a cold kernel per notebook; raises if a notebook fails."""
    workspace = root / "workspace"
    workspace.mkdir()
    # A free loopback callback, so a JupyterLab or test run elsewhere never collides on 8765.
    (workspace / ".env").write_text(
        f"ATLASSIAN_REDIRECT_URI='http://127.0.0.1:{_free_port()}/callback'\n"
    )
    kernels = SpareKernels(runs=len(SEQUENCE)) if spare else None
    try:
        started = time.perf_counter()
        for name in SEQUENCE:
            outcome = run_notebook(name, root / "out" / name, {"workspace": str(workspace)},
                                   kernels=kernels)
            if not outcome.ok:
                raise SystemExit(f"{name} failed: {outcome.failure.to_dict()}")
        return time.perf_counter() - started
    finally:
        if kernels is not None:
            kernels.close()  # the unused last spare: after the clock, as after the demo


def bare_cycles(count: int) -> float:
    """Seconds for ``count`` kernels started, answering ``kernel_info``, and shut down, one
    after another (the manager run_notebook uses, no papermill, and jupyter_client's own
    client: its ``wait_for_ready`` ends with 0.2 s of IOPub silence, as stock runs have)."""
    from jupyter_client.asynchronous import AsyncKernelClient

    async def cycle() -> None:
        with tempfile.TemporaryDirectory(prefix="pbk-") as folder:  # Unix sockets, as runs use
            manager = quick_shutdown_manager()(
                kernel_name="python3", transport="ipc",
                connection_file=os.path.join(folder, "kernel.json"))
            manager.client_factory = AsyncKernelClient
            await run(manager)

    async def run(manager) -> None:
        await manager.start_kernel()
        client = manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=60)
        finally:
            client.stop_channels()
            await manager.shutdown_kernel()

    started = time.perf_counter()
    for _ in range(count):
        asyncio.run(cycle())
    return time.perf_counter() - started


def run_empty(root: Path, count: int) -> float:
    """Seconds for ``count`` runs of a notebook with one empty code cell, through the same
    seam as the playbook (``run_notebook``, cold kernels)."""
    empty = nbformat.v4.new_notebook()
    empty.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}
    empty.cells = [nbformat.v4.new_code_cell("")]
    source = root / "empty.ipynb"
    nbformat.write(empty, source)
    started = time.perf_counter()
    for index in range(count):
        run_notebook(source, root / f"empty-{index}.ipynb")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are printed")
    args = parser.parse_args(argv)
    for name in [n for n in os.environ if n.startswith("ATLASSIAN_")]:
        del os.environ[name]  # the emulator, in a fresh workspace, whatever the shell says

    count = len(SEQUENCE)
    rows: dict[str, list[float]] = {"bare": [], "empty": [], "cold": [], "spare": []}
    bare_cycles(1)  # imports and the kernel's own first-start caches, outside the clock
    for _ in range(max(1, args.repeat)):
        with tempfile.TemporaryDirectory(prefix="playbook-bench-") as tmp:
            root = Path(tmp)
            for row in rows:
                (root / row).mkdir()
            rows["bare"].append(bare_cycles(count))
            rows["empty"].append(run_empty(root / "empty", count))
            rows["cold"].append(play_sequence(root / "cold", spare=False))
            rows["spare"].append(play_sequence(root / "spare", spare=True))
    median = {k: statistics.median(v) for k, v in rows.items()}
    ratio = {k: statistics.median(r / b for r, b in zip(v, rows["bare"], strict=True))
             for k, v in rows.items()}
    print(f"{count} notebooks, median of {len(rows['bare'])} interleaved rounds "
          "(ratio: to the bare cycles of the same round, median):")
    print(f"  {count} bare kernel start/stop cycles:       {median['bare']:6.2f} s   1.00x")
    print(f"  {count} empty notebooks, cold kernels:       {median['empty']:6.2f} s"
          f"   {ratio['empty']:.2f}x")
    print(f"  playbook, a cold kernel per notebook:    {median['cold']:6.2f} s"
          f"   {ratio['cold']:.2f}x   (before)")
    print(f"  playbook, the spare kernel:              {median['spare']:6.2f} s"
          f"   {ratio['spare']:.2f}x   (after)")
    speedup = statistics.median(c / s for c, s in zip(rows["cold"], rows["spare"], strict=True))
    print(f"  spare vs cold, paired:                   {speedup:.2f}x faster")
    for key, values in rows.items():
        print(f"  {key:>5} each round: {' / '.join(f'{v:.2f}' for v in values)} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
