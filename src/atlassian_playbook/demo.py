"""``make demo``: the whole playbook, headless, against the emulator.

Runs the playbook's notebooks (the manifest's sequence) in a fresh workspace (the training
build of :mod:`render`), keeps the executed notebooks in ``output/notebooks/`` and the HTML
rendering in ``output/site/``, and prints each notebook's outcome as it finishes. It runs the
package's notebooks, not a workspace's copies, and never uses the workspace's credentials.
When it passes it ends with the next three things to do (a new user asked "now what?"): read
the site, run the notebooks in JupyterLab, connect a real app.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

from .config import load_settings
from .manifest import notebooks
from .profiles import DEFAULT_PROFILE
from .render import RenderedPage, render_playbook

__all__ = ["run_demo"]


def run_demo(output_dir: str | Path = "output", env_file: str | Path = ".env") -> int:
    out = Path(output_dir)
    if load_settings(env_file, validate=False).has_credentials:
        print("Credentials found in .env: the demo still runs against the emulator, since a "
              "headless run has no one to consent. Use the notebooks in JupyterLab or "
              "`atlassian-playbook login` for your real app.")
    sequence = notebooks()
    print(f"Running the playbook ({len(sequence)} notebooks, {sequence[0].name} to "
          f"{sequence[-1].name}) headless against the embedded emulator:")

    def progress(page: RenderedPage) -> None:
        took = f"{page.seconds:5.1f} s" if page.seconds is not None else ""
        print(f"  {page.status:>6}  {page.notebook:<28} {took}", flush=True)
        if page.error:
            print(f"          {page.error}\n          hint: {page.hint}", flush=True)

    result = render_playbook(out / "site", executed_dir=out / "notebooks", on_page=progress)
    print(f"Executed notebooks: {(out / 'notebooks').resolve()}")
    print(f"HTML rendering:     {result.index.resolve()}")
    print("Playbook passed." if result.ok else "Playbook FAILED (see above).")
    if result.ok:
        print(next_steps(result.index.resolve(), Path(env_file)))
    sys.stdout.flush()
    return 0 if result.ok else 1


def next_steps(site: Path, env_file: Path) -> str:
    """What to do after the demo, as commands this shell can run (after ``make demo`` the
    virtualenv is not activated, so its scripts are named by path)."""
    workspace = env_file.parent
    if any(workspace.joinpath("notebooks").glob("*.ipynb")):  # the clone, or an init'ed folder
        stay = workspace.resolve() == Path.cwd().resolve()
        playbook, jupyter = (_command(name, relative=stay)
                             for name in ("atlassian-playbook", "jupyter"))
        go, settings, there = ("" if stay else f"`cd {workspace}`, "), env_file, ""
    else:  # no notebooks here: a workspace first, where the real app's .env goes too
        playbook, jupyter = (_command(name, relative=False)
                             for name in ("atlassian-playbook", "jupyter"))
        go = f"`{playbook} init playbook` (a workspace: notebooks/, .env), `cd playbook`, "
        settings, there = Path("playbook", ".env"), " in that folder"
    lab = f"`{jupyter} lab notebooks/`"
    if not importlib.util.find_spec("jupyterlab"):
        lab = f"`pip install 'atlassian-oauth-playbook[lab]'`, then {lab}"
    return "\n".join([
        "",
        "Next:",
        f"1. Read the training site: open {site} in a browser.",
        f"2. Run the notebooks yourself: {go}{lab}, and open 01-overview.ipynb.",
        f"3. Connect your real app: `{playbook} checklist --profile {DEFAULT_PROFILE}` lists "
        "the developer-console steps (`profiles list` for a partner's); put the app's "
        f"ATLASSIAN_CLIENT_ID and ATLASSIAN_CLIENT_SECRET in {settings}, then "
        f"`{playbook} login`{there}.",
    ])


def _command(name: str, *, relative: bool) -> str:
    """``name`` when the shell finds this environment's script by it, else the script's path
    (relative to here when ``relative`` and below this folder)."""
    script = Path(sys.executable).parent / name
    found = shutil.which(name)
    if not script.exists() or (found and Path(found).resolve() == script.resolve()):
        return name
    shorter = os.path.relpath(script)
    return shorter if relative and not shorter.startswith("..") else str(script)
