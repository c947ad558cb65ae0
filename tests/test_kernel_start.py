"""Kernel start: no port race, and a kernel that dies before its first reply is started again.

The deaths are injected with real kernelspecs in a temporary ``JUPYTER_PATH`` whose launcher
exits at once (the first time only, or every time) and otherwise execs ipykernel. Every start
appends its connection file to a log, so the tests count starts instead of timing anything.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import nbformat
import pytest

from atlassian_playbook.batch import run_batch
from atlassian_playbook.batch.plan import RunSpec, plan_from_dict
from atlassian_playbook.batch.task import execute_run
from atlassian_playbook.execute import run_notebook
from atlassian_playbook.render import render_playbook

from .test_batch import write_notebook

pytestmark = pytest.mark.notebook

LAUNCHER = '''\
import os, sys, threading
mode, marker, starts = sys.argv[1:4]
arguments = sys.argv[4:]
with open(starts, "a") as log:
    log.write(arguments[arguments.index("-f") + 1] + "\\n")
if mode == "hangs":
    threading.Event().wait()
if mode == "always":
    sys.exit("injected: the kernel dies before it answers")
try:
    os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
except FileExistsError:
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *arguments])
sys.exit("injected: the kernel dies before it answers, this once")
'''


class Kernels:
    """Kernelspecs in a private JUPYTER_PATH; ``starts(name)`` lists each start's connection
    file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "launcher.py").write_text(LAUNCHER)

    def add(self, name: str, mode: str) -> str:
        folder = self.root / "kernels" / name
        folder.mkdir(parents=True)
        argv = [sys.executable, str(self.root / "launcher.py"), mode,
                str(self.root / f"{name}.died"), str(self.root / f"{name}.starts"),
                "-f", "{connection_file}"]
        (folder / "kernel.json").write_text(json.dumps(
            {"argv": argv, "display_name": name, "language": "python"}))
        return name

    def starts(self, name: str) -> list[str]:
        log = self.root / f"{name}.starts"
        return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def kernels(tmp_path, monkeypatch) -> Kernels:
    root = tmp_path / "jupyter"
    root.mkdir()
    monkeypatch.setenv("JUPYTER_PATH", str(root))
    return Kernels(root)


CONNECTION = (
    "import json, os, stat\n"
    "from ipykernel.connect import get_connection_file, get_connection_info\n"
    "from atlassian_playbook.records import record\n"
    "folder = os.path.dirname(get_connection_file())\n"
    "record('transport', json.loads(get_connection_info())['transport'])\n"
    "record('folder', folder)\n"
    "record('folder_mode', stat.S_IMODE(os.stat(folder).st_mode))\n"
    "record('value', value)"
)


def test_kernels_talk_over_sockets_in_a_private_folder_so_no_port_can_be_taken(tmp_path):
    notebook = write_notebook(tmp_path / "where.ipynb", "value = 1", CONNECTION)
    outcome = run_notebook(notebook, tmp_path / "out.ipynb", {"value": 7})

    assert outcome.ok, outcome.failure
    assert outcome.records["transport"] == "ipc"
    assert outcome.records["folder_mode"] & (stat.S_IRWXG | stat.S_IRWXO) == 0  # only this user
    assert not Path(outcome.records["folder"]).exists()  # removed with the kernel
    assert outcome.kernel_restarts == 0


def test_a_kernel_that_dies_before_its_first_reply_is_started_again_once(tmp_path, kernels):
    name = kernels.add("dies-once", "once")
    notebook = write_notebook(tmp_path / "flaky.ipynb", "value = 1", CONNECTION)
    outcome = run_notebook(notebook, tmp_path / "out.ipynb", {"value": 3}, kernel_name=name)

    assert outcome.ok, outcome.failure
    assert outcome.records["value"] == 3
    assert outcome.kernel_restarts == 1
    first, second = kernels.starts(name)
    assert Path(first).parent != Path(second).parent  # started again on fresh sockets
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert [c.execution_count for c in executed.cells if c.cell_type == "code"] == [1, 2, 3]


def test_a_kernel_that_dies_every_time_fails_clearly_after_one_restart(tmp_path, kernels):
    name = kernels.add("always-dies", "always")
    notebook = write_notebook(tmp_path / "dead.ipynb", "value = 1", "print('never runs')")
    outcome = run_notebook(notebook, tmp_path / "out.ipynb", kernel_name=name)

    assert len(kernels.starts(name)) == 2  # started again once, not in a loop
    assert outcome.kernel_restarts == 1
    failure = outcome.failure
    assert failure is not None and failure.cell_index is None
    assert failure.ename == "DeadKernelError"
    assert "always-dies" in failure.evalue and "twice" in failure.evalue
    assert failure.hint and "jupyter kernelspec list" in failure.hint


def test_a_kernel_the_batch_watchdog_killed_at_start_is_not_started_again(tmp_path, kernels):
    kernels.add("python3", "hangs")  # execute_run starts the default kernel
    notebook = write_notebook(tmp_path / "hangs.ipynb", "value = 1", "print('never runs')")
    spec = RunSpec(index=0, run_id="r0", notebook=str(notebook), parameters={},
                   output_path=str(tmp_path / "out.ipynb"), timeout=1)
    result = execute_run(spec, watchdog=True)

    assert result.status == "timeout", result.failure
    assert len(kernels.starts("python3")) == 1
    assert result.kernel_restarts == 0


def test_a_batch_survives_a_kernel_death_at_start_and_counts_the_restart(tmp_path, kernels):
    # The batch runs the default kernel: shadow python3 with one that dies once, in one run.
    kernels.add("python3", "once")
    folder = tmp_path / "plan"
    folder.mkdir()
    write_notebook(folder / "values.ipynb", "value = 1",
                   "from atlassian_playbook.records import record\nrecord('double', value * 2)")
    plan = plan_from_dict({"notebook": "values.ipynb", "runs": [{"value": 1}, {"value": 2}]},
                          base_dir=folder, default_name="values")
    summary = run_batch(plan, output_dir=tmp_path / "out", workers=2, progress="none")

    assert summary.ok, summary.to_text()
    # The runs' two kernels and the one restart, and a spare each worker may have started for
    # a next run (the journal's restart counts below say exactly one kernel died).
    assert len(kernels.starts("python3")) >= 3
    journal = [json.loads(line)
               for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert sorted(run["kernel_restarts"] for run in journal) == [0, 1]
    assert sorted(run["records"]["double"] for run in journal) == [2, 4]
    data = json.loads(summary.json_path.read_text())
    assert data["kernel_restarts"] == 1
    assert "kernel restarts" in summary.html_path.read_text()
    assert "1 kernel restart" in summary.to_text()


def test_the_training_build_survives_a_kernel_death_at_start(tmp_path, kernels):
    kernels.add("python3", "once")  # render runs the default kernel
    first = write_notebook(tmp_path / "01-first.ipynb", "value = 1", "print('first page')")
    second = write_notebook(tmp_path / "02-second.ipynb", "value = 1", "print('second page')")
    result = render_playbook(tmp_path / "site", notebooks=[first, second])

    assert result.ok, result.to_text()
    assert [p.kernel_restarts for p in result.pages] == [1, 0]
    assert "kernel started again" in result.to_text()
    assert "second page" in (tmp_path / "site" / "02-second.html").read_text()
