"""``atlassian-playbook init DIR``: the workspace laid down from the installed package.

In process, from the checkout (the package's notebooks are then the checkout's); the built
wheel in a fresh venv does the same in tests/test_wheel.py.
"""

from __future__ import annotations

import ast
import json
import stat
from pathlib import Path

import pytest

from atlassian_playbook.cli import main
from atlassian_playbook.config import load_workspace_settings
from atlassian_playbook.errors import PlaybookError
from atlassian_playbook.manifest import ENV_EXAMPLE, notebooks
from atlassian_playbook.scaffold import init_workspace


def _default_workspace(notebook: Path) -> str:
    cell = next(c for c in json.loads(notebook.read_text())["cells"]
                if "parameters" in c["metadata"].get("tags", []))
    for statement in ast.parse("".join(cell["source"])).body:
        if statement.targets[0].id == "workspace":
            return ast.literal_eval(statement.value)
    raise AssertionError(f"{notebook.name} has no workspace parameter")


def test_init_lays_down_the_notebooks_a_private_env_and_a_gitignore(tmp_path):
    folder = tmp_path / "ws"
    made = init_workspace(folder)

    assert made.folder == folder and made.kept == []
    for entry in notebooks():
        copy = folder / "notebooks" / entry.file
        assert copy.read_bytes() == entry.path.read_bytes()
        # The notebooks' default workspace, seen from their folder (JupyterLab's cwd), is DIR.
        assert (copy.parent / _default_workspace(copy)).resolve() == folder.resolve()
    env = folder / ".env"
    assert env.read_bytes() == ENV_EXAMPLE.read_bytes()
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    settings = load_workspace_settings(folder)
    assert not settings.has_credentials  # the emulator until real credentials are put there
    ignored = (folder / ".gitignore").read_text().splitlines()
    assert {".env", ".playbook/", "output/"} <= set(ignored)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) \
        == sorted([".env", ".gitignore", *(f"notebooks/{nb.file}" for nb in notebooks())])


def test_init_keeps_an_existing_env_and_is_idempotent(tmp_path):
    (tmp_path / ".env").write_text("ATLASSIAN_CLIENT_ID='mine'\n")
    (tmp_path / ".env").chmod(0o640)
    first = init_workspace(tmp_path)
    assert first.kept == [".env"] and ".gitignore" in first.made

    again = init_workspace(tmp_path)
    assert again.made == [] and len(again.kept) == len(notebooks()) + 2
    assert (tmp_path / ".env").read_text() == "ATLASSIAN_CLIENT_ID='mine'\n"
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o640  # not ours to change
    assert "notebook 02 (or you)" not in again.to_text()  # its .env may hold credentials


@pytest.mark.parametrize("in_the_way", [".gitignore", "notebooks/05-verify-access.ipynb",
                                        "notebooks"])
def test_init_refuses_to_overwrite_a_file_and_writes_nothing(tmp_path, in_the_way):
    (tmp_path / in_the_way).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / in_the_way).write_text("my own file\n")

    with pytest.raises(PlaybookError) as refused:
        init_workspace(tmp_path)

    assert in_the_way in refused.value.message and "would overwrite" in refused.value.message
    assert "Move them away" in refused.value.hint and "init NEW_FOLDER" in refused.value.hint
    assert (tmp_path / in_the_way).read_text() == "my own file\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        Path(in_the_way).parts)  # not even the .env


def test_init_refuses_a_file_as_the_folder(tmp_path):
    (tmp_path / "ws").write_text("")
    with pytest.raises(PlaybookError, match="is a file, not a folder"):
        init_workspace(tmp_path / "ws")


def test_the_init_command_prints_what_it_made_and_the_next_commands(tmp_path, monkeypatch,
                                                                   capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "ws"]) == 0
    out = capsys.readouterr().out
    assert f"Workspace: {tmp_path / 'ws'}" in out
    assert "made  .env (mode 0600" in out and "made  notebooks/01-overview.ipynb" in out
    next_steps = out.split("Next:\n", 1)[1].splitlines()
    assert next_steps[0].strip() == "cd ws"
    assert next_steps[1].split("#")[0].strip() == "atlassian-playbook demo"
    assert any(line.split("#")[0].strip() == "jupyter lab" for line in next_steps)

    assert main(["init", "ws"]) == 0  # again: everything kept, nothing overwritten
    (tmp_path / "ws" / ".gitignore").write_text("mine\n")
    assert main(["init", "ws"]) == 1
    assert "error: " in capsys.readouterr().err


def test_without_jupyterlab_the_next_steps_say_how_to_get_it(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "jupyterlab" else real(name, *args))
    shown = init_workspace(tmp_path).to_text()
    assert "pip install 'atlassian-oauth-playbook[lab]'" in shown
    monkeypatch.undo()
    assert "pip install" not in init_workspace(tmp_path).to_text()
