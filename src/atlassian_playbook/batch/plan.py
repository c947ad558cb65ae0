"""The plan: which notebook to run, with which parameter sets (papermill's "what to run").

A plan file (YAML or JSON) names a notebook and its parameter sets::

    name: nightly-health            # output folder name (default: the file's stem)
    notebook: 11-health-check.ipynb # a path relative to the plan, or a playbook notebook's name
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

A plan may come from someone else, so it is checked before anything runs or is written:

* no secret at any depth (papermill writes every parameter into the executed notebook, and the
  runner into ``results.jsonl`` and the summaries): a key named like one, or a value holding a
  secret known to the run (its workspaces' client secrets and stored tokens). The refusal
  names where it is (``runs[3].parameters.opts[0]``), never the value;
* the notebook lies in the plan's folder or among the playbook's notebooks (after following
  symlinks and ``..``; a bare name finds the playbook's in :mod:`~atlassian_playbook.manifest`),
  and the plan's name is one folder name;
* it expands to at most ``max_runs`` runs (:data:`DEFAULT_MAX_RUNS`), counted before a
  ``product`` is expanded.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PlanError, PlaybookError
from ..manifest import NOTEBOOKS_DIR, find_notebook, is_installed_copy
from ..notebook_parameters import check_parameters

__all__ = [
    "DEFAULT_MAX_RUNS",
    "HEALTH_CHECK_NOTEBOOK",
    "Plan",
    "PlanError",
    "RunSpec",
    "load_plan",
    "plan_from_store",
    "check_max_runs",
    "positive_seconds",
]

HEALTH_CHECK_NOTEBOOK = "11-health-check.ipynb"
# More runs than this is most likely a mistake in a `product` (--max-runs raises it).
DEFAULT_MAX_RUNS = 10_000
_SECRET_HINT = ("Remove it from the plan: secrets come from each workspace's .env or the "
                "environment, and papermill writes every parameter into the executed notebook.")
_MIN_CONTAINED = 8  # as redact's registered secrets
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
    # The secrets of workspaces already read by whoever built the plan (plan_from_store), so
    # that checking the runs does not read those folders again; never shown.
    workspace_secrets: Mapping[Path, set[str]] = field(default_factory=dict, repr=False,
                                                       compare=False)

    def __post_init__(self) -> None:
        if not self.notebook.is_file():
            raise PlanError(f"The plan's notebook {self.notebook} does not exist.",
                            "Give a path relative to the plan file, or the name of one of the "
                            "playbook's notebooks (11-health-check.ipynb).")
        if not self.runs:
            raise PlanError(f"The plan {self.name!r} has no runs.",
                            "List parameter sets under `runs:` or lists under `product:`.")
        if is_installed_copy(self.notebook):
            bare = [number for number, run in enumerate(self.runs, 1) if not run.get("workspace")]
            if bare:
                raise PlanError(
                    f"Run {bare[0]} of the plan gives no workspace, and {self.notebook.name} is "
                    "the installed package's copy: its default workspace '..' would be the "
                    "package's own folder.",
                    "Add `workspace: .` under `parameters:` (a path relative to the plan), or "
                    f"run your workspace's copy: `notebook: notebooks/{self.notebook.name}`.",
                )
        check_plan_secrets(self.runs, self._known_secrets())
        seen: dict[str, int] = {}
        for number, parameters in enumerate(self.runs, 1):
            canonical = _canonical(parameters)
            if canonical in seen:
                raise PlanError(
                    f"Runs {seen[canonical]} and {number} have the same parameters.",
                    "Each run needs its own parameter set; remove the duplicate.",
                )
            seen[canonical] = number

    def _known_secrets(self) -> set[str]:
        """The secrets of every workspace the runs may open: each run's ``workspace``, or the
        folder above the notebook's (``playbook.start``'s default), and the current folder
        (the CLI's ``.env``); the environment's too, since it wins over each ``.env``."""
        from .workspace import known_secrets

        folders = {Path.cwd().resolve(), self.notebook.resolve().parent.parent}
        for parameters in self.runs:
            workspace = parameters.get("workspace")
            if isinstance(workspace, str) and workspace:
                folders.add(Path(workspace).expanduser().resolve())
        read = self.workspace_secrets
        return set().union(*(read[folder] if folder in read else known_secrets(folder)
                             for folder in folders))

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


def check_plan_secrets(runs: Sequence[Mapping[str, Any]], known: Iterable[str] = ()) -> None:
    """Refuse a run whose parameters hold a secret anywhere, nested lists and maps included.

    A key named like a secret (the rule of :func:`~atlassian_playbook.execute.check_parameters`),
    or a key or string value holding a ``known`` secret, is refused with its path, never its
    value.
    """
    known = {secret for secret in known if secret}
    for index, parameters in enumerate(runs):
        _check_secrets(parameters, f"runs[{index}].parameters", known)


def _check_secrets(value: Any, path: str, known: set[str]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = str(key)
            if _holds_secret(name, known):
                raise PlanError(f"A key of {path} is a secret known to this run and was refused.",
                                _SECRET_HINT)
            where = f"{path}.{name}" if name.isidentifier() else f"{path}[{name!r}]"
            try:
                check_parameters({name: item})
            except PlaybookError:
                raise PlanError(f"{where} looks like a secret (by its name) and was refused.",
                                _SECRET_HINT) from None
            _check_secrets(item, where, known)
    elif isinstance(value, list | tuple | set | frozenset):
        for position, item in enumerate(value):
            _check_secrets(item, f"{path}[{position}]", known)
    elif isinstance(value, str) and _holds_secret(value, known):
        raise PlanError(f"The value of {path} is a secret known to this run (a client secret or "
                        "a stored token of its workspace) and was refused.", _SECRET_HINT)


def _holds_secret(text: str, known: set[str]) -> bool:
    # Inside a longer text too (a URL, "Bearer ..."), unless the secret is so short that it
    # would match ordinary words: then only the whole value.
    return any(text == secret or (len(secret) >= _MIN_CONTAINED and secret in text)
               for secret in known)


def positive_seconds(value: Any, what: str) -> float:
    """``value`` as a positive, finite number of seconds, else a :class:`PlanError`."""
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or value <= 0):
        shown = repr(value) if isinstance(value, int | float) else f"a {type(value).__name__}"
        raise PlanError(f"{what} must be a positive number of seconds, not {shown}.",
                        f"Give seconds, such as 300; leave {what} out for the default.")
    return float(value)


def check_max_runs(count: int, max_runs: int) -> None:
    """Refuse a plan of more than ``max_runs`` runs (most likely a `product` gone wrong)."""
    if isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1:
        raise PlanError(f"The run limit must be a positive whole number, not {max_runs!r}.",
                        f"Pass --max-runs N with N at least 1 (default {DEFAULT_MAX_RUNS}).")
    if count > max_runs:
        raise PlanError(f"The plan expands to {count} runs, more than the limit of {max_runs}.",
                        "Check its `product` lists, split the plan, or raise the limit with "
                        f"--max-runs {count} (max_runs= in Python).")


def _canonical(parameters: Mapping[str, Any]) -> str:
    return json.dumps(parameters, sort_keys=True, default=str, separators=(",", ":"))


def _syntax_error(path: Path, line: int, column: int, problem: str, hint: str) -> PlanError:
    """Where a plan's syntax breaks (1-based line and column, as editors count) and how to fix
    the usual cause; the parser's own message alone names no place a person can find."""
    return PlanError(f"The plan {path} cannot be read: line {line}, column {column}: {problem}.",
                     f"{hint} Compare with examples/batch-plan.yaml.")


def _read_yaml(path: Path) -> Any:
    import yaml

    text = path.read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        if mark is None:
            raise
        problem = error.problem or error.context or "invalid YAML"
        if error.context and error.context_mark and error.context_mark.line != mark.line:
            problem += f" ({error.context} that starts on line {error.context_mark.line + 1})"
        if "'\\t'" in problem:  # yaml writes the tab it found as '\t'
            hint = "YAML indents with spaces only: replace the tab with spaces."
        elif any(end in problem for end in ("end of stream", "<stream end>")):
            hint = "A quote or bracket opened earlier is never closed: close it."
        else:
            hint = ("Check the indentation there: keys of one mapping start in the same column, "
                    "and a list item's keys line up under its first one.")
        raise _syntax_error(path, mark.line + 1, mark.column + 1, problem, hint) from None


def _read_json(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _syntax_error(path, error.lineno, error.colno, error.msg,
                            "JSON allows no trailing comma, no comment and only double quotes "
                            "(or write the plan in YAML).") from None


# Plan readers by file suffix.
PLAN_READERS: dict[str, Callable[[Path], Any]] = {
    ".yaml": _read_yaml,
    ".yml": _read_yaml,
    ".json": _read_json,
}


def load_plan(path: str | Path, *, max_runs: int = DEFAULT_MAX_RUNS) -> Plan:
    """Read a plan file (YAML or JSON, by suffix); refuse it if it expands to more than
    ``max_runs`` runs."""
    path = Path(path)
    reader = PLAN_READERS.get(path.suffix.lower())
    if reader is None:
        raise PlanError(f"{path} is not a plan file ({path.suffix or 'no suffix'}).",
                        f"Use one of: {', '.join(PLAN_READERS)}.")
    if not path.is_file():
        raise PlanError(f"The plan {path} does not exist (in {Path.cwd()}).",
                        "Check the path, which is relative to this folder; "
                        "examples/batch-plan.yaml shows a plan to start from.")
    try:
        data = reader(path)
    except PlanError:
        raise
    except Exception as error:  # OSError, UnicodeDecodeError, an unmarked yaml.YAMLError
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PlanError(f"The plan {path} cannot be read: {first_line}",
                        "Fix its syntax (YAML or JSON).") from None
    return plan_from_dict(data, base_dir=path.parent, default_name=path.stem, source=path,
                          max_runs=max_runs)


def plan_from_dict(data: Any, *, base_dir: Path = Path("."), default_name: str = "batch",
                   source: Path | None = None, max_runs: int = DEFAULT_MAX_RUNS) -> Plan:
    """Build a plan from its parsed form (what :func:`load_plan` reads); ``base_dir`` is the
    plan's folder."""
    if not isinstance(data, Mapping):
        raise PlanError("A plan is a mapping with at least `notebook` and `runs` or `product`.")
    unknown = sorted(set(data) - _PLAN_KEYS)
    if unknown:
        raise PlanError(f"Unknown plan key(s): {', '.join(unknown)}.",
                        f"Known keys: {', '.join(sorted(_PLAN_KEYS))}.")
    if not data.get("notebook"):
        raise PlanError("The plan names no notebook.", "Add `notebook: 11-health-check.ipynb`.")
    base = _mapping(data.get("parameters") or {}, "parameters")
    runs_given, product_given = data.get("runs") is not None, data.get("product") is not None
    if runs_given and product_given:
        raise PlanError("The plan has both `runs` and `product`.",
                        "Use one: a list of parameter sets, or lists to combine.")
    if runs_given:
        items = data["runs"]
        if not isinstance(items, list):
            raise PlanError("`runs` must be a list of parameter mappings.")
        check_max_runs(len(items), max_runs)
        runs = [{**base, **_mapping(item or {}, f"runs[{i}]")} for i, item in enumerate(items)]
    elif product_given:
        lists = _product_lists(_mapping(data["product"], "product"))
        check_max_runs(math.prod(len(values) for values in lists.values()), max_runs)
        runs = [{**base, **combo} for combo in _product(lists)]
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
    if timeout is not None:
        timeout = positive_seconds(timeout, "`timeout`")
    return Plan(
        name=_folder_name(str(data.get("name") or default_name)),
        notebook=resolve_notebook(data["notebook"], base_dir),
        runs=runs,
        timeout=timeout,
        source=source,
    )


def resolve_notebook(notebook: str | Path, base_dir: Path = Path(".")) -> Path:
    """A notebook path relative to ``base_dir``, else one of the playbook's notebooks by name
    (the installed package's, or a checkout's ``notebooks/``: :mod:`~atlassian_playbook.manifest`).

    Either way it must lie, symlinks and ``..`` followed, inside ``base_dir`` or the
    playbook's notebooks folder: a plan someone sends must not run a notebook from elsewhere
    on the machine.
    """
    base = Path(base_dir).expanduser().resolve()
    candidate = (base / Path(notebook).expanduser()).resolve()
    bundled = find_notebook(notebook)
    if not candidate.is_file() and bundled is not None and bundled.path.is_file():
        candidate = bundled.path.resolve()
    if not any(candidate.is_relative_to(root) for root in (base, NOTEBOOKS_DIR.resolve())):
        raise PlanError(
            f"The notebook {notebook} is outside the plan's folder {base} and the "
            f"playbook's notebooks/ (it resolves to {candidate}).",
            "Put the notebook in the plan's folder (or below it), or name one of the "
            "playbook's notebooks/ (11-health-check.ipynb).",
        )
    return candidate


def _folder_name(name: str) -> str:
    # The name becomes output/batch/<name>/: one plain folder name, not a path.
    if name in (".", "..") or Path(name).name != name or "\\" in name:
        raise PlanError(f"The plan's name {name!r} is not a plain folder name.",
                        "Use letters, digits, dashes or dots, with no slash: it names the "
                        "output folder.")
    return name


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise PlanError(f"`{where}` must map parameter names to values.")
    return dict(value)


def _product_lists(lists: Mapping[str, Any]) -> dict[str, list[Any]]:
    for name, values in lists.items():
        if not isinstance(values, list) or not values:
            raise PlanError(f"`product.{name}` must be a non-empty list of values.")
    return dict(lists)


def _product(lists: Mapping[str, list[Any]]) -> Iterable[dict[str, Any]]:
    names = list(lists)
    for values in itertools.product(*(lists[n] for n in names)):
        yield dict(zip(names, values, strict=True))


def plan_from_store(workspaces: Sequence[str | Path], *, notebook: str | Path | None = None,
                    name: str = "health-check",
                    parameters: Mapping[str, Any] | None = None) -> Plan:
    """One health-check run per token-store entry of each workspace; ``parameters`` are
    shared by every run (as a plan file's, e.g. notebook 11's ``refresh_webhooks``).

    The health-check notebook refreshes with the workspace's client, so only entries of that
    client are runnable; entries of other clients in a shared store are left out and reported
    by :func:`~.workspace.store_entries`.
    """
    from .workspace import StoredWorkspace

    runs: list[dict[str, Any]] = []
    secrets: dict[Path, set[str]] = {}
    for workspace in workspaces:
        workspace = Path(workspace).expanduser().resolve()
        stored = StoredWorkspace(workspace)  # one read of its store and emulator for both
        for entry in stored.runnable_entries():
            runs.append({**(parameters or {}), "workspace": str(workspace),
                         "account_id": entry.account_id or ""})
        secrets[workspace] = stored.secrets()
    if not runs:
        raise PlanError(
            "No token-store entries found in "
            + ", ".join(str(Path(w)) for w in workspaces) + ".",
            "Log in first (notebook 04 or `atlassian-playbook login`), or pass --workspace.",
        )
    return Plan(name=name, notebook=resolve_notebook(notebook or HEALTH_CHECK_NOTEBOOK),
                runs=runs, workspace_secrets=secrets)
