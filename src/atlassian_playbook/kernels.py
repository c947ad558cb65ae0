"""Kernels for notebook runs: private sockets, a quick shutdown, and a spare kept warm.

A kernel takes about 0.6 s to start and stop, in front of every notebook. Where notebooks run
one after another (``make demo``, the training build, each batch worker), :class:`SpareKernels`
starts the next run's kernel while the current notebook runs, and stops the previous one in
the background, so a run finds its kernel booted. Isolation is kept:

* every run gets a kernel of its own, started for it and never used by another run;
* a spare is used only by a run with the same kernel name, folder, environment and standard
  output/error as the spare was started with; otherwise, or if it died, it is stopped and a
  kernel is started for the run;
* the spare is started only after the current run's kernel answered its first request, so the
  two never race at start, and a run whose kernel never became ready leaves no spare;
* :meth:`SpareKernels.close` stops the spares and waits for every kernel to be gone.

Where it can (Linux), the spares are forked from a :class:`~.kernel_forkserver.ForkServer`
that imported ipykernel and :data:`PRELOAD` once: a kernel then starts in a few hundredths of
a second, with the package its notebook imports first already imported.

All of a kernel manager's own work (start, shutdown) runs on one background thread with its
own event loop; the run's thread only makes the client papermill talks through.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .kernel_client import promptly_ready_client
from .kernel_forkserver import ForkedProcess, ForkServer, ForkServerError, available

__all__ = ["SpareKernels", "WarmKernel", "private_sockets", "quick_shutdown_manager"]

# A Unix socket's path must fit in sun_path (108 bytes on Linux, 104 on macOS).
_SOCKET_PATH_MAX = 100
# What the playbook's notebooks import in their first cell; a forked kernel has it imported.
PRELOAD = ("atlassian_playbook.playbook",)
# What nbclient gives the kernels it starts itself: no history file shared between kernels.
_HISTORY_IN_MEMORY = "--HistoryManager.hist_file=:memory:"


@functools.cache
def quick_shutdown_manager():
    """jupyter_client's kernel manager with a 1 s shutdown grace instead of 5 s.

    Now and then an ipykernel ignores ``shutdown_request`` (its control thread hangs at exit);
    jupyter_client then waits half the grace before SIGTERM. Measured here: 3-20 % of kernels
    stalled 2.6 s at shutdown with the default, none with this. The kernel is still asked
    first and terminated gently, so papermill records the notebook exactly as before.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import Float, default

    class QuickShutdownKernelManager(AsyncKernelManager):
        shutdown_wait_time = Float(1.0, config=True)

        @default("client_factory")
        def _promptly_ready_client(self):
            return promptly_ready_client()

    return QuickShutdownKernelManager


@functools.cache
def _warm_manager():
    """The quick-shutdown manager, remembering the clients made for it (nbclient does not stop
    a client's channels when it did not start the kernel itself)."""

    class WarmKernelManager(quick_shutdown_manager()):
        def client(self, **kwargs: Any):
            made = super().client(**kwargs)
            self.__dict__.setdefault("_clients_made", []).append(made)
            return made

    return WarmKernelManager


@functools.cache
def _forked_provisioner():
    """jupyter_client's local provisioner, forking the kernel from a fork server instead of
    starting a process from scratch (any other command it still starts as before)."""
    from jupyter_client.provisioning import LocalProvisioner

    class ForkedProvisioner(LocalProvisioner):
        forkserver: Any = None

        async def launch_kernel(self, cmd: list[str], **kwargs: Any):
            server = self.forkserver
            if server is None or not server.serves(cmd):
                return await super().launch_kernel(cmd, **kwargs)
            # The server is the kernel's parent: ipykernel's poller watches it, and the
            # server exits with the runner.
            env = {**(kwargs.get("env") or os.environ), "JPY_PARENT_PID": str(server.pid)}
            cwd = kwargs.get("cwd") or os.getcwd()
            try:
                self.process = server.spawn(cmd, env=env, cwd=cwd,
                                            stdout=_descriptor(kwargs.get("stdout"), 1),
                                            stderr=_descriptor(kwargs.get("stderr"), 2))
            except ForkServerError:  # the server died under us: this kernel from scratch
                return await super().launch_kernel(cmd, **kwargs)
            self.pid = self.pgid = self.process.pid  # the child made its own session
            self.cwd = cwd
            return self.connection_info

    return ForkedProvisioner


def _descriptor(stream: Any, inherited: int) -> int:
    return inherited if stream is None else stream if isinstance(stream, int) else stream.fileno()


def _socket_file(folder: str) -> str | None:
    """The connection file for Unix sockets in ``folder``, or None where they cannot be used
    (Windows, a temporary folder too deep for a socket path)."""
    if os.name == "nt":
        return None
    connection_file = os.path.join(folder, "kernel.json")
    return None if len(f"{connection_file}-ipc-99") > _SOCKET_PATH_MAX else connection_file


