"""Kernels forked from the fork server: the same kernel a start from scratch gives, sooner.

Nothing here is timed. The tests compare what a forked kernel and a kernel started from
scratch see from inside (recorded by the notebooks), follow the processes by their ids, and
inject a kernel that hangs at start with an IPython startup file, which both kinds run.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from atlassian_playbook.execute import run_notebook
from atlassian_playbook.kernel_forkserver import ForkServer, available
from atlassian_playbook.kernels import SpareKernels

from .test_batch import write_notebook
from .test_warm_kernel import Events, _gone, two_runs_on_one_worker

pytestmark = [pytest.mark.notebook,
              pytest.mark.skipif(not available(), reason="kernels are forked on Linux only")]

INSIDE = """\
import os, signal, sys, threading
from atlassian_playbook.records import record
record('pid', os.getpid())
record('parent', os.getppid())
record('preloaded', 'atlassian_playbook.playbook' in sys.modules)
record('path', sys.path)
record('argv0', sys.argv[0])
record('environ', sorted(os.environ))
record('parent_pid_is_parent', os.environ.get('JPY_PARENT_PID') == str(os.getppid()))
record('signals', [str(signal.getsignal(s)) for s in
                   (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGCHLD)])
record('session_leader', os.getsid(0) == os.getpid() == os.getpgid(0))
record('cwd', os.getcwd())
record('main', sys.modules['__main__'].__name__)
record('leaked', 'leaked' in globals())
leaked = value
"""


@pytest.fixture
def inside(tmp_path) -> Path:
    return write_notebook(tmp_path / "inside.ipynb", "value = 1", INSIDE)


def test_a_forked_kernel_sees_what_a_kernel_started_from_scratch_sees(tmp_path, inside):
    seen = Events()
    with SpareKernels(on_event=seen) as kernels:
        runs = [run_notebook(inside, tmp_path / f"{n}.ipynb", {"value": n}, kernels=kernels)
                for n in range(3)]
        server = kernels._server.pid
    assert all(run.ok for run in runs), [run.failure for run in runs]
    scratch, *forked = [run.records for run in runs]

    # The first run's kernel was started from scratch; the others were the spares, forked
    # from the server with the package already imported, each a process of its own.
    assert scratch["pid"] not in seen.forked and scratch["parent"] == os.getpid()
    assert all(run["pid"] in seen.forked and run["parent"] == server for run in forked)
    assert [run["preloaded"] for run in (scratch, *forked)] == [False, True, True]
    assert len({run["pid"] for run in (scratch, *forked)}) == 3
    assert not any(run["leaked"] for run in (scratch, *forked))
    # Everything else a notebook could look at is the same.
    same = ["path", "argv0", "environ", "parent_pid_is_parent", "signals", "session_leader",
            "cwd", "main"]
    for run in forked:
        assert {key: run[key] for key in same} == {key: scratch[key] for key in same}
    assert scratch["parent_pid_is_parent"] and scratch["session_leader"]
    # Stopped, every one, and the server too.
    started = seen.pids("cold") + seen.pids("spare")
    assert all(_gone(pid) for pid in [*started, server])


def test_a_forked_kernel_s_streams_and_exit_status_are_a_process_s(tmp_path):
    server = ForkServer(sys.executable, dict(os.environ), ())
    try:
        launcher = [sys.executable, "-m", "ipykernel_launcher"]
        assert server.serves([*launcher, "-f", "k.json"])
        assert not server.serves([sys.executable, "other.py", "-f", "k.json"])
        # Its standard output is the one passed; a clean exit is 0.
        read, write = os.pipe()
        version = server.spawn([*launcher, "--version"], env=dict(os.environ), cwd=tmp_path,
                               stdout=write, stderr=2)
        os.close(write)
        with os.fdopen(read) as printed:
            said = printed.read()
        assert version.wait() == 0 and said.strip()[0].isdigit(), said
        # A kernel killed is -SIGKILL, as Popen says it; poll is None while it lives.
        folder = tmp_path / "kernel"
        folder.mkdir()
        connection = folder / "kernel.json"
        from jupyter_client.connect import write_connection_file

        write_connection_file(str(connection), transport="ipc", ip=str(folder / "k"))
        kernel = server.spawn([*launcher, "-f", str(connection)], env=dict(os.environ),
                              cwd=tmp_path, stdout=1, stderr=2)
        assert kernel.poll() is None
        assert psutil.Process(kernel.pid).ppid() == server.pid
        exited = os.pidfd_open(kernel.pid)
        kernel.kill()
        select.select([exited], [], [])
        os.close(exited)
        # Dead is dead at once, as Popen finds its zombie: not only once the server reaped it.
        assert kernel.poll() == -signal.SIGKILL and kernel.wait() == -signal.SIGKILL
        kernel.kill()  # a dead kernel's signal is no error, as with Popen
    finally:
        server.close()
    assert _gone(server.pid)


def test_kernels_start_from_scratch_when_the_fork_server_cannot(tmp_path, inside):
    seen = Events()
    with SpareKernels(on_event=seen, preload=("atlassian_playbook_no_such_module",)) as kernels:
        runs = [run_notebook(inside, tmp_path / f"{n}.ipynb", {"value": n}, kernels=kernels)
                for n in range(2)]
        problem = kernels.fork_problem
    assert all(run.ok for run in runs), [run.failure for run in runs]
    assert "atlassian_playbook_no_such_module" in problem
    assert seen.pids("warm") == [runs[1].records["pid"]]  # still a spare, started from scratch
    assert [run.records["parent"] for run in runs] == [os.getpid()] * 2
    assert not seen.forked


def test_the_per_cell_timeout_still_fires_in_a_forked_kernel(tmp_path, inside):
    blocked = write_notebook(tmp_path / "blocked.ipynb", "value = 1",
                             "import threading\nthreading.Event().wait()")
    seen = Events()
    with SpareKernels(on_event=seen) as kernels:
        first = run_notebook(inside, tmp_path / "first.ipynb", {"value": 1}, kernels=kernels)
        outcome = run_notebook(blocked, tmp_path / "out.ipynb", timeout=2, kernels=kernels)

    assert first.ok, first.failure
    taken = seen.pids("warm")
    assert len(taken) == 1 and taken[0] in seen.forked
    assert outcome.failure is not None
    assert outcome.failure.ename in {"CellTimeoutError", "TimeoutError"}, outcome.failure
    assert all(_gone(pid) for pid in seen.pids("cold") + seen.pids("spare"))


# An IPython startup file: the first kernel to start goes on, every later one hangs before
# its first reply (both kinds of kernel run startup files while they start).
HANG_AFTER_THE_FIRST = """\
import os, threading
try:
    os.close(os.open({marker!r}, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
except FileExistsError:
    threading.Event().wait()
"""


def test_the_batch_watchdog_kills_a_forked_kernel_that_hangs_at_start(tmp_path, monkeypatch):
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-hang.py").write_text(
        HANG_AFTER_THE_FIRST.format(marker=str(tmp_path / "first")))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    seen = Events()
    first, second = two_runs_on_one_worker(tmp_path, monkeypatch, seen)

    assert first.status == "ok", first.failure
    taken = seen.pids("warm")
    assert len(taken) == 1 and taken[0] in seen.forked  # the second run took the forked spare
    assert second.status == "timeout", second.failure
    assert second.failure["error"] == "DeadKernelError", second.failure
    assert second.kernel_restarts == 0
    assert all(_gone(pid) for pid in seen.pids("cold") + seen.pids("spare"))


RUNNER_THAT_DIES = """\
import json, os, sys
from atlassian_playbook.execute import run_notebook
from atlassian_playbook.kernels import SpareKernels
seen = []
kernels = SpareKernels(on_event=lambda what, kernel: seen.append((what, kernel.pid)))
for n in range(2):
    assert run_notebook({notebook!r}, {out!r} + str(n), {{'value': n}}, kernels=kernels).ok
print(json.dumps({{'server': kernels._server.pid,
                  'kernels': [pid for what, pid in seen if what in ('cold', 'spare')]}}))
sys.stdout.flush()
os._exit(1)  # no close: the runner is killed, say
"""


def test_nothing_outlives_a_runner_that_dies(tmp_path, inside):
    said = tmp_path / "said.txt"
    with said.open("w") as output:  # a file, not a pipe: its kernels may still hold it open
        subprocess.run(
            [sys.executable, "-c", RUNNER_THAT_DIES.format(notebook=str(inside),
                                                           out=str(tmp_path / "out-"))],
            stdout=output, check=False,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    left = json.loads(said.read_text().strip().splitlines()[-1])
    processes = []
    for pid in [left["server"], *left["kernels"]]:
        try:
            processes.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    # The server sees its standard input close; the kernels then have init as their parent,
    # and ipykernel's parent poller ends them. Generous: this is not a measure of speed.
    _, alive = psutil.wait_procs(processes, timeout=120)
    assert alive == []


def test_a_kernel_starts_from_scratch_when_its_fork_server_is_gone(tmp_path):
    import asyncio

    from atlassian_playbook.kernel_forkserver import ForkedProcess
    from atlassian_playbook.kernels import _forked_provisioner, quick_shutdown_manager

    from .test_warm_kernel import ready_client

    server = ForkServer(sys.executable, dict(os.environ), ())
    server.close()  # gone between the check that it lives and the fork

    async def start_and_stop() -> object:
        manager = quick_shutdown_manager()(kernel_name="python3")
        manager.kernel_id = "gone-server"
        manager.provisioner = _forked_provisioner()(
            kernel_id=manager.kernel_id, kernel_spec=manager.kernel_spec, parent=manager)
        manager.provisioner.forkserver = server
        async with ready_client(manager, cwd=str(tmp_path)):
            return manager.provisioner.process

    process = asyncio.run(start_and_stop())
    assert not isinstance(process, ForkedProcess) and process.returncode is not None
