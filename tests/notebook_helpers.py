"""Running the playbook's notebooks headless in tests: real papermill, real kernels.

Every run goes through :func:`atlassian_playbook.execute.run_notebook` (the project's one
papermill seam) in a workspace of its own, with no ``ATLASSIAN_*`` variable of the developer's
shell reaching the kernel. Secrets are read back from the files that may hold them as raw JSON,
never through ``Secret``: creating a ``Secret`` here would register it with the redaction of
this process, and ``run_notebook`` would then scrub it from the executed notebooks, hiding the
very leak the scan looks for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values

from atlassian_playbook.emulator import Emulator, read_state
from atlassian_playbook.execute import RunOutcome, run_notebook
from atlassian_playbook.kernels import SpareKernels
from atlassian_playbook.manifest import notebooks

from .conftest import free_port

SEQUENCE = tuple(nb.name for nb in notebooks())  # the manifest's order: 01-overview, ...
CLERK_CALLBACK = "https://accounts.example-clerk.dev/v1/oauth_callback"
MERGE_CALLBACK = "https://app.merge.dev/oauth/callback"

# Per profile, the parameters a user would set; everything else stays at its default.
PROFILE_PARAMETERS: dict[str, dict[str, dict[str, Any]]] = {
    "custom": {},
    "merge": {
        "02-create-app": {
            "profile": "merge",
            "completed_steps": "all",
            "app_name": "Acme Sync",
            "vendor_name": "Acme Ltd",
            "privacy_policy_url": "https://acme.example/privacy",
        },
    },
    "clerk": {
        "02-create-app": {
            "profile": "clerk",
            "callback_url": CLERK_CALLBACK,
            "completed_steps": "clerk-redirect-uri create-app",
        },
    },
}


@contextmanager
def clean_environ() -> Iterator[None]:
    """No ATLASSIAN_* setting (token store included) leaks into the kernels started inside."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("ATLASSIAN_"):
                mp.delenv(name)
        yield


def new_workspace(path: Path, *, register: bool = True, **settings: str) -> Path:
    """A workspace with a .env holding ``settings`` and, unless given, a loopback callback on
    a free port (so concurrent test workers never fight over 127.0.0.1:8765).

    ``register``: add that callback on the workspace's emulated app, as notebook 02 (the
    console's Authorization tab) does; off for runs that go through notebook 02 themselves.
    """
    path.mkdir(parents=True, exist_ok=True)
    settings.setdefault("ATLASSIAN_REDIRECT_URI", f"http://127.0.0.1:{free_port()}/callback")
    lines = "".join(f"{key}='{value}'\n" for key, value in settings.items())
    (path / ".env").write_text(lines)
    if register:
        register_callback(path, settings["ATLASSIAN_REDIRECT_URI"])
    return path


def register_callback(workspace: Path, uri: str) -> None:
    """Add ``uri`` to the callback URLs of the workspace's emulated app."""
    Emulator(state_path=workspace / ".playbook" / "emulator-state.json").add_callback_url(uri)


def run(name: str, workspace: Path, *, kernels: SpareKernels | None = None,
        **parameters: Any) -> RunOutcome:
    """One headless run of ``name`` in ``workspace``; the executed copy goes to ``out/``.
    ``kernels``: the spare kernels of a sequence (each run still gets a fresh kernel)."""
    with clean_environ():
        return run_notebook(
            f"{name}.ipynb",
            workspace / "out" / f"{name}.ipynb",
            {"workspace": str(workspace), **parameters},
            timeout=120,
            kernels=kernels,
        )


def store_path(workspace: Path) -> Path:
    return workspace / ".playbook" / "tokens.json"


def tokens_in_store(workspace: Path) -> set[str]:
    """Every access and refresh token in the workspace's token store (raw JSON)."""
    path = store_path(workspace)
    if not path.exists():
        return set()
    entries = json.loads(path.read_text())["entries"].values()
    return {
        value
        for entry in entries
        for key in ("access_token", "refresh_token")
        if (value := entry["tokens"].get(key))
    }


def client_secrets_in_state(workspace: Path) -> set[str]:
    """The emulated apps' client secrets, from the emulator's state file."""
    path = workspace / ".playbook" / "emulator-state.json"
    if not path.exists():
        return set()
    return {c["client_secret"] for c in read_state(path)["clients"].values()}


def env_values(workspace: Path) -> dict[str, str | None]:
    return dotenv_values(workspace / ".env")


@dataclass
class Played:
    """A whole headless sequence: each notebook's outcome, and every secret seen on the way."""

    profile: str
    workspace: Path
    env_before: str
    outcomes: dict[str, RunOutcome] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)

    def records(self, name: str) -> dict[str, Any]:
        """What ``name`` recorded; fails the test with the reason when it did not complete."""
        outcome = self.outcomes.get(name)
        if outcome is None or not outcome.ok:
            stopped = next((n for n, o in self.outcomes.items() if not o.ok), None)
            failure = self.outcomes[stopped].failure.to_dict() if stopped else None
            pytest.fail(
                f"{self.profile}: {name} did not complete; the sequence stopped at "
                f"{stopped}: {failure}"
            )
        return outcome.records


def play(profile: str, workspace: Path) -> Played:
    """Run the sequence for ``profile``, one fresh kernel per notebook, stopping at the first
    failure; as in the demo, each next kernel starts while the current notebook runs.

    Tokens are collected after every run: refreshes rotate them out of the store, and a
    rotated token leaking into an earlier notebook must still be caught.
    """
    new_workspace(workspace, register=False)  # notebook 02 registers the callback
    played = Played(profile, workspace, (workspace / ".env").read_text())
    with clean_environ(), SpareKernels(runs=len(SEQUENCE)) as kernels:
        for name in SEQUENCE:
            outcome = run(name, workspace, kernels=kernels,
                          **PROFILE_PARAMETERS[profile].get(name, {}))
            played.outcomes[name] = outcome
            played.secrets |= tokens_in_store(workspace) | client_secrets_in_state(workspace)
            if not outcome.ok:
                break
    return played


def failing_cell(outcome: RunOutcome) -> dict[str, Any]:
    """The executed notebook's cell where the run stopped."""
    assert outcome.failure is not None, "the run was expected to fail"
    cells = json.loads(outcome.output_path.read_text())["cells"]
    index = outcome.failure.cell_index
    assert index is not None, outcome.failure
    # The failure's index counts the cells papermill executed; in the executed notebook
    # papermill then adds two "papermill-error-cell-tag" Markdown cells: a banner first and an
    # anchor right before the failing cell.
    original = [c for c in cells if "papermill-error-cell-tag" not in c["metadata"].get("tags", [])]
    cell = original[index]
    errors = [
        c for c in cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))
    ]
    assert errors == [cell], "the failing cell is the one cell with an error output"
    return cell


def cell_source(cell: dict[str, Any]) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def cell_text(cell: dict[str, Any]) -> str:
    """Everything a person sees in a cell's outputs: errors, text, HTML and Markdown."""
    parts: list[str] = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            parts += [output["ename"], output["evalue"]]
        for key in ("text",):
            if key in output:
                parts.append("".join(output[key]))
        for mime in ("text/plain", "text/markdown", "text/html"):
            value = output.get("data", {}).get(mime)
            if value:
                parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)
