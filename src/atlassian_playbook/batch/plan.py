"""The plan: which notebook to run, with which parameter sets (papermill's "what to run").

A plan file (YAML or JSON) names a notebook and its parameter sets::

    name: nightly-health            # output folder name (default: the file's stem)
    notebook: 09-health-check.ipynb # a path relative to the plan, or a name in notebooks/
    timeout: 300                    # per run, seconds (the CLI's --timeout wins)
    parameters:                     # shared by every run
      workspace: ../workspaces/acme
    runs:                           # one run per item, merged over `parameters`
      - account_id: 5b10a2844c20165700ede21g
      - account_id: 5b10ac8d82e05b22cc7d4ef5
    # or, instead of runs: every combination of these lists
    product:
      workspace: [../workspaces/acme, ../workspaces/globex]
      account_id: [""]

Parameters named in ``path_parameters`` (default ``[workspace]``) are paths relative to the
plan file and are made absolute, since the kernel runs in the notebook's folder.

Each run gets an id: a hash of the notebook's bytes and its parameters. ``--resume`` skips a
run whose id already succeeded, so changing the notebook or a parameter reruns it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PlanError, PlaybookError
from ..execute import NOTEBOOKS_DIR, check_parameters

__all__ = [
    "HEALTH_CHECK_NOTEBOOK",
    "Plan",
    "PlanError",
    "RunSpec",
    "load_plan",
    "plan_from_store",
]

HEALTH_CHECK_NOTEBOOK = "09-health-check.ipynb"
_PLAN_KEYS = {"name", "notebook", "timeout", "parameters", "runs", "product", "path_parameters"}


@dataclass(frozen=True)
class RunSpec:
    """One run as the executors see it: picklable, no secret (parameters were checked)."""

    index: int
    run_id: str
    notebook: str  # absolute path
    parameters: dict[str, Any]
    output_path: str  # absolute path of the executed notebook
    timeout: float | None
    entry: str | None = None  # the token-store entry this run refreshes, if any

    @property
    def label(self) -> str:
        return " ".join(f"{k}={_short(v)}" for k, v in self.parameters.items()) or "(defaults)"


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else "…" + text[-39:]


@dataclass
class Plan:
    """A notebook and the parameter sets to run it with."""

    name: str
    notebook: Path
    runs: list[dict[str, Any]]
    timeout: float | None = None
    source: Path | None = None

    def __post_init__(self) -> None:
        if not self.notebook.is_file():
            raise PlanError(f"The plan's notebook {self.notebook} does not exist.",
                            "Give a path relative to the plan file, or a name in notebooks/.")
        if not self.runs:
            raise PlanError(f"The plan {self.name!r} has no runs.",
                            "List parameter sets under `runs:` or lists under `product:`.")
        for number, parameters in enumerate(self.runs, 1):
            try:
                check_parameters(parameters)
            except PlaybookError as error:
                raise PlanError(f"Run {number}: {error.message}", error.hint) from None
        seen: dict[str, int] = {}
        for number, parameters in enumerate(self.runs, 1):
            canonical = _canonical(parameters)
            if canonical in seen:
                raise PlanError(
                    f"Runs {seen[canonical]} and {number} have the same parameters.",
                    "Each run needs its own parameter set; remove the duplicate.",
                )
            seen[canonical] = number

    def specs(self, output_dir: Path, *, timeout: float | None = None) -> list[RunSpec]:
        """The runs, with ids, output paths and the token-store entry each one refreshes."""
        from .workspace import token_entry_key

        digest = hashlib.sha256(self.notebook.read_bytes())
        runs_dir = Path(output_dir).resolve() / "runs"
        specs = []
        for index, parameters in enumerate(self.runs):
            run_hash = digest.copy()
            run_hash.update(_canonical(parameters).encode())
            run_id = run_hash.hexdigest()[:16]
            specs.append(RunSpec(
                index=index,
                run_id=run_id,
                notebook=str(self.notebook),
                parameters=dict(parameters),
                output_path=str(runs_dir / f"{self.notebook.stem}-{run_id}.ipynb"),
                timeout=timeout if timeout is not None else self.timeout,
                entry=token_entry_key(parameters),
            ))
        return specs


def _canonical(parameters: Mapping[str, Any]) -> str:
    return json.dumps(parameters, sort_keys=True, default=str, separators=(",", ":"))


def _read_yaml(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# Plan readers by file suffix.
PLAN_READERS: dict[str, Callable[[Path], Any]] = {
    ".yaml": _read_yaml,
    ".yml": _read_yaml,
    ".json": _read_json,
}


def load_plan(path: str | Path) -> Plan:
    """Read a plan file (YAML or JSON, by suffix)."""
    path = Path(path)
    reader = PLAN_READERS.get(path.suffix.lower())
    if reader is None:
        raise PlanError(f"{path} is not a plan file ({path.suffix or 'no suffix'}).",
                        f"Use one of: {', '.join(PLAN_READERS)}.")
    if not path.is_file():
        raise PlanError(f"The plan {path} does not exist.", "Check the path.")
    try:
        data = reader(path)
    except Exception as error:  # OSError, json's ValueError, yaml.YAMLError
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PlanError(f"The plan {path} cannot be read: {first_line}",
                        "Fix its syntax (YAML or JSON).") from None
    return plan_from_dict(data, base_dir=path.parent, default_name=path.stem, source=path)


def plan_from_dict(data: Any, *, base_dir: Path = Path("."), default_name: str = "batch",
                   source: Path | None = None) -> Plan:
    """Build a plan from its parsed form (what :func:`load_plan` reads)."""
    if not isinstance(data, Mapping):
        raise PlanError("A plan is a mapping with at least `notebook` and `runs` or `product`.")
    unknown = sorted(set(data) - _PLAN_KEYS)
    if unknown:
        raise PlanError(f"Unknown plan key(s): {', '.join(unknown)}.",
                        f"Known keys: {', '.join(sorted(_PLAN_KEYS))}.")
    if not data.get("notebook"):
        raise PlanError("The plan names no notebook.", "Add `notebook: 09-health-check.ipynb`.")
    base = _mapping(data.get("parameters") or {}, "parameters")
    runs_given, product_given = data.get("runs") is not None, data.get("product") is not None
    if runs_given and product_given:
        raise PlanError("The plan has both `runs` and `product`.",
                        "Use one: a list of parameter sets, or lists to combine.")
    if runs_given:
        items = data["runs"]
        if not isinstance(items, list):
            raise PlanError("`runs` must be a list of parameter mappings.")
        runs = [{**base, **_mapping(item or {}, f"runs[{i}]")} for i, item in enumerate(items)]
    elif product_given:
        runs = [{**base, **combo} for combo in _product(_mapping(data["product"], "product"))]
    else:
        runs = [dict(base)]
    path_parameters = data.get("path_parameters", ["workspace"])
    if not isinstance(path_parameters, list):
        raise PlanError("`path_parameters` must be a list of parameter names.")
    base_dir = Path(base_dir).resolve()
    for run in runs:
        for name in path_parameters:
            if isinstance(run.get(name), str) and run[name]:
                run[name] = str((base_dir / Path(run[name]).expanduser()).resolve())
    timeout = data.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                or timeout <= 0):
        raise PlanError(f"`timeout` must be a positive number of seconds, not {timeout!r}.")
    return Plan(
        name=str(data.get("name") or default_name),
        notebook=resolve_notebook(data["notebook"], base_dir),
        runs=runs,
        timeout=timeout,
        source=source,
    )


def resolve_notebook(notebook: str | Path, base_dir: Path = Path(".")) -> Path:
    """A notebook path relative to ``base_dir``, else a name in the project's notebooks/."""
    candidate = (Path(base_dir) / Path(notebook).expanduser()).resolve()
    if candidate.is_file():
        return candidate
    bundled = NOTEBOOKS_DIR / Path(notebook).name
    return bundled.resolve() if bundled.is_file() else candidate


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise PlanError(f"`{where}` must map parameter names to values.")
    return dict(value)


