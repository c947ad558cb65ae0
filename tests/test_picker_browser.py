"""The scope picker and the copy buttons as a person uses them: a real JupyterLab, chromium.

Notebook 03 is run through the Run menu and its picker worked by plain clicks (no Ctrl): a
click adds one scope and keeps the rest, a typo in the search offers "did you mean", a chip
removes its scope, the paste box adds a pasted string. A scratch notebook shows the
ChecklistWidget and a SecretReveal, whose copy buttons are pressed and the clipboard read.
Screenshots (with the page's HTML and text) go to the pytest tmp dir, or to
``$PICKER_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import nbformat
import pytest
from dotenv import dotenv_values
from playwright.sync_api import expect

from . import browser_support as bs
from .conftest import assert_no_secrets

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("browser"),
    pytest.mark.skipif(bs.skip_reason() is not None, reason=bs.skip_reason() or ""),
]


@pytest.fixture(scope="module")
def shots_dir(tmp_path_factory) -> Path:
    chosen = os.environ.get("PICKER_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("picker-shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def lab(tmp_path_factory, shots_dir):
    base = tmp_path_factory.mktemp("picker-lab")
    (base / "root").mkdir()
    server = bs.JupyterLab(base / "root", base / "home", shots_dir / "jupyterlab.log")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory, lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = bs.launch_chromium(playwright, tmp_path_factory.mktemp("picker-chromium"))
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.base_url)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser, request, shots_dir):
    tab = browser.new_page()
    yield tab
    if not tab.is_closed():
        try:
            tab.screenshot(path=str(shots_dir / f"{request.node.name}-last.png"), full_page=True)
        finally:
            tab.close()


def workspace(lab: bs.JupyterLab, name: str) -> Path:
    folder = bs.fresh_dir(lab.root_dir / name)
    (folder / "notebooks").mkdir()
    return folder


def test_picker_clicks_add_one_scope_each_and_keep_the_selection(lab, page, shots_dir):
    ws = workspace(lab, "picker")
    bs.copy_notebook("03-select-scopes.ipynb", ws / "notebooks")
    shots = bs.Artifacts(shots_dir / "picker")
    bs.open_notebook(page, lab.url("picker/notebooks/03-select-scopes.ipynb", "picker"))
    bs.run_all_cells(page)
    bs.wait_cells_done(page)
    picker = bs.ScopePicker.find(page)
    picker.root.scroll_into_view_if_needed()
    start = picker.chip_names()
    assert len(start) >= 2 and "offline_access" in start, start
    assert "read:jira-work" not in start and "write:jira-work" not in start
    shots.snap(page, "1-start")

    # Plain clicks on two checkboxes: each adds its scope, the earlier selection survives.
    picker.filter("jira-work")
    jira_classic = picker.section("Jira API · Classic scopes")
    expect(jira_classic.locator(".ap-scope")).to_have_count(2)  # only the matches are built
    picker.checkbox("read:jira-work").click()
    picker.expect_selected([*start, "read:jira-work"])
    picker.checkbox("write:jira-work").click()
    chosen = [*start, "read:jira-work", "write:jira-work"]
    picker.expect_selected(chosen)
    expect(picker.offline_access).to_be_checked()
    # Another search hides those checkboxes and deselects nothing.
    picker.filter("confluence-space")
    expect(jira_classic).to_be_hidden()
    picker.expect_selected(chosen)
    shots.snap(page, "2-two-clicks")

    # A typo: "did you mean", whose button searches for the suggestion.
    picker.filter("read:jira-wrok")
    expect(picker.shown).to_contain_text("No scope matches")
    suggestion = picker.suggestions.filter(has_text="read:jira-work")
    expect(suggestion).to_be_visible()
    shots.snap(page, "3-did-you-mean")
    suggestion.click()
    expect(picker.search).to_have_value("read:jira-work")
    expect(picker.checkbox("read:jira-work")).to_be_checked()

    # A chip removes its scope (and its checkbox follows).
    picker.remove("read:jira-work")
    chosen.remove("read:jira-work")
    picker.expect_selected(chosen)
    expect(picker.checkbox("read:jira-work")).not_to_be_checked()

    # The paste box: a comma-separated string, one typo.
    picker.add_pasted("read:account, read:jira-wrk")
    chosen.append("read:account")
    picker.expect_selected(chosen)
    status = picker.root.locator(".widget-html-content", has_text="Added read:account")
    expect(status).to_contain_text("Unknown, not added: read:jira-wrk (did you mean")
    shots.snap(page, "4-chip-removed-and-pasted")

    picker.save()
    env = ws / ".env"
    bs.wait_for(
        lambda: dotenv_values(env).get("ATLASSIAN_SCOPES") == " ".join(chosen),
        f"ATLASSIAN_SCOPES={' '.join(chosen)!r} in {env}",
    )


def scratch_notebook(folder: Path) -> Path:
    """A notebook showing the Merge checklist and a SecretReveal of the secret in secret.txt
    (read by the kernel, so the secret is in no notebook cell)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from pathlib import Path\n"
            "from atlassian_playbook.checklist import build_checklist\n"
            "from atlassian_playbook.redact import Secret\n"
            "from atlassian_playbook.widgets import ChecklistWidget, SecretReveal\n"
            'ChecklistWidget(build_checklist("merge"), (), lambda *_: None)'
        ),
        nbformat.v4.new_code_cell(
            'SecretReveal("OAuth Client Secret", Secret(Path("secret.txt").read_text()))'
        ),
    ]
    target = folder / "copy.ipynb"
    nbformat.write(nb, target)
    return target


def test_copy_buttons_put_the_value_on_the_clipboard(lab, page, shots_dir):
    ws = workspace(lab, "copy")
    secret = "copy-" + secrets.token_urlsafe(24)
    (ws / "notebooks" / "secret.txt").write_text(secret)
    notebook = scratch_notebook(ws / "notebooks")
    shots = bs.Artifacts(shots_dir / "copy")
    bs.open_notebook(page, lab.url("copy/notebooks/copy.ipynb", "copy"))
    bs.run_all_cells(page)
    bs.wait_cells_done(page)

    # The checklist: the copy button beside Merge's OAuth Redirect URI.
    uri = "https://app.merge.dev/oauth/callback"
    row = page.locator("li", has_text="OAuth Redirect URI")
    row.locator("button.ap-copy").click()
    expect(row.locator("button.ap-copy")).to_have_text("copied")
    assert bs.clipboard_text(page) == uri

    # The SecretReveal: Reveal, then "Copy and hide" copies and releases the toggle.
    reveal = page.locator(".ap-secret-reveal")
    toggle, field = reveal.locator(".ap-reveal-toggle"), reveal.locator(".ap-reveal-field input")
    toggle.click()
    expect(field).to_have_value(secret)
    page.screenshot(path=str(shots.folder / "1-revealed.png"))  # a picture only: no text file
    reveal.get_by_role("button", name="Copy and hide").click()
    expect(field).to_be_hidden()
    expect(field).to_have_value("")  # the kernel emptied the widget's state
    expect(toggle).not_to_have_class("mod-active")
    assert bs.clipboard_text(page) == secret
    shots.snap(page, "2-copied-and-hidden")
    bs.save_notebook(page, notebook)
    assert "«secret:" in shots.texts[-1]  # the scan reads the page that shows it masked
    assert_no_secrets([notebook, *shots.texts], {secret})
