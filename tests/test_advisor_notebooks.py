"""Notebooks 03 and 05 with the scope advisor: real papermill runs in a fresh workspace, and
the advisor widget driven as a person would."""

from __future__ import annotations

import json

import pytest

import atlassian_playbook.playbook as pb
from atlassian_playbook.errors import PlaybookError
from atlassian_playbook.playbook import _results
from atlassian_playbook.widgets import ScopeAdvisorPanel

from .notebook_helpers import cell_source, cell_text, env_values, failing_cell, new_workspace, run

ISSUE = "GET /rest/api/3/issue/{issueIdOrKey}"
PAGES = "POST /wiki/api/v2/pages"
ISSUE_GRANULAR = (
    "read:avatar:jira read:field-configuration:jira read:issue-meta:jira "
    "read:issue-security-level:jira read:issue.changelog:jira read:issue.vote:jira "
    "read:issue:jira read:status:jira read:user:jira"
).split()


def executed_text(outcome, call: str) -> str:
    cells = json.loads(outcome.output_path.read_text())["cells"]
    (cell,) = [c for c in cells if c["cell_type"] == "code" and call in cell_source(c)]
    return cell_text(cell)


@pytest.mark.notebook
@pytest.mark.xdist_group("notebooks-advisor")
def test_notebook_03_adds_the_advised_scopes_and_shows_the_table(tmp_path):
    workspace = new_workspace(tmp_path / "ws")
    outcome = run("03-select-scopes", workspace, preset="minimal",
                  endpoints=f"{ISSUE}; {PAGES}\nGET /rest/api/3/serverInfo")
    assert outcome.ok, outcome.failure
    saved = env_values(workspace)["ATLASSIAN_SCOPES"].split()
    assert "read:jira-work" in saved and "write:page:confluence" in saved
    assert "offline_access" in saved  # the preset's scopes are kept
    advised = outcome.records["scopes"]["advised"]
    assert advised["kind"] == "classic"
    assert advised["scopes"] == ["read:jira-work", "write:page:confluence"]
    shown = executed_text(outcome, "pb.select_scopes")
    assert "What your endpoints need" in shown
    assert "GET /rest/api/3/serverInfo" in shown and "any token can call it" in shown
    assert ISSUE in shown and "read:issue:jira" in shown  # the table's granular column


@pytest.mark.notebook
@pytest.mark.xdist_group("notebooks-advisor")
def test_notebook_05_explains_a_call_refused_with_scope_does_not_match(tmp_path):
    workspace = new_workspace(
        tmp_path / "ws", ATLASSIAN_SCOPES="read:me read:jira-user offline_access")
    assert run("04-token-exchange", workspace).ok
    outcome = run("05-verify-access", workspace, calls="GET /rest/api/3/issue/ACME-1")
    assert not outcome.ok
    cell = failing_cell(outcome)
    assert "pb.verify_access" in cell_source(cell)
    shown = cell_text(cell)
    assert "call GET /rest/api/3/issue/ACME-1" in shown
    assert "read:jira-work" in shown and "granted on no site" in shown
    assert "Permissions tab" in outcome.failure.hint
    checks = {c["name"]: c for c in outcome.records["verify"]["checks"]}
    assert checks["call GET /rest/api/3/issue/ACME-1"]["status"] == "FAILED"
    assert checks["Jira myself"]["status"] == "ok"


@pytest.mark.notebook
@pytest.mark.xdist_group("notebooks-advisor")
def test_notebook_05_on_an_identity_only_grant_claims_no_site_it_cannot_know(tmp_path):
    workspace = new_workspace(tmp_path / "ws", ATLASSIAN_SCOPES="read:me offline_access")
    assert run("04-token-exchange", workspace).ok
    outcome = run("05-verify-access", workspace, calls="GET /me")
    assert outcome.ok, outcome.failure
    checks = {c["name"]: c for c in outcome.records["verify"]["checks"]}
    assert "every site" not in checks["scopes"]["detail"]
    assert "no site listed" in checks["scopes"]["detail"]
    assert "not documented" in checks["accessible resources"]["detail"]
    assert checks["call GET /me"]["status"] == "ok"
    text = outcome.output_path.read_text()
    assert "Atlassian lists no site" not in text
    assert "What you now have" in text


# --- the step and the widget, in process ----------------------------------------------------


@pytest.fixture
def session(tmp_path, monkeypatch):
    monkeypatch.setattr(_results, "record", lambda name, value: None)
    monkeypatch.setattr(_results, "show", lambda *objects: None)
    new_workspace(tmp_path)
    return pb.start(tmp_path)


def test_the_granular_kind_adds_the_granular_set(session):
    pb.select_scopes(session, scopes="read:me", endpoints=[ISSUE], advised_kind="granular")
    assert session.settings.scopes == ("read:me", "offline_access", *ISSUE_GRANULAR)
    with pytest.raises(PlaybookError, match="advised_kind"):
        pb.select_scopes(session, endpoints=[ISSUE], advised_kind="both")
    with pytest.raises(PlaybookError, match="no HTTP method"):
        pb.select_scopes(session, endpoints="/rest/api/3/myself")


def test_the_advisor_panel_picks_advises_and_saves_through_the_step(session):
    result = pb.select_scopes(session, scopes="read:me")
    (panel,) = [part for part in result.parts if isinstance(part, ScopeAdvisorPanel)]
    assert panel.advised == ()
    assert ISSUE in panel.pick.options
    panel.add_endpoint(ISSUE)
    panel.add_endpoint(PAGES)
    assert panel.text.value == f"{ISSUE}\n{PAGES}"
    panel.advise_now()
    assert panel.advised == ("read:jira-work", "write:page:confluence")
    assert "Confluence API" in panel.result.value and "write:page:confluence" in panel.result.value
    panel.kind.value = "granular"
    assert panel.advised == (*ISSUE_GRANULAR, "write:page:confluence")
    panel.apply_now()
    assert session.settings.scopes == (
        "read:me", "offline_access", *ISSUE_GRANULAR, "write:page:confluence")
    assert "saved" in panel.status.value


def test_the_advisor_panel_shows_a_malformed_line_with_its_fix(session):
    panel = ScopeAdvisorPanel(lambda scopes: pytest.fail("nothing to save"),
                              endpoints=["GTE /rest/api/3/myself"])
    assert panel.advice is None
    assert "no HTTP method" in panel.status.value and "Did you mean GET?" in panel.status.value
    assert panel.apply_now() == ()
