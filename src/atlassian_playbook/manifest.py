"""The playbook's notebooks: which, in what order, and where they are on this machine.

The sequence is data (``data/notebooks.toml``, shipped in the wheel), read here and nowhere
else: render and demo run it in order, batch finds its bundled notebooks by name, ``init``
copies it into a workspace, notebook 01 shows it as a table, and the tests check every
notebook against it (files, titles, parameters, records, "Next:" links). A tenth notebook is
one file and one entry, not a hunt through globs and hand-written lists.

Where the notebooks are: an installed wheel carries them inside the package
(``atlassian_playbook/notebooks/``, copied from the repository's ``notebooks/`` at build time
by ``setup.py``); a checkout (an editable install, or ``src`` on ``PYTHONPATH``) has no such
copy and uses ``notebooks/`` itself, the source, so an edit there is what runs. The same goes
for the settings example that ``init`` turns into a workspace's ``.env``.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import PlaybookError

__all__ = [
    "NOTEBOOKS_DIR",
    "ENV_EXAMPLE",
    "Parameter",
    "PlaybookNotebook",
    "notebooks",
    "find_notebook",
    "notebook_paths",
    "is_installed_copy",
]

_PACKAGE = Path(str(resources.files("atlassian_playbook")))
_CHECKOUT = _PACKAGE.parents[1]  # src/atlassian_playbook -> the repository's root


def _shipped(in_package: str, in_checkout: str) -> Path:
    """The wheel's copy when the package carries one, else the checkout's source file."""
    packaged = _PACKAGE / in_package
    return packaged if packaged.exists() else _CHECKOUT / in_checkout


NOTEBOOKS_DIR: Path = _shipped("notebooks", "notebooks")
ENV_EXAMPLE: Path = _shipped("data/env.example", ".env.example")


@dataclass(frozen=True)
class Parameter:
    """One papermill parameter of a notebook: its default and what it means."""

    name: str
    default: Any
    meaning: str


@dataclass(frozen=True)
class PlaybookNotebook:
    """One notebook of the sequence, as the manifest describes it."""

    position: int  # 1 for the first notebook
    file: str  # 01-overview.ipynb
    title: str  # the heading without its "N · " number
    summary: str  # what a person gets from it, one line
    records: tuple[str, ...]  # the names it record()s
    parameters: tuple[Parameter, ...]  # in the order of its parameters cell

    @property
    def name(self) -> str:
        """The file's stem (``01-overview``), as links and batch plans name it."""
        return Path(self.file).stem

    @property
    def path(self) -> Path:
        """Where it is on this machine (in the installed package, or the checkout)."""
        return NOTEBOOKS_DIR / self.file

    @property
    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.parameters}

    def declares(self, parameter: str) -> bool:
        return any(p.name == parameter for p in self.parameters)


@functools.cache
def notebooks() -> tuple[PlaybookNotebook, ...]:
    """The sequence in order, from the manifest the package ships."""
    text = resources.files("atlassian_playbook").joinpath("data/notebooks.toml").read_text(
        encoding="utf-8"
    )
    entries = tomllib.loads(text)["notebooks"]
    return tuple(
        PlaybookNotebook(
            position=position,
            file=entry["file"],
            title=entry["title"],
            summary=entry["summary"],
            records=tuple(entry["records"]),
            parameters=tuple(
                Parameter(name, spec["default"], spec["meaning"])
                for name, spec in entry.get("parameters", {}).items()
            ),
        )
        for position, entry in enumerate(entries, 1)
    )


def find_notebook(name: str | Path) -> PlaybookNotebook | None:
    """The sequence's notebook called ``name`` (``11-health-check`` or its file name)."""
    wanted = Path(name).name
    return next((nb for nb in notebooks() if wanted in (nb.file, nb.name)), None)


def notebook_paths() -> list[Path]:
    """Every notebook of the sequence on this machine, in order; refused if one is missing.

    Only a broken install (or a checkout missing a file) gets here without them: the wheel
    carries the notebooks, and a checkout's ``notebooks/`` is their source.
    """
    paths = [nb.path for nb in notebooks()]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise PlaybookError(
            f"The playbook's notebooks {', '.join(missing)} are not in {NOTEBOOKS_DIR}.",
            "Reinstall atlassian-oauth-playbook (its wheel carries the notebooks); in a "
            "checkout, restore notebooks/ with git.",
        )
    return paths


def is_installed_copy(notebook: str | Path) -> bool:
    """True for a notebook inside the installed package (the wheel's copy).

    Run there, a notebook's default ``workspace = ".."`` is the package's own folder, not
    anyone's workspace: a runner must pass a workspace. A checkout's ``notebooks/`` is not in
    the package, so its ``..`` stays the repository's root, as before.
    """
    return Path(notebook).resolve().is_relative_to(_PACKAGE.resolve())