def _product(lists: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    names = list(lists)
    for name in names:
        if not isinstance(lists[name], list) or not lists[name]:
            raise PlanError(f"`product.{name}` must be a non-empty list of values.")
    for values in itertools.product(*(lists[n] for n in names)):
        yield dict(zip(names, values, strict=True))


def plan_from_store(workspaces: Sequence[str | Path], *, notebook: str | Path | None = None,
                    name: str = "health-check") -> Plan:
    """One health-check run per token-store entry of each workspace.

    The health-check notebook refreshes with the workspace's client, so only entries of that
    client are runnable; entries of other clients in a shared store are left out and reported
    by :func:`~.workspace.store_entries`.
    """
    from .workspace import store_entries

    runs: list[dict[str, Any]] = []
    for workspace in workspaces:
        workspace = Path(workspace).expanduser().resolve()
        for entry in store_entries(workspace):
            runs.append({"workspace": str(workspace), "account_id": entry.account_id or ""})
    if not runs:
        raise PlanError(
            "No token-store entries found in "
            + ", ".join(str(Path(w)) for w in workspaces) + ".",
            "Log in first (notebook 04 or `atlassian-playbook login`), or pass --workspace.",
        )
    return Plan(name=name, notebook=resolve_notebook(notebook or HEALTH_CHECK_NOTEBOOK),
                runs=runs)
