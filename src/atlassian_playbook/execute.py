"""Run one notebook with parameters, safely: the single papermill seam of the project.

Tests, ``make demo``, ``render`` and the batch runner all go through :func:`run_notebook`, so
every run gets the same guarantees:

* a secret is never accepted as a parameter (papermill writes parameters into the output);
* widget state is not saved into the executed notebook (nbclient would, by default);
* the executed notebook is scrubbed of any known secret before it stays on disk;
* a failure comes back as :class:`RunFailure` with the failing cell and the hint it printed;
* the kernel has no TCP port another process could take while it starts, and a kernel that
  dies before its first reply anyway is started again, once (``RunOutcome.kernel_restarts``);
* with ``kernels`` (:class:`~atlassian_playbook.kernels.SpareKernels`), the run takes a kernel
  started ahead for it, and the next run's is started while this one runs.

papermill is imported here, lazily, and only once per process.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _iri_grammar
from ._files import atomic_write_text
from .kernel_client import DIED_AT_START
from .kernels import SpareKernels, WarmKernel, private_sockets, quick_shutdown_manager
from .manifest import NOTEBOOKS_DIR
from .notebook_parameters import check_parameters
from .records import read_records
from .redact import redact, register_secret

# Whoever imports this module runs notebooks, and may import nbformat (nbconvert, papermill)
# next: the IRI grammar jsonschema would build then is deferred to its first use (1.3 s).
_iri_grammar.defer()

__all__ = ["RunFailure", "RunOutcome", "check_parameters", "run_notebook", "NOTEBOOKS_DIR"]


@dataclass
class RunFailure:
    """Where and why a run stopped, in words a person can act on (no secret).

    ``cell_index`` counts the cells papermill executed (the injected-parameters cell included,
    its two error banner cells not); ``execution_count`` and ``source`` (the cell's first line)
    are what a person sees in the executed notebook: ``In [5]: pb.exchange_tokens(...)``.
    """

    cell_index: int | None
    ename: str
    evalue: str
    hint: str | None = None
    execution_count: int | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"cell": self.cell_index, "error": self.ename, "message": self.evalue,
                "hint": self.hint, "execution_count": self.execution_count,
                "source": self.source}


@dataclass
class RunOutcome:
    notebook: str
    output_path: Path
    parameters: dict[str, Any]
    records: dict[str, Any] = field(default_factory=dict)
    failure: RunFailure | None = None
    kernel_restarts: int = 0  # kernels that died before their first reply and were replaced

    @property
    def ok(self) -> bool:
        return self.failure is None


class _KernelDiedAtStart(Exception):
    pass


def _hint_of(evalue: str) -> tuple[str, str | None]:
    message, sep, hint = evalue.partition(" Hint: ")
    return (message, hint) if sep else (evalue, None)


def run_notebook(
    notebook: str | Path,
    output_path: str | Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    cwd: str | Path | None = None,
    timeout: float | None = 600,
    kernel_name: str = "python3",
    known_secrets: Iterable[str] = (),
    progress_bar: bool = False,
    may_restart: Callable[[], bool] | None = None,
    kernels: SpareKernels | None = None,
) -> RunOutcome:
    """Execute ``notebook`` into ``output_path`` with ``parameters``; never raises on a cell error.

    ``notebook`` is a path, or a bare name looked up among the playbook's notebooks (the
    installed package's, or a checkout's ``notebooks/``: :mod:`~atlassian_playbook.manifest`). The
    kernel runs in ``cwd`` (default: the notebook's folder, as in JupyterLab).
    A kernel that dies before its first reply is started again once, unless ``may_restart``
    (asked then) says no: the batch watchdog does once it has killed that kernel itself.
    ``kernels``: where notebooks run one after another, the spare kernels to take this run's
    kernel from (a fresh one still, used by this run alone).
    """
    source = Path(notebook)
    if not source.exists():
        for candidate in (NOTEBOOKS_DIR / source, NOTEBOOKS_DIR / f"{source}.ipynb"):
            if candidate.exists():
                source = candidate
                break
    parameters = dict(parameters or {})
    known = list(known_secrets)
    for secret in known:
        register_secret(secret)
    check_parameters(parameters, known)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)

    restarts = 0
    while True:
        try:
            failure = _execute(source, output_path, parameters, cwd=cwd or source.parent,
                               timeout=timeout, kernel_name=kernel_name,
                               progress_bar=progress_bar, kernels=kernels)
        except _KernelDiedAtStart:
            if restarts == 0 and (may_restart is None or may_restart()):
                restarts += 1
                continue
            failure = RunFailure(
                None, "DeadKernelError",
                f"The {kernel_name!r} kernel exited before it answered its first request"
                + (", twice (it was started again once, on fresh sockets)." if restarts else "."),
                f"Start it by hand to see why: its command is in `jupyter kernelspec list` "
                f"({kernel_name}); for ipykernel, `python -m ipykernel_launcher`.",
            )
        break

    records: dict[str, Any] = {}
    if output_path.exists():
        text = output_path.read_text(encoding="utf-8")
        scrubbed = redact(text, shapes=False)
        if scrubbed != text:
            atomic_write_text(output_path, scrubbed, mode=0o644)
        records = read_records(json.loads(scrubbed))
    return RunOutcome(str(source.name), output_path, parameters, records, failure, restarts)


def _execute(source: Path, output_path: Path, parameters: dict[str, Any], *, cwd: str | Path,
             timeout: float | None, kernel_name: str, progress_bar: bool,
             kernels: SpareKernels | None) -> RunFailure | None:
    """One papermill run in one kernel; raises :class:`_KernelDiedAtStart` if no cell ran
    because the kernel died first."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    kernel: WarmKernel | None = None
    try:
        if kernels is None:
            with private_sockets() as sockets:
                papermill.execute_notebook(
                    str(source), str(output_path), parameters=parameters, cwd=str(cwd),
                    kernel_name=kernel_name, execution_timeout=timeout,
                    progress_bar=progress_bar, store_widget_state=False,
                    kernel_manager_class=quick_shutdown_manager(), **sockets,
                )
        else:
            kernel = kernels.take(kernel_name, cwd)
            warm = kernel
            papermill.execute_notebook(
                str(source), str(output_path), parameters=parameters, cwd=str(cwd),
                kernel_name=kernel_name, execution_timeout=timeout,
                progress_bar=progress_bar, store_widget_state=False, km=kernel.manager,
                # nbclient calls this once the kernel answered: the next one starts then.
                on_notebook_start=lambda **_: kernels.ready(warm),
            )
    except PapermillExecutionError as error:
        message, hint = _hint_of(redact(error.evalue))
        first_line = redact((error.source or "").strip().splitlines()[0]) if error.source else None
        return RunFailure(error.cell_index, error.ename, message, hint,
                          error.exec_count, first_line)
    except Exception as error:  # kernel died, timeout, bad notebook: still a recorded failure
        if isinstance(error, RuntimeError) and DIED_AT_START in str(error):
            raise _KernelDiedAtStart from error
        message, hint = _hint_of(redact(str(error)))
        return RunFailure(None, type(error).__name__, message, hint)
    finally:
        if kernel is not None:
            kernels.give_back(kernel)
    return None
