"""What the playbook costs on top of papermill itself.

Runs the whole headless playbook (01 to 09, default profile) against the embedded emulator from
this one process, through ``execute.run_notebook`` (one kernel per notebook, as the tests and
``make demo`` do), then the same number of papermill runs of an empty notebook (one empty code
cell), and prints both wall times and their ratio. A ratio near 1 means the time goes to
starting kernels, not to the playbook.

    .venv/bin/python benchmarks/playbook_overhead.py [--repeat N]

Not a timed test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from atlassian_playbook.render import playbook_notebooks

SEQUENCE = [path.name for path in playbook_notebooks()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def play_sequence(root: Path) -> float:
    """Seconds for 01 to 09 in a fresh workspace; raises if a notebook fails."""
    from atlassian_playbook.execute import run_notebook

    workspace = root / "workspace"
    workspace.mkdir()
    # A free loopback callback, so a JupyterLab or test run elsewhere never collides on 8765.
    (workspace / ".env").write_text(
        f"ATLASSIAN_REDIRECT_URI='http://127.0.0.1:{_free_port()}/callback'\n"
    )
    started = time.perf_counter()
    for name in SEQUENCE:
        outcome = run_notebook(
            name, root / "out" / name, {"workspace": str(workspace)}
        )
        if not outcome.ok:
            raise SystemExit(f"{name} failed: {outcome.failure.to_dict()}")
    return time.perf_counter() - started


def run_empty(root: Path, count: int) -> float:
    """Seconds for ``count`` runs of a notebook with one empty code cell, through the same
    seam as the playbook (``run_notebook``: same papermill call, same kernel manager)."""
    from atlassian_playbook.execute import run_notebook

    empty = nbformat.v4.new_notebook()
    empty.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    empty.cells = [nbformat.v4.new_code_cell("")]
    source = root / "empty.ipynb"
    nbformat.write(empty, source)
    started = time.perf_counter()
    for index in range(count):
        run_notebook(source, root / f"empty-{index}.ipynb")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="measure N times, keep the best")
    args = parser.parse_args(argv)
    for name in [n for n in os.environ if n.startswith("ATLASSIAN_")]:
        del os.environ[name]  # the emulator, in a fresh workspace, whatever the shell says

    playbook, empty = [], []
    for _ in range(max(1, args.repeat)):
        with tempfile.TemporaryDirectory(prefix="playbook-bench-") as tmp:
            root = Path(tmp)
            empty.append(run_empty(root, len(SEQUENCE)))
            playbook.append(play_sequence(root))
    best_playbook, best_empty = min(playbook), min(empty)
    print(f"playbook 01-09 headless ({len(SEQUENCE)} notebooks): {best_playbook:6.2f} s")
    print(f"{len(SEQUENCE)} empty notebooks under papermill:     {best_empty:6.2f} s")
    print(f"ratio playbook / empty:                     {best_playbook / best_empty:6.2f}")
    print(
        f"playbook's own time per notebook:           "
        f"{(best_playbook - best_empty) / len(SEQUENCE):6.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