@contextmanager
def private_sockets() -> Iterator[dict[str, Any]]:
    """papermill arguments that put one kernel's sockets in a folder only this user can open.

    With TCP, jupyter_client picks five free ports, closes them and writes them down; the
    kernel binds them a moment later, and any process on the machine (a parallel kernel start,
    a test server on port 0) may take one in between: the kernel then dies before its first
    reply. Unix sockets in a fresh folder have no such gap, and no other user can connect.
    Where they cannot be used the kernel keeps TCP, and the restart in
    :func:`~atlassian_playbook.execute.run_notebook` covers the race.
    """
    if os.name == "nt":
        yield {}
        return
    from traitlets.config import Config

    with tempfile.TemporaryDirectory(prefix="pbk-", ignore_cleanup_errors=True) as folder:
        connection_file = _socket_file(folder)
        if connection_file is None:
            yield {}
            return
        manager = quick_shutdown_manager().__name__
        yield {"config": Config({manager: {"transport": "ipc",
                                           "connection_file": connection_file}})}


def _stream_identity(fd: int) -> tuple[int, int] | None:
    try:
        found = os.fstat(fd)
    except OSError:
        return None
    return found.st_dev, found.st_ino


@dataclass(frozen=True)
class Launch:
    """What a kernel inherits at start: a spare serves only a run that would start the same."""

    kernel_name: str
    cwd: str
    environ: tuple[tuple[str, str], ...]
    streams: tuple[tuple[int, int] | None, ...]

    @classmethod
    def now(cls, kernel_name: str, cwd: str | Path) -> Launch:
        """The launch a run asking for ``kernel_name`` in ``cwd`` would make at this moment."""
        return cls(kernel_name, str(Path(cwd).resolve()), tuple(sorted(os.environ.items())),
                   (_stream_identity(1), _stream_identity(2)))


@dataclass(eq=False)
class WarmKernel:
    """One started kernel, for one run: hand ``manager`` to papermill as ``km``."""

    manager: Any
    launch: Launch
    folder: str
    pid: int | None = None
    forked: bool = False  # from the fork server, rather than started from scratch
    _stopped: bool = field(default=False, repr=False)

    def alive(self) -> bool:
        process = getattr(self.manager.provisioner, "process", None)
        return process is not None and process.poll() is None


Event = Callable[[str, WarmKernel], object]


