"""Kernels forked from a process that has imported them already: a start without the imports.

Most of a kernel's start is imports: Python itself, ipykernel and IPython, then the package
every notebook's first cell imports (about 0.5 s of CPU, for every notebook). The fork server
is one process that imports all of that once, starts no thread, and forks one kernel per run.
The child makes its own session (a process group jupyter_client can signal), takes the run's
standard output and error (passed over the socket, so they are the runner's own), folder and
environment, and starts ipykernel's app as ``python -m ipykernel_launcher`` would.

What stays as with a kernel started from scratch:

* every run gets a fresh process of its own; a fork copies memory, it shares none, so nothing
  one kernel does reaches the server or another kernel;
* the environment the imports ran under is the run's: a server serves only launches with the
  environment it was started with (:class:`~atlassian_playbook.kernels.SpareKernels` checks);
* jupyter_client signals, polls and waits for the kernel through :class:`ForkedProcess`, which
  behaves as the ``Popen`` it would otherwise hold: the server reaps the child and sends its
  exit status, and signals go through a pidfd, so they never reach a reused process id;
* a runner that dies closes the server's standard input: the server exits, and its kernels,
  whose parent then is init, exit as ipykernel's parent poller has them do. The server is the
  runner's as much as its own threads are: killed on its own, its kernels end with it, and
  the runs in them fail as runs whose kernel died (a kernel being started falls back to a
  start from scratch).

Linux only (``os.pidfd_open``, file descriptors passed over a Unix socket); elsewhere, or when
the server cannot start, kernels start as before. The server is this module run as a script:
``python -m atlassian_playbook.kernel_forkserver SOCKET [MODULE ...]``.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

__all__ = ["ForkServer", "ForkServerError", "ForkedProcess", "available"]

# One request or reply per SOCK_SEQPACKET message; an environment fits well within this.
_MESSAGE_MAX = 1 << 20
_LAUNCHER = ["-m", "ipykernel_launcher"]


class ForkServerError(Exception):
    """The fork server could not start, or could not fork a kernel: start it from scratch."""


def available() -> bool:
    """Whether kernels can be forked here (Linux: pidfds and descriptors over sockets)."""
    return sys.platform.startswith("linux") and hasattr(os, "pidfd_open") and hasattr(
        signal, "pidfd_send_signal")


class ForkedProcess:
    """A forked kernel, as jupyter_client's provisioner uses a ``Popen``."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, pidfd: int, connection: socket.socket) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._pidfd = pidfd
        self._connection = connection  # the server sends the exit status on it, then closes

    def poll(self) -> int | None:
        # The pidfd is readable once the process has exited, before the server has reaped it
        # and said how: a kernel dead is dead now, as Popen would find its zombie.
        if self.returncode is None and select.select([self._pidfd], [], [], 0)[0]:
            self._collect()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not select.select([self._connection], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            self._collect()
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            signal.pidfd_send_signal(self._pidfd, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _collect(self) -> None:
        message = self._connection.recv(_MESSAGE_MAX)  # sent as soon as the server reaps
        # No message: the server itself died; its child's status is lost with it.
        self.returncode = json.loads(message)["returncode"] if message else -signal.SIGKILL
        self._connection.close()
        os.close(self._pidfd)


class ForkServer:
    """One fork server process: start it, :meth:`spawn` kernels from it, :meth:`close` it."""

    def __init__(self, python: str, environ: dict[str, str], preload: tuple[str, ...]) -> None:
        """Start the server with ``python`` under ``environ``, importing ``preload`` as well
        as ipykernel; raises :class:`ForkServerError` (with the server's own words) when it
        cannot serve."""
        self.python = python
        self.environ = environ
        self._folder = tempfile.mkdtemp(prefix="pbf-")  # 0700: only this user may connect
        self._address = os.path.join(self._folder, "forks")
        self._process = subprocess.Popen(
            [python, "-m", __name__, self._address, *preload],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environ, cwd=self._folder,
            start_new_session=True)  # a Ctrl-C at the terminal is the runner's to handle
        said = self._process.stdout.readline()
        if said != b"ready\n":
            self.close()
            raise ForkServerError(f"the kernel fork server did not start ({said!r})")

    @property
    def pid(self) -> int:
        return self._process.pid

    def alive(self) -> bool:
        return self._process.poll() is None

    def serves(self, cmd: list[str]) -> bool:
        """Whether ``cmd`` is the command this server stands in for (ipykernel, its Python)."""
        return len(cmd) > 3 and cmd[1:3] == _LAUNCHER and os.path.realpath(
            cmd[0]) == os.path.realpath(self.python)

    def spawn(self, cmd: list[str], *, env: dict[str, str], cwd: str | os.PathLike,
              stdout: int, stderr: int) -> ForkedProcess:
        """Fork a kernel for ``cmd`` (``python -m ipykernel_launcher ARGS``)."""
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            connection.connect(self._address)
            request = {"argv": cmd[3:], "env": env, "cwd": os.fspath(cwd)}
            socket.send_fds(connection, [json.dumps(request).encode()], [stdout, stderr])
            message, fds, _, _ = socket.recv_fds(connection, _MESSAGE_MAX, 1)
        except OSError as exc:
            connection.close()
            raise ForkServerError(f"the kernel fork server is gone ({exc})") from None
        reply = json.loads(message) if message else {"error": "no reply"}
        if "pid" not in reply or len(fds) != 1:
            connection.close()
            for fd in fds:
                os.close(fd)
            raise ForkServerError(f"the kernel fork server could not fork: {reply.get('error')}")
        return ForkedProcess(reply["pid"], fds[0], connection)

    def close(self) -> None:
        """Stop the server (its standard input closes) and remove its socket's folder."""
        if self._process.stdin and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process.stdout.close()
        shutil.rmtree(self._folder, ignore_errors=True)


# --- the server process ---------------------------------------------------------------------


def _serve(address: str, preload: list[str]) -> int:
    import importlib
    import selectors
    import threading

    # As ipykernel_launcher does: no folder of this process on the path; the kernel's shell
    # puts its own working folder there.
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    for name in ["ipykernel.kernelapp", "ipykernel.ipkernel", *preload]:
        try:
            importlib.import_module(name)
        except Exception as exc:  # said to the runner, which starts kernels as before
            print(f"importing {name} failed: {exc.__class__.__name__}: {exc}", flush=True)
            return 1
    if threading.active_count() != 1:
        print("an import started a thread: forking would copy its held locks", flush=True)
        return 1

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(address)
    listener.listen()
    chosen = selectors.DefaultSelector()
    chosen.register(sys.stdin.fileno(), selectors.EVENT_READ, "runner")
    chosen.register(listener, selectors.EVENT_READ, "fork")
    print("ready", flush=True)
    while True:
        for key, _ in chosen.select():
            if key.data == "runner":
                if not os.read(key.fd, 4096):  # the runner closed us, or died
                    return 0
            elif key.data == "fork":
                connection, _ = listener.accept()
                child = _fork(connection)
                if child is not None:
                    chosen.register(child[1], selectors.EVENT_READ, (child[0], connection))
                else:
                    connection.close()
            else:  # a kernel exited: reap it, and tell its runner how
                pid, connection = key.data
                chosen.unregister(key.fd)
                os.close(key.fd)
                _, status = os.waitpid(pid, 0)
                try:
                    connection.send(json.dumps(
                        {"returncode": os.waitstatus_to_exitcode(status)}).encode())
                except OSError:
                    pass  # the runner stopped listening
                connection.close()


def _fork(connection: socket.socket) -> tuple[int, int] | None:
    """Fork a kernel for the request on ``connection``; reply with its pid and a pidfd.
    Returns (pid, the server's own pidfd) or None when nothing was forked."""
    message, fds, _, _ = socket.recv_fds(connection, _MESSAGE_MAX, 2)
    try:
        request = json.loads(message)
        if len(fds) != 2:
            raise ValueError("two descriptors are needed: standard output and error")
    except ValueError as exc:
        for fd in fds:
            os.close(fd)
        connection.send(json.dumps({"error": str(exc)}).encode())
        return None
    started, set_up = os.pipe()
    pid = os.fork()
    if pid == 0:
        _kernel(request, fds, started, set_up)  # never returns
    os.close(set_up)
    for fd in fds:
        os.close(fd)
    ready = os.read(started, 1)  # the child has its own session: jupyter_client may signal it
    os.close(started)
    pidfd = os.pidfd_open(pid)
    if not ready:
        os.waitpid(pid, 0)
        os.close(pidfd)
        connection.send(json.dumps({"error": "the kernel exited while being set up"}).encode())
        return None
    socket.send_fds(connection, [json.dumps({"pid": pid}).encode()], [pidfd])
    return pid, pidfd


def _kernel(request: dict, fds: list[int], started: int, set_up: int) -> None:
    """In the forked child: become the run's kernel, then exit with its status."""
    code = 1
    try:
        os.setsid()
        os.close(started)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        # Nothing of the server's (its socket, selector, other kernels' pidfds) stays open.
        os.closerange(3, set_up)
        os.closerange(set_up + 1, 1 << 16)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [_launcher_path(), *request["argv"]]
        os.write(set_up, b".")
        os.close(set_up)
        from ipykernel import kernelapp

        # Read from the environment when ipykernel was imported, in the server: say it again.
        parent = f"--IPKernelApp.parent_handle={os.environ.get('JPY_PARENT_PID') or 0}"
        kernelapp.launch_new_instance(argv=[*request["argv"], parent])
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _launcher_path() -> str:
    """What ``sys.argv[0]`` is in a kernel started as ``python -m ipykernel_launcher``."""
    import importlib.util

    spec = importlib.util.find_spec("ipykernel_launcher")
    return spec.origin if spec and spec.origin else "ipykernel_launcher"


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1], sys.argv[2:]))
