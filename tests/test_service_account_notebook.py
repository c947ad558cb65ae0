"""Notebook 10 (service accounts) runs headless under papermill against the embedded
emulator, records each step, keeps no secret in its outputs, and a service account's
connection is what the batch health check (notebook 11) checks and reports."""

from __future__ import annotations

import json
from pathlib import Path

from atlassian_playbook.batch.workspace import known_secrets, store_entries
from atlassian_playbook.emulator import Emulator
from atlassian_playbook.manifest import notebooks

from .conftest import assert_no_secrets
from .notebook_helpers import new_workspace, run, tokens_in_store

NOTEBOOK = "10-service-account"


def service_account_secret(workspace: Path) -> str:
    emu = Emulator(state_path=workspace / ".playbook" / "emulator-state.json")
    return emu.service_account.client_secret.reveal()


def test_the_notebook_runs_headless_and_no_secret_reaches_its_outputs(tmp_path):
    workspace = new_workspace(tmp_path / "ws", ATLASSIAN_SITE="acme")
    outcome = run(NOTEBOOK, workspace)
    assert outcome.ok, outcome.failure
    records = outcome.records
    assert records["target"] == "emulator"
    checklist_ids = [s["id"] for s in records["checklist"]["steps"]]
    assert "service-account-credential" in checklist_ids
    assert "authorization-callback" not in checklist_ids  # no console step applies
    token = records["service_account_token"]
    assert token["grant"] == "client_credentials" and token["refresh_token_issued"] is False
    assert records["service_account_verify"]["ok"] is True
    renewal = records["service_account_renewal"]
    assert renewal["renewed"] is True and renewal["refresh_token"] is False
    assert renewal["me"] == [401, 200] and renewal["token_endpoint"] == [200]
    assert {row[""] for row in records["differences"]["rows"]} >= {
        "consent screen", "refresh token", "access token lifetime", "who creates it",
        "which sites"}

    secrets = tokens_in_store(workspace) | {service_account_secret(workspace)}
    assert_no_secrets([outcome.output_path], secrets)


def test_a_scope_parameter_narrows_the_token(tmp_path):
    workspace = new_workspace(tmp_path / "ws", ATLASSIAN_SITE="acme")
    outcome = run(NOTEBOOK, workspace, scopes="read:me read:jira-work read:jira-user")
    assert outcome.ok, outcome.failure
    assert outcome.records["service_account_token"]["granted_scopes"] == [
        "read:me", "read:jira-work", "read:jira-user"]


def test_it_comes_before_the_health_check_that_covers_it():
    files = [nb.file for nb in notebooks()]
    assert files.index(f"{NOTEBOOK}.ipynb") + 1 == files.index("11-health-check.ipynb")


def test_the_health_check_checks_and_reports_a_service_account_connection(tmp_path):
    workspace = new_workspace(tmp_path / "ws", ATLASSIAN_SITE="acme",
                              ATLASSIAN_GRANT="client_credentials")
    assert run(NOTEBOOK, workspace).ok
    (entry,) = store_entries(workspace)  # the batch's --from-store sees it
    assert entry.grant == "client_credentials"
    assert service_account_secret(workspace) in known_secrets(workspace)
    before = entry.tokens.access_token
    outcome = run("11-health-check", workspace)
    assert outcome.ok, outcome.failure
    health = outcome.records["health"]
    assert health["healthy"] is True and health["grant"] == "client_credentials"
    assert health["refreshed"] is True and health["new_access_token"] is True
    (after,) = store_entries(workspace)
    assert after.tokens.access_token != before and after.tokens.refresh_token is None
    text = json.dumps(json.loads(outcome.output_path.read_text()))
    assert "no refresh token" in text
    assert_no_secrets([outcome.output_path], tokens_in_store(workspace)
                      | {service_account_secret(workspace)})
