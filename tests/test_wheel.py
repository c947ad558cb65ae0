"""What someone without the repository gets: the built wheel in a fresh virtual environment.

Once per test run (a module fixture, ``wheel`` marker: ``-m "not wheel"`` leaves it out, and
``make test`` runs it): the checkout is copied, built with ``python -m build`` (an sdist, then
the wheel from that sdist, as an index would serve them), the copy deleted, and the wheel
installed with its ``lab`` extra into a new venv outside the checkout. Every command then runs
from a folder outside the checkout, with no ``PYTHONPATH``, no ``VIRTUAL_ENV`` and Jupyter's
user folders in a scratch home, so nothing of the checkout (or of the developer's Jupyter) is
in sight: ``atlassian-playbook init ws``, ``cd ws``, ``atlassian-playbook demo`` on the
embedded emulator, and ``jupyter lab`` serving the workspace's notebooks.

Cost: the build (a few seconds) and the install (dependencies from pip's cache or the package
index: about a minute), one demo (every notebook, one kernel each), one JupyterLab start.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from atlassian_playbook.manifest import notebooks

from .browser_support import wait_for_jupyter_port

pytestmark = [pytest.mark.wheel, pytest.mark.xdist_group("wheel")]

CHECKOUT = Path(__file__).resolve().parents[1]
# Not part of what a build reads: local environments, caches, earlier build output.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "output", "test-artifacts", "*.egg-info", "__pycache__",
    ".pytest_cache", ".ruff_cache", ".playbook", ".env", ".ipynb_checkpoints",
)


@dataclass
class Installed:
    venv: Path
    wheel_files: list[str]  # the names inside the wheel
    home: Path  # scratch HOME-like folder for Jupyter's and IPython's user folders
    outside: Path  # a folder outside the checkout to run commands from

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def environment(self) -> dict[str, str]:
        """The shell of someone who just activated the venv: no checkout on any path."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ATLASSIAN_", "JUPYTER", "PYTHON", "VIRTUAL_ENV"))
               and k != "IPYTHONDIR"}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONUNBUFFERED"] = "1"
        for name, sub in {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data",
                          "JUPYTER_RUNTIME_DIR": "runtime", "IPYTHONDIR": "ipython",
                          "JUPYTERLAB_SETTINGS_DIR": "lab-settings",
                          "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces"}.items():
            env[name] = str(self.home / sub)
        env["JUPYTER_PLATFORM_DIRS"] = "1"
        return env

    def run(self, *command: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=cwd, env=self.environment(), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _checked(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    shown = f"{result.args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.returncode == 0, shown
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    if importlib.util.find_spec("build") is None:
        pytest.fail("The wheel test builds with `python -m build`, not installed in this "
                    "environment: pip install -e '.[dev]' (make test does it).")
    root = tmp_path_factory.mktemp("wheel")
    assert not root.is_relative_to(CHECKOUT)
    source, dist, venv = root / "source", root / "dist", root / "venv"
    shutil.copytree(CHECKOUT, source, ignore=_NOT_SOURCE, symlinks=True)
    build_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    _checked(subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
                            env=build_env, capture_output=True, text=True, timeout=600))
    shutil.rmtree(source)  # no checkout in sight from here on
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    _checked(subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                            text=True, timeout=300))
    target = Installed(venv, names, root / "home", root / "elsewhere")
    target.outside.mkdir()
    _checked(target.run(target.bin("python"), "-m", "pip", "install", "--quiet", "--no-compile",
                        "--disable-pip-version-check", f"{wheel}[lab]", cwd=target.outside,
                        timeout=900))
    return target


def test_the_wheel_carries_every_notebook_of_the_manifest_and_the_settings_example(installed):
    folder = "atlassian_playbook/notebooks/"
    packaged = {name.removeprefix(folder) for name in installed.wheel_files
                if name.startswith(folder)}
    assert packaged == {nb.file for nb in notebooks()}
    assert "atlassian_playbook/data/notebooks.toml" in installed.wheel_files
    assert "atlassian_playbook/data/env.example" in installed.wheel_files


