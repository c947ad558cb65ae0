"""The Dask executor: the same runs, on an existing Dask distributed cluster.

``pip install 'atlassian-oauth-playbook[dask]'`` on the runner's machine and on every worker.
Workers need the package, a Jupyter kernel, read-write access to each run's workspace (its
token store) at the same path as the runner sees it, and the credentials in that workspace's
``.env`` or in their own environment: a plan never carries a secret.

What keeps a token-store entry safe on a cluster:

* The runner submits at most one run per entry at a time (it waits for the result before
  submitting the next run of that entry).
* Inside the task, a ``distributed.Lock`` named after the entry is held for the run, so two
  *batches* sharing a cluster cannot refresh one entry at once either (the store's file lock
  already covers processes on one machine, not several machines).
* Every run is its own task: ``pure=False`` (never deduplicated or taken from a cache), a
  unique key, ``retries=0``.
* Worker loss: the scheduler re-runs a task whose worker died (``allowed-failures``, a
  cluster-wide setting the runner cannot change per task). A run may have rotated a refresh
  token before its worker died, so a second attempt must not refresh again: each task sets a
  ``distributed.Event`` when it starts, and an attempt that finds it set returns ``lost``
  without running. Rerun lost runs with ``--resume`` once the entry is known to be healthy.

The executed notebook travels back in the result and the runner writes it, so workers need no
access to the batch folder. Per-run timeouts are papermill's per-cell limit here (several runs
may share a worker process, so a kernel cannot be told apart for a whole-run watchdog).
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from concurrent.futures import Future
from contextlib import suppress
from typing import Any
from urllib.parse import urlsplit

from ..errors import PlaybookError
from .plan import PlanError, RunSpec
from .results import RunResult, failure

__all__ = ["DaskExecutor", "run_on_worker"]

INSTALL_HINT = ("pip install 'atlassian-oauth-playbook[dask]' (on the runner and on every "
                "worker), or use --executor local.")
# How long to try reaching the scheduler, and to close a client that never connected.
CONNECT_TIMEOUT = 15.0
CLOSE_TIMEOUT = 2.0
# Dask's network transports that take host:port (inproc has no port, ucx needs an extra).
SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
_ADDRESS_HINT = "Pass --scheduler tcp://HOST:PORT (Dask's default port is 8786)."


def scheduler_address(address: str) -> str:
    """``address`` checked for what a Dask client needs: a known scheme (``tcp://`` when
    none is given, as Dask does), a host and a port in 1-65535."""
    text = address.strip()
    url = urlsplit(text if "://" in text else f"tcp://{text}")
    if url.scheme not in SCHEMES:
        raise PlanError(f"The scheduler address {address!r} has an unknown scheme "
                        f"{url.scheme!r}.", f"Use one of {', '.join(s + '://' for s in SCHEMES)}. "
                        + _ADDRESS_HINT)
    try:
        port = url.port
    except ValueError:
        port = -1
    if not url.hostname or url.path not in ("", "/") or url.query or url.fragment:
        raise PlanError(f"The scheduler address {address!r} is not SCHEME://HOST:PORT.",
                        _ADDRESS_HINT)
    if port is None:
        raise PlanError(f"The scheduler address {address!r} has no port.", _ADDRESS_HINT)
    if not 1 <= port <= 65535:
        raise PlanError(f"The scheduler address {address!r} has a port outside 1-65535.",
                        _ADDRESS_HINT)
    return f"{url.scheme}://{url.netloc}"


def _distributed():
    try:
        import distributed
    except ImportError:
        raise PlaybookError("Dask is not installed, so --executor dask is not available.",
                            INSTALL_HINT) from None
    return distributed


@functools.cache
def _client_class(distributed):
    """``distributed.Client``, closing itself when it fails to start.

    A client that cannot connect is left half-built with its event-loop thread running; Dask
    closes it only when it is collected, often at exit, and then waits 30 s for a loop that is
    gone. Closing it at once is quick. ``close()`` skips the loop when the failed start has
    already marked the client closed, so the loop is stopped here too.
    """

    class ClosingClient(distributed.Client):
        def start(self, **kwargs: Any) -> None:
            try:
                super().start(**kwargs)
            except BaseException:
                with suppress(Exception):
                    self.close(timeout=CLOSE_TIMEOUT)
                with suppress(Exception):
                    self._loop_runner.stop(timeout=CLOSE_TIMEOUT)
                raise

    return ClosingClient


def entry_lock_name(entry: str) -> str:
    return "atlassian-playbook-entry-" + hashlib.sha256(entry.encode()).hexdigest()[:24]


def run_on_worker(spec: RunSpec, claim: str) -> RunResult:
    """The task: claim the run, hold the entry's lock, execute, ship the notebook back."""
    from distributed import Event, Lock

    from .task import execute_run

    started = Event(claim)
    if started.is_set():
        return RunResult(
            index=spec.index, run_id=spec.run_id, notebook=spec.notebook.rsplit("/", 1)[-1],
            parameters={}, status="lost", entry=spec.entry,
            failure=failure("WorkerLost", "The worker running this died; Dask scheduled it again.",
                            "Not run a second time: the first attempt may have refreshed the "
                            "token. Check the entry, then rerun with --resume."),
        )
    started.set()
    if spec.entry is None:
        return execute_run(spec, watchdog=False, ship_notebook=True)
    lock = Lock(entry_lock_name(spec.entry))
    wait = spec.timeout or 600
    if not lock.acquire(timeout=wait):
        return RunResult(
            index=spec.index, run_id=spec.run_id, notebook=spec.notebook.rsplit("/", 1)[-1],
            parameters={}, status="failed", entry=spec.entry,
            failure=failure("EntryBusy", f"Another run held this token-store entry for {wait:g} s.",
                            "Another batch is running this entry; rerun with --resume later."),
        )
    try:
        return execute_run(spec, watchdog=False, ship_notebook=True)
    finally:
        lock.release()


