"""``atlassian-playbook init DIR``: a workspace for someone who installed the package only.

What the repository gives a developer, laid down from the installed package::

    DIR/.env                  from the settings example, mode 0600: no credentials yet, so
                              everything runs against the embedded emulator
    DIR/.gitignore            .env, .playbook/ (tokens), output/ kept out of any repository
    DIR/notebooks/NN-*.ipynb  the playbook, in the manifest's order

The notebooks sit in ``notebooks/`` because their ``workspace`` parameter defaults to ``..``:
JupyterLab runs a notebook in its own folder, so ``..`` is DIR, where ``.env`` is, and the
CLI run in DIR (``demo``, ``login``, ``batch --from-store``) uses the same ``.env`` and
``.playbook/``.

Nothing is ever overwritten: an existing ``.env`` is kept (it holds someone's credentials),
a file already identical to the one init would write is left alone, and any other file in
the way stops init before it writes anything, naming the files.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import PlaybookError
from .manifest import ENV_EXAMPLE, notebook_paths

__all__ = ["GITIGNORE", "Workspace", "init_workspace"]

GITIGNORE = """\
# atlassian-playbook workspace (made by `atlassian-playbook init`)
# credentials: never committed
.env
# token store, emulator state, checklist ticks (the playbook's per-workspace state)
.playbook/
# executed notebooks and the rendered site (`atlassian-playbook demo`, `render`, `batch`)
output/
.ipynb_checkpoints/
"""


@dataclass
class Workspace:
    """What :func:`init_workspace` laid down (paths relative to ``folder``)."""

    folder: Path
    made: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # there already: the .env, identical files

    def to_text(self) -> str:
        lines = [f"Workspace: {self.folder}"]
        lines += [f"  made  {name}" for name in self.made]
        lines += [f"  kept  {name} (already there)" for name in self.kept]
        here = Path.cwd().resolve()
        go = [] if self.folder == here else [f"cd {_shown(self.folder, here)}"]
        lab = ["jupyter lab                  # then open notebooks/01-overview.ipynb"]
        if importlib.util.find_spec("jupyterlab") is None:
            lab.insert(0, "pip install 'atlassian-oauth-playbook[lab]'   # JupyterLab")
        if ".env" not in self.kept:
            lines.append(".env has no credentials: everything runs against the embedded "
                         "emulator until notebook 02 (or you) puts your app's client id and "
                         "secret there.")
        lines += [
            "Next:",
            *(f"  {command}" for command in [
                *go,
                "atlassian-playbook demo      # the whole playbook, headless, on the emulator",
                *lab,
                "atlassian-playbook doctor    # once .env holds your app's credentials",
            ]),
        ]
        return "\n".join(lines)


def _shown(folder: Path, here: Path) -> str:
    return str(folder.relative_to(here)) if folder.is_relative_to(here) else str(folder)


def init_workspace(folder: str | Path) -> Workspace:
    """Make ``folder`` a playbook workspace (created if missing); see the module's docstring.

    Raises :class:`PlaybookError` before writing anything when a file in the way differs from
    what init would write, or ``folder`` is not a folder.
    """
    folder = Path(folder).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise PlaybookError(f"{folder} is a file, not a folder.",
                            "Give init a folder (it is created if missing).")
    files: dict[str, bytes] = {
        ".gitignore": GITIGNORE.encode("utf-8"),
        **{f"notebooks/{path.name}": path.read_bytes() for path in notebook_paths()},
    }
    workspace = Workspace(folder)
    in_the_way = []
    for name, content in files.items():
        target = folder / name
        if _parent_is_a_file(target, folder) or target.is_dir():
            in_the_way.append(name)
        elif target.exists():
            if target.read_bytes() == content:
                workspace.kept.append(name)
            else:
                in_the_way.append(name)
    if in_the_way:
        raise PlaybookError(
            f"{folder} already holds {', '.join(in_the_way)}, which init would overwrite.",
            "Move them away (init never overwrites a file), or init another folder: "
            "atlassian-playbook init NEW_FOLDER.",
        )
    env = folder / ".env"
    if env.exists():
        workspace.kept.insert(0, ".env")
    else:
        _create(env, ENV_EXAMPLE.read_bytes(), 0o600)
        workspace.made.append(".env (mode 0600, from the settings example)")
    for name, content in files.items():
        if name not in workspace.kept:
            _create(folder / name, content, 0o644)
            workspace.made.append(name)
    return workspace


def _parent_is_a_file(target: Path, folder: Path) -> bool:
    return any(parent.exists() and not parent.is_dir()
               for parent in target.parents if parent.is_relative_to(folder))


def _create(path: Path, content: bytes, mode: int) -> None:
    """Write a new file, refusing to replace one that appeared meanwhile (``O_EXCL``); the
    mode is set at creation, so a ``.env`` is never readable by others, not even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    os.chmod(path, mode)  # the umask may have narrowed it; never widened past ``mode``
