"""The spare kernel: started while the current notebook runs, never shared, never left behind.

Nothing here is timed: the spare's start is observed through :class:`SpareKernels`' events and
the kernels' own process ids, recorded by the notebooks.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import threading
from contextlib import asynccontextmanager
from pathlib import Path

import psutil
import pytest

from atlassian_playbook.batch import run_batch, task
from atlassian_playbook.batch.plan import RunSpec, plan_from_dict
from atlassian_playbook.batch.task import execute_run
from atlassian_playbook.execute import run_notebook
from atlassian_playbook.kernels import SpareKernels, quick_shutdown_manager

from .test_batch import write_notebook

pytestmark = pytest.mark.notebook

WHO = ("import os\nfrom atlassian_playbook.records import record\n"
       "record('pid', os.getpid())\n"
       "record('leaked', 'leaked' in globals())\n"
       "record('setting', os.environ.get('WARM_KERNEL_TEST'))\n"
       "record('cwd', os.getcwd())\n"
       "leaked = value")


class Events:
    """SpareKernels' events: what happened to which kernel, and which kernels were forked."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int | None]] = []
        self.forked: set[int | None] = set()
        self.spare_started = threading.Event()

    def __call__(self, what: str, kernel) -> None:
        self.seen.append((what, kernel.pid))
        if kernel.forked:
            self.forked.add(kernel.pid)
        if what == "spare":
            self.spare_started.set()

    def pids(self, what: str) -> list[int | None]:
        return [pid for seen, pid in self.seen if seen == what]


def _gone(pid: int | None) -> bool:
    if pid is None or not psutil.pid_exists(pid):
        return True
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def who(tmp_path) -> Path:
    return write_notebook(tmp_path / "who.ipynb", "value = 1", WHO)


def test_each_run_gets_a_fresh_kernel_the_spare_started_while_the_previous_ran(tmp_path, who):
    events = Events()
    with SpareKernels(on_event=events) as kernels:
        first = run_notebook(who, tmp_path / "a.ipynb", {"value": 1}, kernels=kernels)
        during_first = list(events.seen)
        second = run_notebook(who, tmp_path / "b.ipynb", {"value": 2}, kernels=kernels)

    assert first.ok and second.ok, (first.failure, second.failure)
    # The spare was asked for once the first run's kernel was ready, before that run
    # returned, and the second run took it.
    assert [what for what, _ in during_first if what != "spare"] == ["cold", "ahead"]
    assert during_first[1][1] == first.records["pid"]
    spare = events.pids("spare")[0]
    assert events.pids("warm") == [spare]
    assert second.records["pid"] == spare != first.records["pid"]
    # A fresh kernel: nothing the first notebook defined is there.
    assert first.records["leaked"] is False and second.records["leaked"] is False
    # Every kernel started was stopped and is gone, the last (unused) spare included.
    started = events.pids("cold") + events.pids("spare")
    assert len(started) == 3
    assert sorted(events.pids("stopped")) == sorted(started)
    assert all(_gone(pid) for pid in started)
    assert not [p for p in psutil.Process().children(recursive=True) if p.pid in started]


def test_no_spare_is_started_that_no_run_would_take(tmp_path, who):
    events = Events()
    with SpareKernels(on_event=events, runs=2) as kernels:
        for value in (1, 2):
            run_notebook(who, tmp_path / f"{value}.ipynb", {"value": value}, kernels=kernels)
    assert [what for what, _ in events.seen if what in {"cold", "warm", "spare"}] == [
        "cold", "spare", "warm"]
    assert len(events.pids("ahead")) == 1  # the second run's kernel asked for none


def test_a_spare_that_no_longer_fits_the_run_is_discarded(tmp_path, who, monkeypatch):
    other = tmp_path / "elsewhere"
    other.mkdir()
    events = Events()
    with SpareKernels(on_event=events) as kernels:
        run_notebook(who, tmp_path / "a.ipynb", {"value": 1}, kernels=kernels)
        monkeypatch.setenv("WARM_KERNEL_TEST", "changed")  # after the spare started
        changed = run_notebook(who, tmp_path / "b.ipynb", {"value": 2}, kernels=kernels)
        moved = run_notebook(who, tmp_path / "c.ipynb", {"value": 3}, cwd=other,
                             kernels=kernels)

    assert changed.ok and moved.ok, (changed.failure, moved.failure)
    assert changed.records["setting"] == "changed"
    assert Path(moved.records["cwd"]).resolve() == other.resolve()
    assert events.pids("warm") == []  # neither spare was started as the run needed
    assert len(events.pids("discarded")) == 2
    assert changed.records["pid"] not in events.pids("discarded")