class DaskExecutor:
    """Runs on the cluster at ``scheduler`` (an address such as ``tcp://10.0.0.5:8786``), or
    through an existing ``distributed.Client``."""

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 client: Any = None, connect_timeout: float = CONNECT_TIMEOUT,
                 **_unused: object) -> None:
        self._distributed = _distributed()
        if scheduler is None and client is None:
            raise PlanError("--executor dask needs the scheduler's address.",
                            "Pass --scheduler tcp://HOST:8786 (the cluster must already run).")
        self._address = scheduler_address(scheduler) if client is None else scheduler
        self._connect_timeout = connect_timeout
        self._client = client
        self._own_client = client is None
        self._limit = workers
        self.capacity = 1
        self.logs = "(the cluster's worker logs)"
        self._claims: list[str] = []
        self._futures: dict[str, Any] = {}

    def start(self) -> None:
        distributed = self._distributed
        if self._client is None:
            try:
                self._client = _client_class(distributed)(
                    self._address, timeout=self._connect_timeout, set_as_default=False)
            except Exception as error:  # OSError, Dask's TimeoutError, a refused handshake
                raise PlaybookError(
                    f"Cannot reach the Dask scheduler at {self._address}: "
                    + (str(error).splitlines()[0] if str(error) else type(error).__name__),
                    "Check the address and that the scheduler runs (dask scheduler).",
                ) from None
        from .task import warm_up

        try:
            self._client.run(warm_up)  # every worker imports papermill now, once
        except ImportError as error:
            raise PlaybookError(f"A Dask worker cannot import the playbook: {error}",
                                INSTALL_HINT) from None
        threads = sum(self._client.nthreads().values())
        if not threads:
            raise PlaybookError("The Dask cluster has no workers.", "Start some workers.")
        self.capacity = min(self._limit, threads) if self._limit else threads
        self.logs = self._client.dashboard_link or self.logs

    def submit(self, spec: RunSpec) -> Future[RunResult]:
        key = f"atlassian-playbook-run-{spec.run_id}-{uuid.uuid4().hex[:12]}"
        claim = f"{key}-started"
        self._claims.append(claim)
        task = self._client.submit(run_on_worker, spec, claim, key=key, pure=False, retries=0)
        self._futures[key] = task
        bridge: Future[RunResult] = Future()
        bridge.set_running_or_notify_cancel()

        def settle(done) -> None:
            self._futures.pop(key, None)
            try:
                bridge.set_result(done.result())
            except BaseException as error:  # lost, cancelled, or the task raised
                bridge.set_exception(error)

        task.add_done_callback(settle)
        return bridge

    def shutdown(self, *, abandon: bool = False) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if abandon and self._futures:
            # Dask cannot interrupt a running task: it finishes on its worker, unrecorded.
            client.cancel(list(self._futures.values()))
        distributed = self._distributed
        for claim in self._claims:
            try:
                distributed.Event(claim, client=client).clear()
            except Exception:  # the scheduler went away; nothing left to clean
                break
        self._claims.clear()
        if self._own_client:
            client.close()
