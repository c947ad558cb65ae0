"""Helpers for the browser tests: a real JupyterLab on loopback and Debian's chromium.

Nothing here sleeps for a fixed time: every wait is for a selector, a page condition or a file,
with a timeout; waits on a running notebook fail at once, with the traceback, when a cell fails.

* :class:`JupyterLab` serves a folder on ``127.0.0.1`` with an isolated Jupyter configuration
  (news, update checks and the PyPI extension manager off, fresh settings and workspaces) and
  an environment with no ``ATLASSIAN_*`` setting, and stops with its process group.
* :func:`launch_chromium` starts ``/usr/bin/chromium`` through playwright with a fresh profile
  (playwright's own browser download does not work here).
* The notebook helpers open a notebook, run all cells through the Run menu, wait until every
  code cell ran (or fail with the first error output), save, and take screenshots with the
  page's HTML and text beside them (the secret scan reads those).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Generous: a cold JupyterLab page plus a kernel start takes ~10 s here; CI machines are slower.
PAGE_TIMEOUT_MS = 60_000
CELLS_TIMEOUT_MS = 120_000


def skip_reason() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.is_file():
        return f"Debian chromium is missing ({CHROMIUM}); `make test` installs it as root"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "python playwright is not installed (pip install -e '.[dev]')"
    return None


_SERVING = re.compile(rb"http://127\.0\.0\.1:(\d+)/")


def wait_for_jupyter_port(proc: subprocess.Popen, log_path: Path, patience: float) -> int:
    """The port a ``jupyter lab --port=0`` bound, read from its log. The OS picks it as the
    server binds, so no other process can take it first (a port probed free and handed over
    can be, on a busy machine running tests in parallel)."""
    deadline = time.monotonic() + patience
    while True:
        found = _SERVING.search(log_path.read_bytes())
        if found:
            return int(found.group(1))
        if proc.poll() is not None:
            tail = log_path.read_text()[-3000:]
            raise RuntimeError(f"jupyter lab exited {proc.returncode}: {tail}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"jupyter lab bound no port in {patience:.0f} s; see {log_path}")
        time.sleep(0.1)  # polling interval while the server starts, not a delay


# --- the notebook files ---------------------------------------------------------------------


def copy_notebook(name: str, dest_dir: Path, **parameters: Any) -> Path:
    """Copy ``notebooks/<name>`` into ``dest_dir`` with parameters changed in its
    ``parameters`` cell (each ``key = ...`` line replaced by ``key = repr(value)``)."""
    import nbformat

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{name} needs exactly one cell tagged 'parameters'"
    source = cells[0].source
    for key, value in parameters.items():
        source, count = re.subn(rf"(?m)^{re.escape(key)}\s*=.*$", f"{key} = {value!r}", source)
        assert count == 1, f"{name}: parameter {key!r} not found in the parameters cell"
    cells[0].source = source
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / name
    nbformat.write(nb, target)
    return target


# --- JupyterLab -----------------------------------------------------------------------------


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


class JupyterLab:
    """``jupyter lab`` serving ``root_dir`` on 127.0.0.1, isolated from the user's Jupyter."""

    def __init__(self, root_dir: Path, home: Path, log_path: Path) -> None:
        self.root_dir, self.home, self.log_path = root_dir, home, log_path
        self.port = 0  # the OS picks it when the server binds: see start()
        self.token = secrets.token_hex(16)
        self.base_url = ""
        self.proc: subprocess.Popen | None = None
        self._log = None

    def environment(self) -> dict[str, str]:
        """The server's (and so every kernel's) environment: no ATLASSIAN_* setting, no proxy,
        Jupyter's directories all inside ``home``."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("ATLASSIAN_") and "proxy" not in k.lower()
        }
        dirs = {
            "JUPYTER_CONFIG_DIR": "config",
            "JUPYTER_DATA_DIR": "data",
            "JUPYTER_RUNTIME_DIR": "runtime",
            "JUPYTERLAB_SETTINGS_DIR": "lab-settings",
            "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces",
            "IPYTHONDIR": "ipython",
        }
        for name, sub in dirs.items():
            env[name] = str(self.home / sub)
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        env["PYTHONUNBUFFERED"] = "1"
        env["JUPYTER_PLATFORM_DIRS"] = "1"
        return env

    def _configure(self) -> None:
        # Server side: no announcements feed, no update check, no PyPI extension manager.
        _write_json(
            self.home / "config" / "jupyter_server_config.json",
            {
                "LabApp": {
                    "news_url": None,
                    "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                    "extension_manager": "readonly",
                    # window.jupyterapp: lets a test wait for the notebook's kernel to be ready.
                    "expose_app_in_browser": True,
                },
            },
        )
        # Front end: no "Jupyter news" toast, no update notification.
        _write_json(
            self.home
            / "lab-settings"
            / "@jupyterlab"
            / "apputils-extension"
            / "notification.jupyterlab-settings",
            {"fetchNews": "false", "checkForUpdates": False},
        )
        # Start the notebook's own kernel without the "Select Kernel" dialog.
        _write_json(
            self.home
            / "lab-settings"
            / "@jupyterlab"
            / "notebook-extension"
            / "tracker.jupyterlab-settings",
            {"autoStartDefaultKernel": True},
        )

    def start(self) -> JupyterLab:
        self._configure()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--allow-root",
                "--no-browser",
                f"--port={self.port}",
                "--port-retries=0",
                f"--IdentityProvider.token={self.token}",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.root_dir={self.root_dir}",
                "--ServerApp.terminals_enabled=False",
            ],
            env=self.environment(),
            cwd=self.root_dir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as one
        )
        try:
            self.port = wait_for_jupyter_port(self.proc, self.log_path, 60)
        except RuntimeError:
            self.stop()
            raise
        self.base_url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        with httpx.Client(trust_env=False, timeout=2) as http:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"jupyter lab exited {self.proc.returncode}; see {self.log_path}"
                    )
                try:
                    if http.get(self.api("status")).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"jupyter lab did not answer in 60 s; see {self.log_path}")
                time.sleep(0.1)  # polling interval while waiting for the port, not a delay

    def api(self, path: str) -> str:
        return f"{self.base_url}/api/{path}?token={self.token}"

    def url(self, path: str, workspace: str) -> str:
        """A JupyterLab URL opening ``path`` (relative to root_dir) in its own, fresh workspace,
        so one test's open tabs never come back in another's."""
        return f"{self.base_url}/lab/workspaces/{workspace}/tree/{path}?reset&token={self.token}"

    def stop(self) -> None:
        """Shut the kernels down through the API, then end the server's process group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                with httpx.Client(trust_env=False, timeout=10) as http:
                    for kernel in http.get(self.api("kernels")).json():
                        http.delete(self.api(f"kernels/{kernel['id']}"))
            except (httpx.HTTPError, ValueError):
                pass
            for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


