"""The notebooks as a person uses them: a real JupyterLab on loopback, driven in chromium.

One JupyterLab server for the module (its root holds one workspace folder per test), one
chromium, one page per test. Each test copies a notebook of the repository into its workspace,
opens it, runs all cells through the Run menu, works the widgets by clicking, and checks the
files the playbook wrote. Screenshots, with each page's HTML and text beside them, go to
``test-artifacts/browser/``; the token exchange test scans them and the saved notebook for the
client secret and every token.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from dotenv import dotenv_values

from atlassian_playbook.emulator import read_state
from atlassian_playbook.tokens import TokenStore

from . import browser_support as bs
from .conftest import assert_no_secrets, free_port, secrets_in_store
from .notebook_helpers import register_callback

# One xdist group, so `make test` (-n 2 --dist loadgroup) runs the module on one worker with
# one server. (pytest-xdist 3.8 under pytest 9.2 ignores the group, pytest-xdist#1386: each
# worker then starts its own server and chromium; the tests are independent either way.)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("browser"),
    pytest.mark.skipif(bs.skip_reason() is not None, reason=bs.skip_reason() or ""),
]

ARTIFACTS = bs.ARTIFACTS / "browser"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab serving a fresh root folder; stopped (kernels, then the process group)
    at the end of the module."""
    base = tmp_path_factory.mktemp("jupyterlab")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    server = bs.JupyterLab(base / "root", base / "home", ARTIFACTS / f"jupyterlab-{worker}.log")
    (base / "root").mkdir()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = bs.launch_chromium(playwright, tmp_path_factory.mktemp("chromium-profile"))
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser, request):
    """A new tab; on the way out (pass or fail) a last screenshot of whatever it shows."""
    tab = browser.new_page()
    yield tab
    if not tab.is_closed():
        try:
            tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}-last.png"), full_page=True)
        finally:
            tab.close()


def workspace(lab: bs.JupyterLab, name: str) -> Path:
    """A workspace folder under the server's root: ``notebooks/`` goes inside, ``..`` of a
    notebook is the workspace (the notebooks' default)."""
    folder = bs.fresh_dir(lab.root_dir / name)
    (folder / "notebooks").mkdir()
    return folder


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- 1. scope selection ---------------------------------------------------------------------


def test_scope_picker_saves_the_clicked_scopes_to_env(lab, page):
    ws = workspace(lab, "scopes")
    bs.copy_notebook("03-select-scopes.ipynb", ws / "notebooks")
    assert not (ws / ".env").exists()
    shots = bs.Artifacts(ARTIFACTS / "scopes")

    bs.open_notebook(page, lab.url("scopes/notebooks/03-select-scopes.ipynb", "scopes"))
    bs.run_all_cells(page)
    bs.wait_cells_done(page)
    picker = bs.ScopePicker.find(page)
    picker.root.scroll_into_view_if_needed()
    shots.snap(page, "1-before")

    # Clear the starting selection with its chips, then tick scopes with plain clicks.
    for scope in picker.chip_names():
        picker.remove(scope)
    picker.expect_selected([])
    picked = ["read:jira-work", "read:confluence-content.summary", "read:me"]
    for number, scope in enumerate(picked, 1):
        picker.filter(scope)  # a narrow search opens the section that holds it
        picker.checkbox(scope).click()
        picker.expect_selected(picked[:number])
    # The refresh token checkbox.
    picker.offline_access.check()
    picked.append("offline_access")
    picker.expect_selected(picked)

    picker.save()
    shots.snap(page, "2-after")

    env = ws / ".env"
    values = bs.wait_for(
        lambda: (v := dotenv_values(env)).get("ATLASSIAN_SCOPES") == " ".join(picked) and v,
        f"ATLASSIAN_SCOPES={' '.join(picked)!r} in {env}",
    )
    assert values["ATLASSIAN_SCOPES"].split() == picked
    assert mode(env) == 0o600