def test_a_spare_that_died_is_replaced_not_used(tmp_path, who):
    events = Events()
    with SpareKernels(on_event=events) as kernels:
        run_notebook(who, tmp_path / "a.ipynb", {"value": 1}, kernels=kernels)
        events.spare_started.wait()
        spare = events.pids("spare")[0]
        exited = os.pidfd_open(spare)  # readable once it is dead, whoever reaps it
        os.kill(spare, signal.SIGKILL)
        select.select([exited], [], [])
        os.close(exited)
        after = run_notebook(who, tmp_path / "b.ipynb", {"value": 2}, kernels=kernels)

    assert after.ok, after.failure
    assert after.kernel_restarts == 0  # not taken and found dead: never taken
    assert events.pids("discarded") == [spare]
    assert after.records["pid"] != spare
    assert after.records["pid"] in events.pids("cold")


def test_the_per_cell_timeout_still_fires_with_a_spare(tmp_path):
    blocked = write_notebook(tmp_path / "blocked.ipynb", "value = 1",
                             "import threading\nthreading.Event().wait()")
    events = Events()
    with SpareKernels(on_event=events) as kernels:
        outcome = run_notebook(blocked, tmp_path / "out.ipynb", timeout=2, kernels=kernels)

    assert outcome.failure is not None
    assert outcome.failure.ename in {"CellTimeoutError", "TimeoutError"}, outcome.failure
    assert all(_gone(pid) for pid in events.pids("cold") + events.pids("spare"))


def two_runs_on_one_worker(tmp_path, monkeypatch, events: Events):
    """Two runs of a quick notebook, one after the other, as a batch worker runs them: the
    watchdog on, a 1 s timeout, the second run's kernel the spare started during the first."""
    notebook = write_notebook(tmp_path / "quick.ipynb", "value = 1", "print(value)")
    kernels = SpareKernels(on_event=events)
    monkeypatch.setattr(task, "worker_kernels", lambda: kernels)

    def spec(index: int) -> RunSpec:
        return RunSpec(index=index, run_id=f"r{index}", notebook=str(notebook), parameters={},
                       output_path=str(tmp_path / f"out-{index}.ipynb"), timeout=1)

    try:
        return (execute_run(spec(0), watchdog=True, spare_kernel=True),
                execute_run(spec(1), watchdog=True, spare_kernel=True))
    finally:
        kernels.close()


LAUNCHER = '''\
import os, sys, threading
marker, starts = sys.argv[1:3]
arguments = sys.argv[3:]
with open(starts, "a") as log:
    log.write(arguments[arguments.index("-f") + 1] + "\\n")
try:
    os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
except FileExistsError:
    threading.Event().wait()  # every kernel after the first hangs before its first reply
os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *arguments])
'''


def test_the_batch_watchdog_kills_the_kernel_a_run_took_from_the_spare(tmp_path, monkeypatch):
    # python3 shadowed by a kernel that works the first time and hangs at start after: the
    # second run's kernel is the spare started during the first, so it was there before the
    # run began, and the watchdog must still find and kill it.
    root = tmp_path / "jupyter"
    (root / "kernels" / "python3").mkdir(parents=True)
    (root / "launcher.py").write_text(LAUNCHER)
    (root / "kernels" / "python3" / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, str(root / "launcher.py"), str(root / "first"),
                 str(root / "starts"), "-f", "{connection_file}"],
        "display_name": "first works", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(root))
    events = Events()
    first, second = two_runs_on_one_worker(tmp_path, monkeypatch, events)

    assert first.status == "ok", first.failure
    assert events.pids("warm") == events.pids("spare")[:1]  # the second run took the spare
    assert second.status == "timeout", second.failure
    # Killed by the watchdog (not left to papermill's 60 s start limit), and not started again.
    assert second.failure["error"] == "DeadKernelError", second.failure
    assert second.kernel_restarts == 0
    assert all(_gone(pid) for pid in events.pids("cold") + events.pids("spare"))