# --- the browser ----------------------------------------------------------------------------


def launch_chromium(playwright, user_data_dir: Path):
    """A persistent chromium context on a fresh profile (the only way to pass the user-data
    dir through playwright); loopback only."""
    context = playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 1000},
    )
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    return context


class Artifacts:
    """Screenshots with the page's HTML and visible text beside them, in test-artifacts/.

    The files are for people; :attr:`texts` keeps what was written, for the secret scan (files
    of the same name may be rewritten by another run of the suite in the same checkout).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.texts: list[str] = []

    def snap(self, page, name: str) -> Path:
        png = self.folder / f"{name}.png"
        page.screenshot(path=str(png), full_page=True)
        html_text, body_text = page.content(), page.locator("body").inner_text()
        (self.folder / f"{name}.html").write_text(html_text)
        (self.folder / f"{name}.txt").write_text(body_text)
        self.texts += [html_text, body_text]
        return png


# --- JupyterLab in the page -----------------------------------------------------------------


def open_notebook(page, url: str) -> None:
    """Load JupyterLab on ``url`` and wait until the notebook shows its cells and its kernel."""
    page.goto(url)
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_kernel_idle(page)


def wait_kernel_idle(page, timeout_ms: int = PAGE_TIMEOUT_MS) -> None:
    """The current notebook's kernel is started, connected and idle.

    (The toolbar's execution indicator says "idle" before any kernel exists, so it cannot be
    trusted; running cells before the session exists starts a second kernel or asks which
    kernel to use.)
    """
    page.wait_for_function(
        """() => {
            const app = window.jupyterapp;
            const widget = app && app.shell.currentWidget;
            const ctx = widget && widget.sessionContext;
            const kernel = ctx && ctx.session && ctx.session.kernel;
            return Boolean(ctx && ctx.isReady && kernel &&
                           kernel.connectionStatus === 'connected' && kernel.status === 'idle');
        }""",
        timeout=timeout_ms,
    )


def run_all_cells(page) -> None:
    """Run → Run All Cells, through the menu bar as a person would."""
    page.locator(".lm-MenuBar-item").filter(
        has=page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$"))
    ).click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()


# The current notebook, read from JupyterLab's own model (window.jupyterapp): "done" when every
# code cell has an execution count and the kernel is idle, the first error output (JupyterLab
# stops Run All there) as text, else null.
_CELLS_STATE = r"""() => {
    const widget = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const model = widget && widget.content && widget.content.model;
    if (!model || !widget.sessionContext) return null;
    let pending = false;
    for (let i = 0; i < model.cells.length; i++) {
        const cell = model.cells.get(i);
        if (cell.type !== 'code') continue;
        const error = cell.outputs.toJSON().find(o => o.output_type === 'error');
        if (error) {
            const trace = (error.traceback || []).join('\n').replace(/\x1b\[[0-9;]*m/g, '');
            return `error in cell ${i}: ${error.ename}: ${error.evalue}\n${trace}`;
        }
        if (cell.executionCount === null) pending = true;
    }
    const kernel = widget.sessionContext.session && widget.sessionContext.session.kernel;
    return !pending && kernel && kernel.status === 'idle' ? 'done' : null;
}"""


def wait_cells_done(page, timeout_ms: int = CELLS_TIMEOUT_MS) -> None:
    """Wait until every code cell ran; fail with the first error output (its traceback)."""
    state = page.wait_for_function(_CELLS_STATE, timeout=timeout_ms).json_value()
    assert state == "done", f"a notebook cell failed:\n{state[:3000]}"


def cell_error(page) -> str | None:
    """The first error output of the current notebook, if any (for waits that must not hang
    on a failed cell)."""
    state = page.evaluate(_CELLS_STATE)
    return state if state and state.startswith("error") else None


def wait_output(page, css: str, timeout_ms: int = CELLS_TIMEOUT_MS):
    """Wait for an element in the notebook's outputs; fail at once with the traceback if a cell
    fails first. Returns its locator."""
    state = page.wait_for_function(
        f"""(css) => document.querySelector(css) ? 'found' : (({_CELLS_STATE})() || '')
                     .startsWith('error') ? ({_CELLS_STATE})() : null""",
        arg=css,
        timeout=timeout_ms,
    ).json_value()
    assert state == "found", f"a notebook cell failed before {css} appeared:\n{state[:3000]}"
    return page.locator(css)


class ScopePicker:
    """The ScopePicker widget (``atlassian_playbook.widgets.ScopePicker``) in the page.

    Found by its ``ap-scope-picker`` class. The selection is read from its chips (one button
    per selected scope, in order). Every action waits for the kernel's answer (the chips, the
    search line naming the search, a section's checkboxes), never for a fixed time.
    """

    def __init__(self, page, root) -> None:
        self.page, self.root = page, root
        self.search = self._text_box("Search")
        self.paste = self._text_box("Paste")
        self.offline_access = root.locator(".widget-checkbox", has_text="offline_access").locator(
            "input[type=checkbox]"
        )
        self.chips = root.locator("button.ap-chip")
        self.shown = root.locator(".widget-html-content").filter(
            has_text=re.compile(r"scopes? in \d+ sections|scopes? match|No scope matches")
        )
        self.suggestions = root.locator("button.ap-suggestion")

    def _text_box(self, label: str):
        return (
            self.root.locator(".widget-text")
            .filter(has=self.page.locator("label.widget-label", has_text=re.compile(f"^{label}$")))
            .locator("input[type=text]")
        )

    @classmethod
    def find(cls, page) -> ScopePicker:
        root = page.locator(".ap-scope-picker")
        root.first.wait_for(timeout=CELLS_TIMEOUT_MS)
        assert root.count() == 1, "expected exactly one scope picker"
        return cls(page, root)

    def chip_names(self) -> list[str]:
        return [text.removesuffix(" ✕") for text in self.chips.all_inner_texts()]

    def expect_selected(self, scopes: list[str]) -> None:
        """Wait for the chips to name exactly ``scopes``, in order."""
        from playwright.sync_api import expect

        expect(self.chips).to_have_text([f"{s} ✕" for s in scopes], timeout=PAGE_TIMEOUT_MS)

    def filter(self, text: str) -> None:
        """Type into the search box; wait for the kernel's line about this search."""
        from playwright.sync_api import expect

        self.search.fill(text)
        if text:
            expect(self.shown.locator("code")).to_have_text(text.lower(), timeout=PAGE_TIMEOUT_MS)
        else:
            expect(self.shown).to_contain_text("sections", timeout=PAGE_TIMEOUT_MS)

    def section(self, title: str):
        """A section (one console API, one kind) by the start of its title."""
        return self.root.locator(".jupyter-widget-Collapse").filter(
            has=self.page.locator(".jupyter-widget-Collapse-header", has_text=title)
        )

    def checkbox(self, scope: str):
        """The checkbox of one scope (its section must be open): a plain click toggles it."""
        name = self.page.locator("code", has_text=re.compile(f"^{re.escape(scope)}$"))
        return self.root.locator(".ap-scope").filter(has=name).locator("input[type=checkbox]")

    def remove(self, scope: str) -> None:
        """Click the chip of ``scope``; wait until it is gone."""
        from playwright.sync_api import expect

        chip = self.root.locator(f'button.ap-chip[title="Remove {scope}"]')
        chip.click()
        expect(chip).to_have_count(0, timeout=PAGE_TIMEOUT_MS)

    def add_pasted(self, text: str) -> None:
        """Paste ``text`` into the paste box and press Enter; wait until the box is emptied."""
        from playwright.sync_api import expect

        self.paste.fill(text)
        self.paste.press("Enter")
        expect(self.paste).to_have_value("", timeout=PAGE_TIMEOUT_MS)

    def save(self) -> None:
        """Press "Save to .env" and wait for the kernel to report it saved."""
        from playwright.sync_api import expect

        self.root.get_by_role("button", name="Save to .env").click()
        expect(
            self.root.locator(".widget-html-content", has_text="saved to .env at")
        ).to_be_visible(timeout=PAGE_TIMEOUT_MS)


def clipboard_text(page) -> str:
    """What the page's clipboard holds (the context needs the clipboard-read permission)."""
    page.bring_to_front()
    return page.evaluate("() => navigator.clipboard.readText()")


def save_notebook(page, path: Path) -> None:
    """Ctrl+S, as a person saves; wait until JupyterLab has no unsaved changes and the file on
    disk was rewritten."""
    before = path.stat().st_mtime_ns
    page.bring_to_front()
    page.keyboard.press("Control+s")
    page.wait_for_function(
        """() => {
            const widget = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            return Boolean(widget && widget.context && !widget.context.model.dirty);
        }""",
        timeout=PAGE_TIMEOUT_MS,
    )
    wait_for(lambda: path.stat().st_mtime_ns != before, f"{path.name} saved to disk")


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll ``condition`` (e.g. a file on disk) until truthy; fail saying ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for: {what}")
        time.sleep(0.05)  # polling interval


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
