"""``make demo``: the whole playbook, headless, against the emulator.

Runs the playbook's notebooks (the manifest's sequence) in a fresh workspace (the training
build of :mod:`render`), keeps the executed notebooks in ``output/notebooks/`` and the HTML
rendering in ``output/site/``, and prints each notebook's outcome as it finishes. It runs the
package's notebooks, not a workspace's copies, and never uses the workspace's credentials.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .config import load_settings
from .manifest import notebooks
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
    sys.stdout.flush()
    return 0 if result.ok else 1