class SpareKernels:
    """Kernels for runs one after another, the next one always started ahead.

    Use it as a context manager (or call :meth:`close`) around the runs; pass it to
    :func:`~atlassian_playbook.execute.run_notebook` as ``kernels``. ``on_event(what,
    kernel)`` is told ``"cold"`` (a kernel started for a run that found no usable spare),
    ``"ahead"`` (this run's kernel is ready: the next one is being started, like it),
    ``"spare"`` (that one started), ``"warm"`` (a run took a spare), ``"discarded"`` (a
    spare that died or no longer fits) and ``"stopped"``; from the thread that did it, for
    tests and progress, never for timing.

    ``runs``: how many runs will take a kernel, when known (the training build knows): no
    spare is started that no run would take. ``preload``: what the fork server imports for
    the kernels it forks.
    """

    def __init__(self, on_event: Event | None = None, *, runs: int | None = None,
                 preload: tuple[str, ...] = PRELOAD) -> None:
        self._on_event = on_event
        self._to_come = runs
        self._preload = preload
        self._server: ForkServer | None = None  # made and replaced on the kernel thread
        self._server_failed: str | None = None
        self._lock = threading.Lock()
        self._spares: list[Future[WarmKernel]] = []
        self._in_use: set[WarmKernel] = set()
        self._stopping: set[Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def fork_problem(self) -> str | None:
        """Why spares start from scratch rather than forked, when the fork server failed."""
        return self._server_failed

    # --- for run_notebook -------------------------------------------------------------------

    def take(self, kernel_name: str, cwd: str | Path) -> WarmKernel:
        """A started kernel for one run: the spare if it fits and lives, else a new one."""
        launch = Launch.now(kernel_name, cwd)
        with self._lock:
            if self._closed:
                raise RuntimeError("SpareKernels is closed")
            if self._to_come is not None:
                self._to_come = max(0, self._to_come - 1)
        kernel = None
        while kernel is None:
            with self._lock:
                if not self._spares:
                    break
                spare = self._spares.pop(0)
            try:
                candidate = spare.result()
            except Exception:  # the spare could not even start: try the next, or start one
                continue
            if candidate.launch == launch and candidate.alive():
                kernel = candidate
            else:
                self._event("discarded", candidate)
                self._stop_later(candidate, now=True)
        if kernel is None:
            kernel = self._submit(self._start(launch)).result()
            self._event("cold", kernel)
        else:
            self._event("warm", kernel)
        with self._lock:
            self._in_use.add(kernel)
        return kernel

    def ready(self, kernel: WarmKernel) -> None:
        """``kernel`` answered its first request: start the next run's spare now, like it."""
        with self._lock:
            if self._closed or kernel not in self._in_use or self._spares or self._to_come == 0:
                return
            self._spares.append(self._submit(self._start(kernel.launch, spare=True)))
        self._event("ahead", kernel)

    def give_back(self, kernel: WarmKernel) -> None:
        """The run is over: stop ``kernel`` in the background (never used again)."""
        for made in kernel.manager.__dict__.pop("_clients_made", []):
            with suppress(Exception):
                made.stop_channels()
        with self._lock:
            self._in_use.discard(kernel)
        self._stop_later(kernel, now=False)

    def kill_in_use(self) -> list[int]:
        """SIGKILL the kernels runs are using now, each with its process group (a watchdog's
        last resort); returns their process ids."""
        with self._lock:
            pids = [k.pid for k in self._in_use if k.pid]
        for pid in pids:
            _kill_group(pid)
        return pids

    # --- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the spare and wait until every kernel started here is stopped."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            spares, self._spares = self._spares, []
            left = list(self._in_use)
            self._in_use.clear()
        if self._loop is None:
            return
        for spare in spares:
            with suppress(Exception):
                self._stop_later(spare.result(), now=True)
        for kernel in left:
            self._stop_later(kernel, now=True)
        while True:
            with self._lock:
                pending = list(self._stopping)
            if not pending:
                break
            for stopping in pending:
                with suppress(Exception):
                    stopping.result()
                with self._lock:
                    self._stopping.discard(stopping)
        loop, self._loop = self._loop, None
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join()
        loop.close()
        if self._server is not None:
            self._server.close()
            self._server = None

    def __enter__(self) -> SpareKernels:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the kernel thread ------------------------------------------------------------------

    def _submit(self, coroutine) -> Future:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever,
                                            name="spare-kernels", daemon=True)
            self._thread.start()
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    async def _start(self, launch: Launch, *, spare: bool = False) -> WarmKernel:
        folder = tempfile.mkdtemp(prefix="pbk-")
        options: dict[str, Any] = {"kernel_name": launch.kernel_name}
        connection_file = _socket_file(folder)
        if connection_file is not None:
            options.update(transport="ipc", connection_file=connection_file)
        manager = _warm_manager()(**options)
        extra = [_HISTORY_IN_MEMORY] if manager.ipykernel else []
        server = await self._forkserver(launch, wait=spare) if manager.ipykernel else None
        if server is not None:
            manager.kernel_id = str(uuid.uuid4())
            manager.provisioner = _forked_provisioner()(
                kernel_id=manager.kernel_id, kernel_spec=manager.kernel_spec, parent=manager)
            manager.provisioner.forkserver = server
        try:
            await manager.start_kernel(cwd=launch.cwd, env=dict(launch.environ),
                                       extra_arguments=extra)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        process = getattr(manager.provisioner, "process", None)
        kernel = WarmKernel(manager, launch, folder, pid=getattr(process, "pid", None),
                            forked=isinstance(process, ForkedProcess))
        if spare:
            self._event("spare", kernel)
        return kernel

    async def _forkserver(self, launch: Launch, *, wait: bool) -> ForkServer | None:
        """The fork server for ``launch``'s environment: started (``wait``: a spare, which has
        the time) or replaced when it no longer fits; None where kernels cannot be forked."""
        environ = dict(launch.environ)
        server = self._server
        if server is not None and (server.environ != environ or not server.alive()):
            self._server = None
            await asyncio.to_thread(server.close)
        if self._server is None and wait and self._server_failed is None and available():
            try:
                self._server = await asyncio.to_thread(
                    ForkServer, sys.executable, environ, self._preload)
            except (ForkServerError, OSError) as exc:  # kernels start from scratch instead
                self._server_failed = str(exc)
        return self._server

    def _stop_later(self, kernel: WarmKernel, *, now: bool) -> None:
        if kernel._stopped:
            return
        kernel._stopped = True
        stopping = self._submit(self._stop(kernel, now=now))
        with self._lock:
            self._stopping.add(stopping)

        def forget(done: Future[None]) -> None:
            with self._lock:
                self._stopping.discard(done)

        stopping.add_done_callback(forget)

    async def _stop(self, kernel: WarmKernel, *, now: bool) -> None:
        manager = kernel.manager
        try:
            if kernel.alive():
                await manager.shutdown_kernel(now=now)
            else:
                await manager.cleanup_resources()
        except Exception:  # cleaned up already (nbclient does when a start fails), or gone
            pass
        finally:
            if kernel.pid and kernel.alive():
                _kill_group(kernel.pid)
            process = getattr(manager.provisioner, "process", None)
            if process is not None:
                with suppress(Exception):
                    process.wait()  # reaped: no zombie left behind
            shutil.rmtree(kernel.folder, ignore_errors=True)
            self._event("stopped", kernel)

    def _event(self, what: str, kernel: WarmKernel) -> None:
        if self._on_event is not None:
            with suppress(Exception):
                self._on_event(what, kernel)


def _kill_group(pid: int) -> None:
    """SIGKILL a kernel and its process group (jupyter_client starts each as a group leader)."""
    with suppress(OSError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
    with suppress(OSError):
        os.kill(pid, signal.SIGKILL)