# --- 2. token exchange with the consent page clicked ----------------------------------------


def test_token_exchange_through_the_consent_page(lab, page, browser):
    ws = workspace(lab, "exchange")
    notebook = bs.copy_notebook(
        "04-token-exchange.ipynb", ws / "notebooks", consent="browser", timeout=120
    )
    # A callback port of its own: 8765 (the default) may be taken by a parallel test.
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    env = ws / ".env"
    env.write_text(f"ATLASSIAN_REDIRECT_URI={redirect_uri}\n")
    env.chmod(0o600)
    register_callback(ws, redirect_uri)  # what notebook 02 does on the Authorization tab
    shots = bs.Artifacts(ARTIFACTS / "exchange")

    bs.open_notebook(page, lab.url("exchange/notebooks/04-token-exchange.ipynb", "exchange"))
    bs.run_all_cells(page)
    link = bs.wait_output(page, "#authorize-link")
    assert link.inner_text().strip() == "Authorize the app at Atlassian →"

    with browser.expect_page() as opened:
        link.click()
    consent = opened.value
    try:
        consent.wait_for_load_state()
        site, accept = consent.locator("#site"), consent.locator("#accept")
        site.wait_for()
        # The listener is up (a busy callback port would have failed the cell by now).
        assert bs.cell_error(page) is None, bs.cell_error(page)
        assert consent.locator("#site option:checked").inner_text() == "Choose a site"
        assert accept.is_disabled()
        assert consent.locator("#deny").is_enabled()
        shots.snap(consent, "1-consent-page")
        # The second site: not the one the emulator picks when it consents on its own (and
        # not initech, whose admins do not allow user-installed apps).
        choice = consent.locator("#site option:not([disabled])").nth(1)
        cloud_id, site_label = choice.get_attribute("value"), choice.inner_text()
        site.select_option(cloud_id)
        consent.wait_for_function("() => !document.querySelector('#accept').disabled")
        shots.snap(consent, "2-site-chosen")
        accept.click()
        consent.wait_for_url(re.compile(re.escape(redirect_uri) + r"\?"))
        consent.get_by_text("You can close this tab").wait_for()
        shots.snap(consent, "3-callback-page")
    finally:
        consent.close()

    page.bring_to_front()
    bs.wait_cells_done(page)
    outputs = page.locator(".jp-OutputArea-output")
    summary = outputs.filter(has_text="refresh token")
    summary.first.wait_for()
    text = summary.first.inner_text()
    assert re.search(r"refresh token\s+«secret:\w+» \(masked\)", text), text
    assert re.search(r"access token\s+«secret:\w+» \(masked\)", text), text
    assert cloud_id in text, f"the chosen site {site_label} ({cloud_id}) is not in:\n{text}"
    page.get_by_text("✔ Consent received, code exchanged, tokens stored.").wait_for()
    bs.save_notebook(page, notebook)
    shots.snap(page, "4-notebook")

    store = ws / ".playbook" / "tokens.json"
    assert store.is_file()
    assert mode(store) == 0o600
    entries = TokenStore(store).list()
    assert len(entries) == 1 and entries[0].tokens.refresh_token is not None
    assert entries[0].site and entries[0].site["id"] == cloud_id

    state = read_state(ws / ".playbook" / "emulator-state.json")
    client_secrets = {c["client_secret"] for c in state["clients"].values()}
    tokens = secrets_in_store(store)
    assert len(tokens) >= 2 and client_secrets
    # The scan is not vacuous: what it reads holds the masked summary.
    saved = notebook.read_text()
    assert "(masked)" in saved and "«secret:" in saved, "the outputs were not saved"
    assert "(masked)" in shots.texts[-1]
    # The notebook folder holds the saved notebook and any checkpoint of it.
    assert_no_secrets([ws / "notebooks", *shots.texts, lab.log_path], tokens | client_secrets)
