"""The wheel carries the playbook's notebooks and the settings example.

The repository's ``notebooks/`` and ``.env.example`` stay their source (committed, reviewed,
``nbstripout``-ed); a wheel built from the checkout or from its sdist gets a copy inside the
package (``atlassian_playbook/notebooks/``, ``atlassian_playbook/data/env.example``), where
``atlassian_playbook.manifest`` finds them once installed. An editable install copies
nothing: it runs the checkout's files themselves. Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# file or glob in the checkout -> folder in the package
SHIPPED = {"notebooks/*.ipynb": "notebooks", ".env.example": "data"}
RENAMED = {".env.example": "env.example"}  # no hidden file inside the package


class BuildPyWithNotebooks(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        package = Path(self.build_lib) / "atlassian_playbook"
        for pattern, folder in SHIPPED.items():
            sources = sorted(ROOT.glob(pattern))
            if not sources:
                raise SystemExit(f"building the wheel: nothing matches {pattern} in {ROOT}")
            for source in sources:
                target = package / folder / RENAMED.get(source.name, source.name)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)


setup(cmdclass={"build_py": BuildPyWithNotebooks})