def test_the_installed_package_finds_its_own_notebooks_not_the_checkout(installed):
    probe = installed.run(
        installed.bin("python"), "-c",
        "import json, sys, atlassian_playbook.manifest as m; print(json.dumps({"
        "'package': m.__file__, 'notebooks': str(m.NOTEBOOKS_DIR), 'example': str(m.ENV_EXAMPLE),"
        "'sequence': [nb.file for nb in m.notebooks()], 'path': sys.path}))",
        cwd=installed.outside,
    )
    found = json.loads(_checked(probe).stdout)
    site = installed.venv.resolve()
    for key in ("package", "notebooks", "example"):
        assert Path(found[key]).resolve().is_relative_to(site), found[key]
    assert found["sequence"] == [nb.file for nb in notebooks()]
    # "" (python -c) is the probe's folder, outside the checkout like every entry
    paths = [(installed.outside / entry).resolve() for entry in found["path"]]
    assert not [path for path in paths if path.is_relative_to(CHECKOUT)]


def test_init_then_demo_runs_the_playbook_from_the_workspace(installed):
    init = _checked(installed.run(installed.bin("atlassian-playbook"), "init", "ws",
                                  cwd=installed.outside))
    ws = installed.outside / "ws"
    assert "cd ws" in init.stdout and "atlassian-playbook demo" in init.stdout
    assert sorted(p.name for p in (ws / "notebooks").glob("*.ipynb")) == sorted(
        nb.file for nb in notebooks())
    assert stat.S_IMODE((ws / ".env").stat().st_mode) == 0o600

    demo = _checked(installed.run(installed.bin("atlassian-playbook"), "demo", cwd=ws,
                                  timeout=900))
    assert "Playbook passed." in demo.stdout
    assert demo.stdout.count("  ok  ") == len(notebooks())
    executed = sorted(p.name for p in (ws / "output" / "notebooks").glob("*.ipynb"))
    assert executed == sorted(nb.file for nb in notebooks())
    assert (ws / "output" / "site" / "index.html").is_file()


def test_a_batch_plan_on_the_installed_notebook_must_name_its_workspace(installed):
    """Run from the package, a notebook's default workspace ".." is the package's folder."""
    plan = installed.outside / "health.json"
    plan.write_text(json.dumps({"notebook": "11-health-check.ipynb", "runs": [{}]}))
    batch = installed.run(installed.bin("atlassian-playbook"), "batch", str(plan),
                          cwd=installed.outside)
    assert batch.returncode == 1
    assert "gives no workspace" in batch.stderr and "workspace: ." in batch.stderr
    assert not list(installed.venv.rglob(".playbook"))


def test_jupyter_lab_serves_the_workspace_notebooks(installed):
    ws = installed.outside / "lab-ws"
    _checked(installed.run(installed.bin("atlassian-playbook"), "init", str(ws),
                           cwd=installed.outside))
    token = secrets.token_hex(16)
    command = [installed.bin("jupyter"), "lab", "--no-browser", "--port=0",
               "--port-retries=0", "--ServerApp.ip=127.0.0.1",
               f"--IdentityProvider.token={token}", "--ServerApp.terminals_enabled=False"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = installed.outside / "jupyter-lab.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(command, cwd=ws, env=installed.environment(), stdout=output,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True)
    try:
        base = f"http://127.0.0.1:{wait_for_jupyter_port(server, log, 180)}"
        deadline = time.monotonic() + 180
        with httpx.Client(trust_env=False, timeout=5) as http:
            while True:
                assert server.poll() is None, f"jupyter lab exited: {log.read_text()[-3000:]}"
                try:
                    listing = http.get(f"{base}/api/contents/notebooks", params={"token": token})
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, f"no answer: {log.read_text()[-3000:]}"
                    time.sleep(0.2)  # polling interval while the server starts, not a delay
            assert listing.status_code == 200, listing.text
            served = sorted(item["name"] for item in listing.json()["content"])
            assert served == sorted(nb.file for nb in notebooks())
            lab = http.get(f"{base}/lab", params={"token": token})
            assert lab.status_code == 200 and "JupyterLab" in lab.text
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
