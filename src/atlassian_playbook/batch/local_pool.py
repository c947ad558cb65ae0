"""The local executor: a pool of worker processes on this machine.

Each worker imports papermill once (the forkserver preloads it, without the IRI grammar, so
starting 4 workers costs about what starting 1 does) and then runs notebook after notebook,
each in a fresh kernel of its own, the next one started while the current notebook runs.
Workers ignore Ctrl-C: stopping is the runner's decision (it lets running runs finish, since
killing one mid-refresh could lose a rotated refresh token). Their output, and the kernels',
goes to ``workers.log`` in the batch folder instead of the terminal.

A worker that dies (killed, out of memory) breaks a ``ProcessPoolExecutor``: every run in
flight is then reported lost, and the pool is started again for the runs still to go.

A runner that dies, even by SIGKILL, takes its workers and their kernels with it: each worker
holds the read end of a pipe whose only write end is the runner's, and a thread that waits on
it sees end-of-file when the runner is gone (the kernel closes the runner's descriptors, so
this needs no polling and works on any POSIX system). It kills the worker's kernels (each the
leader of its own process group, as jupyter_client starts them) and then the worker. The
forkserver and multiprocessing's resource tracker exit by themselves once no worker holds
their pipes.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection
from pathlib import Path

from .plan import RunSpec
from .results import RunResult
from .task import execute_run, warm_up

__all__ = ["LocalPoolExecutor"]

# The first defers the IRI grammar (its import does only that) before papermill is imported.
_PRELOAD = ["atlassian_playbook.batch._preload", "papermill", "nbclient",
            "atlassian_playbook.batch.task"]


def _init_worker(environ: dict[str, str], cwd: str, log_path: str | None,
                 runner_alive: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with_the_runner, args=(runner_alive,),
                     name="end-with-the-runner", daemon=True).start()
    # A forkserver child inherits the server's environment and folder, which may be older
    # than the runner's: take the runner's, so kernels see the settings the runner sees.
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(cwd)
    if log_path:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    warm_up()


def _end_with_the_runner(runner_alive: Connection) -> None:
    """Block until the runner's end of the pipe is closed (nothing is ever sent), then kill
    this worker's kernels and the worker itself."""
    try:
        while True:
            runner_alive.recv_bytes()
    except (EOFError, OSError):
        pass
    import psutil

    _kill_tree(psutil.Process(), include_root=False)
    os._exit(1)


def _kill_tree(process, *, include_root: bool) -> None:
    """SIGKILL ``process``'s descendants (each kernel with its whole process group) and,
    with ``include_root``, ``process`` itself."""
    import psutil

    try:
        descendants = process.children(recursive=True)
    except psutil.Error:
        descendants = []
    for child in descendants:
        try:
            if os.getpgid(child.pid) == child.pid:  # a kernel: its own group leader
                os.killpg(child.pid, signal.SIGKILL)
            child.kill()
        except (OSError, psutil.Error):  # already gone
            pass
    if include_root:
        try:
            process.kill()
        except psutil.Error:
            pass


class LocalPoolExecutor:
    """``workers`` processes (default: the CPU count), each running one notebook at a time."""

    name = "local"

    def __init__(self, workers: int | None = None, log_dir: str | Path | None = None,
                 **_unused: object) -> None:
        self.capacity = max(1, int(workers or os.cpu_count() or 1))
        self._log_path = str(Path(log_dir) / "workers.log") if log_dir else None
        self.logs = self._log_path or "(worker output not kept)"
        self._pool: ProcessPoolExecutor | None = None
        # The workers' lifeline: they hold the read end, only this process the write end.
        self._alive: tuple[Connection, Connection] | None = None

    def _context(self):
        if "forkserver" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(_PRELOAD)  # ignored if the server already runs
            return context
        return multiprocessing.get_context("spawn")

    def start(self) -> None:
        if self._pool is not None:
            return
        if self._log_path:
            Path(self._log_path).parent.mkdir(parents=True, exist_ok=True)
        if self._alive is None:
            self._alive = multiprocessing.Pipe(duplex=False)
        self._pool = ProcessPoolExecutor(
            self.capacity, mp_context=self._context(), initializer=_init_worker,
            initargs=(dict(os.environ), os.getcwd(), self._log_path, self._alive[0]),
        )
        # Start every worker now, together, rather than one by one as the first runs arrive.
        wait([self._pool.submit(warm_up) for _ in range(self.capacity)])

    def submit(self, spec: RunSpec) -> Future[RunResult]:
        assert self._pool is not None, "start() first"
        try:
            return self._pool.submit(execute_run, spec, watchdog=True, spare_kernel=True)
        except BrokenProcessPool:
            # A worker died earlier; its runs were reported lost. Start a fresh pool.
            broken, self._pool = self._pool, None
            broken.shutdown(wait=False, cancel_futures=True)
            self.start()
            return self._pool.submit(execute_run, spec, watchdog=True, spare_kernel=True)

    def shutdown(self, *, abandon: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            if abandon:
                _kill_workers(pool)
            pool.shutdown(wait=not abandon, cancel_futures=True)
        alive, self._alive = self._alive, None
        if alive is not None:  # after the pool: closing it ends any worker still there
            for end in alive:
                end.close()


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """Stop the workers and their kernels now (a second Ctrl-C)."""
    import psutil

    # ProcessPoolExecutor has no public way to kill its workers before Python 3.14.
    for pid in list(getattr(pool, "_processes", {}) or {}):
        try:
            _kill_tree(psutil.Process(pid), include_root=True)
        except psutil.Error:
            pass