def test_a_batch_leaves_no_kernel_behind(tmp_path, monkeypatch):
    mark = f"batch-{os.getpid()}-{id(tmp_path)}"
    monkeypatch.setenv("WARM_KERNEL_TEST", mark)  # inherited by the workers, servers, kernels
    folder = tmp_path / "plan"
    folder.mkdir()
    write_notebook(folder / "who.ipynb", "value = 1", WHO)
    plan = plan_from_dict({"notebook": "who.ipynb", "runs": [{"value": v} for v in range(4)]},
                          base_dir=folder, default_name="who")
    summary = run_batch(plan, output_dir=tmp_path / "out", workers=2, progress="none")

    assert summary.ok, summary.to_text()
    pids = {r.records["pid"] for r in summary.results}
    assert len(pids) == 4  # one kernel per run
    # Every kernel, the workers' unused spares too, ran in the plan's folder: none is left.
    here = str(folder.resolve())
    left = []
    for process in psutil.process_iter(["cwd", "status", "environ", "cmdline"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        # The workers' fork servers too (and the kernels forked from them, whose command
        # line is the server's), which run in a folder of their own.
        ours = (process.info["environ"] or {}).get("WARM_KERNEL_TEST") == mark and any(
            "kernel_forkserver" in part for part in process.info["cmdline"] or [])
        if process.info["cwd"] == here or ours:
            left.append(process.pid)
    assert left == []


def _python(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_running_a_notebook_never_builds_the_iri_grammar(tmp_path, who):
    found = _python(
        "import json, sys\n"
        "from atlassian_playbook.execute import run_notebook\n"
        "from nbconvert import HTMLExporter\n"  # the training build imports it before a run
        f"outcome = run_notebook({str(who)!r}, {str(tmp_path / 'out.ipynb')!r}, {{'value': 1}})\n"
        "stand_in = sys.modules.get('rfc3987_syntax')\n"
        "print(json.dumps({'ok': outcome.ok, 'lark': 'lark' in sys.modules,\n"
        "                  'deferred': getattr(stand_in, '__deferred__', False)}))\n")
    assert found == {"ok": True, "lark": False, "deferred": True}


def test_batch_workers_never_build_the_iri_grammar():
    found = _python(
        "import json\n"
        "from atlassian_playbook.batch.local_pool import LocalPoolExecutor\n"
        "pool = LocalPoolExecutor(workers=1)\n"
        "pool.start()\n"
        "try:\n"
        "    seen = pool._pool.submit(eval, \"[m for m in ('lark', 'papermill', 'nbformat')"
        " if m in __import__('sys').modules]\").result()\n"
        "finally:\n"
        "    pool.shutdown()\n"
        "print(json.dumps({'seen': seen}))\n")
    assert found == {"seen": ["papermill", "nbformat"]}


def test_iri_formats_are_still_checked_once_deferred():
    found = _python(
        "import json, sys\n"
        "from atlassian_playbook import _iri_grammar\n"
        "deferred = _iri_grammar.defer()\n"
        "import jsonschema\n"
        "before = 'lark' in sys.modules\n"
        "check = jsonschema.Draft7Validator({'format': 'iri'},\n"
        "    format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)\n"
        "print(json.dumps({'deferred': deferred, 'before': before,\n"
        "    'good': check.is_valid('https://例え.jp/パス'), 'bad': check.is_valid('no iri'),\n"
        "    'after': 'lark' in sys.modules}))\n")
    assert found == {"deferred": True, "before": False, "good": True, "bad": False,
                     "after": True}


@asynccontextmanager
async def ready_client(manager, **start):
    """``manager``'s kernel started (``start``: start_kernel's arguments), its client ready;
    both stopped after. The bounds only catch a client that never gets ready."""
    await manager.start_kernel(**start)
    client = manager.client()
    client.start_channels()
    try:
        await asyncio.wait_for(client.wait_for_ready(timeout=120), timeout=180)
        yield client
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)


# A kernel whose IOPub is never silent: from its start, a thread prints without pause.
NOISY = ("--IPKernelApp.exec_lines=import threading, time; threading.Thread(target=lambda: "
         "[print('.', end='', flush=True) or time.sleep(0.01) for _ in iter(int, 1)], "
         "daemon=True).start()")


def test_a_kernel_is_ready_at_its_kernel_info_s_idle_not_after_iopub_silence():
    """jupyter_client's client waits for 0.2 s without an IOPub message; against this kernel
    it would wait forever. The runs' client is ready at its kernel_info's idle status, with
    IOPub shown connected: the next request's result arrives."""

    async def ready_then_execute() -> object:
        manager = quick_shutdown_manager()(kernel_name="python3")
        async with ready_client(manager, extra_arguments=[NOISY]) as client:
            request = client.execute("40 + 2")
            while True:
                message = await client.get_iopub_msg(timeout=120)
                if (message["parent_header"].get("msg_id") == request
                        and message["msg_type"] == "execute_result"):
                    return message["content"]["data"]["text/plain"]

    assert asyncio.run(ready_then_execute()) == "42"
