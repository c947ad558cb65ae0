"""Notebook 04's wait in a real JupyterLab: the link, the countdown and a Cancel button that
works while the cell runs, the stop button ending the wait without a traceback, and the wire
panels under a step's result (plain HTML, no script).

Screenshots (with the page's HTML and text) go to the test's tmp dir, or to
``$WIRE_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest

from . import browser_support as bs
from .conftest import free_port
from .notebook_helpers import register_callback

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("browser"),
    pytest.mark.skipif(bs.skip_reason() is not None, reason=bs.skip_reason() or ""),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base = tmp_path_factory.mktemp("wire-lab")
    (base / "root").mkdir()
    server = bs.JupyterLab(base / "root", base / "home", base / "jupyterlab.log")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = bs.launch_chromium(playwright, tmp_path_factory.mktemp("wire-chromium"))
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def shots(tmp_path, request) -> bs.Artifacts:
    root = Path(os.environ["WIRE_SCREENSHOTS"]) if os.environ.get("WIRE_SCREENSHOTS") else tmp_path
    return bs.Artifacts(root / request.node.name)


def _waiting_notebook(lab: bs.JupyterLab, name: str, page) -> str:
    """Notebook 04 in a workspace of its own, waiting for a person (consent='browser');
    returns its callback URL once the countdown shows."""
    ws = bs.fresh_dir(lab.root_dir / name)
    (ws / "notebooks").mkdir()
    bs.copy_notebook("04-token-exchange.ipynb", ws / "notebooks", consent="browser", timeout=120)
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    env = ws / ".env"
    env.write_text(f"ATLASSIAN_REDIRECT_URI={redirect_uri}\n")
    env.chmod(0o600)
    register_callback(ws, redirect_uri)
    bs.open_notebook(page, lab.url(f"{name}/notebooks/04-token-exchange.ipynb", name))
    bs.run_all_cells(page)
    bs.wait_output(page, "#authorize-link")
    page.get_by_text(re.compile(r"Waiting for the consent: \d+:\d\d left")).wait_for()
    # The listener is bound while the countdown runs.
    with httpx.Client(trust_env=False, timeout=10) as http:
        assert http.get(redirect_uri).status_code == 400  # no code: refused, still waiting
    return redirect_uri


def _listener_gone(redirect_uri: str) -> bool:
    try:
        httpx.get(redirect_uri, timeout=5, trust_env=False)
    except httpx.ConnectError:
        return True
    return False


def _cells_run(page) -> list[bool]:
    """For each code cell of the current notebook: did it run (has an execution count)?"""
    return page.evaluate("""() => {
        const model = window.jupyterapp.shell.currentWidget.content.model;
        const ran = [];
        for (let i = 0; i < model.cells.length; i++) {
            const cell = model.cells.get(i);
            if (cell.type === 'code') ran.push(cell.executionCount !== null);
        }
        return ran;
    }""")


def test_cancel_stops_the_wait_while_the_cell_runs(lab, browser, shots):
    page = browser.new_page()
    try:
        redirect_uri = _waiting_notebook(lab, "cancel", page)
        shots.snap(page, "1-waiting")
        page.locator(".jupyter-widgets button", has_text="Cancel").click()
        page.get_by_text("Stopped waiting for the callback").first.wait_for()
        shots.snap(page, "2-cancelled")
        assert "Cancel was pressed" in page.locator("body").inner_text()
        assert "Traceback" not in page.locator("body").inner_text()
        assert bs.wait_for(lambda: _listener_gone(redirect_uri), "the listener closed")
        # Run All stopped at the cancelled cell: the cells below did not run.
        assert _cells_run(page) == [True, True, True, False, False], _cells_run(page)
    finally:
        page.close()


def test_the_stop_button_ends_the_wait_without_a_traceback(lab, browser, shots):
    page = browser.new_page()
    try:
        redirect_uri = _waiting_notebook(lab, "interrupt", page)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:interrupt-kernel')")
        page.get_by_text("the wait was interrupted").first.wait_for()
        shots.snap(page, "1-interrupted")
        text = page.locator("body").inner_text()
        assert "Traceback" not in text and "KeyboardInterrupt" not in text
        assert bs.wait_for(lambda: _listener_gone(redirect_uri), "the listener closed")
    finally:
        page.close()


def test_the_wire_panels_open_in_jupyterlab(lab, browser, shots):
    page = browser.new_page()
    try:
        ws = bs.fresh_dir(lab.root_dir / "panels")
        (ws / "notebooks").mkdir()
        bs.copy_notebook("04-token-exchange.ipynb", ws / "notebooks", rehearse=False)
        redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
        (ws / ".env").write_text(f"ATLASSIAN_REDIRECT_URI={redirect_uri}\n")
        register_callback(ws, redirect_uri)
        bs.open_notebook(page, lab.url("panels/notebooks/04-token-exchange.ipynb", "panels"))
        bs.run_all_cells(page)
        bs.wait_cells_done(page)
        panel = page.locator("details.wire-exchange", has_text="/oauth/token → 200").first
        panel.scroll_into_view_if_needed()
        assert "auth.atlassian.com" in panel.locator("summary").inner_text()
        assert not panel.locator("pre").first.is_visible()  # collapsed until opened
        panel.locator("summary").click()
        body = panel.locator("pre").first
        body.wait_for(state="visible")
        assert '"client_secret": "«secret:' in body.inner_text()
        shots.snap(page, "1-token-request-open")
    finally:
        page.close()
