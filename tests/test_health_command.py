"""`atlassian-playbook health` (issue 13, item 3): a fleet's health check without kernels.

Real emulator workspaces (one headless login each, as ``batch --from-store`` tests use), real
CLI processes. A healthy fleet runs no notebook at all; a broken connection gets notebook 11's
executed page and the others none; a webhook due is a warning; two workspaces sharing one
token-store entry are never refreshed at once; no secret reaches stdout, stderr or a file the
command wrote. No test measures speed (benchmarks/health_fleet.py does): ordering facts come
from the results' own start and end times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from atlassian_playbook.batch.fleet import _merged
from atlassian_playbook.batch.report import BatchSummary
from atlassian_playbook.batch.results import RunResult
from atlassian_playbook.batch.workspace import known_secrets, seed_emulator_workspace
from atlassian_playbook.config import load_workspace_settings, save_settings
from atlassian_playbook.connection import login_client_credentials
from atlassian_playbook.emulator import Emulator, read_state
from atlassian_playbook.emulator._state import digest
from atlassian_playbook.target import connect
from atlassian_playbook.tokens import TokenStore

from .conftest import assert_no_secrets
from .test_health_webhooks import workspace_with_a_webhook_due

# The keys `batch` writes: the health summary must have exactly these, and so must each run.
SUMMARY_KEYS = set(BatchSummary(name="x", notebook="n", executor="e", workers=1,
                                folder=Path("."), started=0, finished=0).to_dict())
RUN_KEYS = set(RunResult(index=0, run_id="r", notebook="n", parameters={},
                         status="ok").to_json())


def seed(root: Path, *names: str) -> list[Path]:
    workspaces = [root / name for name in names]
    for workspace in workspaces:
        seed_emulator_workspace(workspace)
    return workspaces


def health(cwd: Path, out: Path, workspaces: list[Path],
           *flags: str) -> subprocess.CompletedProcess:
    """One `atlassian-playbook health --from-store` process over ``workspaces``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATLASSIAN_")}
    where = [arg for ws in workspaces for arg in ("--workspace", str(ws))]
    return subprocess.run(
        [sys.executable, "-m", "atlassian_playbook", "health", "--from-store", *where,
         "--output", str(out), "--progress", "none", *flags],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def secrets_of(workspaces: list[Path]) -> set[str]:
    """Client secrets and every stored token of the workspaces, as they are now."""
    return set().union(*(known_secrets(ws) for ws in workspaces))


def notebooks_in(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.ipynb"))


def revoke(workspace: Path) -> None:
    """The user revokes the app (Atlassian's Connected apps page) for this connection."""
    with Emulator(state_path=workspace / ".playbook" / "emulator-state.json") as emulator:
        assert emulator.revoke() == 1


def windows_overlap(a: dict, b: dict) -> bool:
    return a["started"] < b["finished"] and b["started"] < a["finished"]


def test_a_healthy_fleet_is_checked_in_process_and_runs_no_notebook(tmp_path):
    workspaces = seed(tmp_path, "acme", "globex", "initech")
    before = secrets_of(workspaces)
    out = tmp_path / "out"
    done = health(tmp_path, out, workspaces, "--json")

    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) == SUMMARY_KEYS and all(set(run) == RUN_KEYS for run in data["runs"])
    assert data["notebook"] == "11-health-check.ipynb" and data["executor"] == "in-process"
    # Embedded emulators share this process's CPU: one thread, unless --workers says more.
    assert data["workers"] == 1
    assert data["counts"] == {"ok": 3} and data["ok"] is True and data["warnings"] == []
    assert [r["parameters"]["workspace"] for r in data["runs"]] == [str(w) for w in workspaces]
    for run in data["runs"]:
        record = run["records"]["health"]
        assert record["healthy"] and record["refreshed"] and record["verified"]
        assert record["rotated"] and record["account"]["account_id"] == record["account_id"]
        assert run["records"]["target"] == "emulator" and run["output"] is None
    assert json.loads((out / "summary.json").read_text()) == data
    assert "<h1>Batch <code>health</code></h1>" in (out / "summary.html").read_text()
    assert notebooks_in(out) == [] and not (out / "notebooks").exists()  # no kernel ran
    assert_no_secrets([done.stdout, done.stderr, out], before | secrets_of(workspaces))


def test_only_the_broken_connection_gets_a_notebook_page(tmp_path):
    workspaces = seed(tmp_path, "acme", "globex", "initech")
    revoke(workspaces[1])
    before = secrets_of(workspaces)
    out = tmp_path / "out"
    done = health(tmp_path, out, workspaces)

    assert done.returncode == 1, done.stdout + done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"ok": 2, "failed": 1}
    ok_a, broken, ok_c = summary["runs"]
    assert ok_a["output"] is None and ok_c["output"] is None
    # The failed run is notebook 11's, as a batch failure: its cell, error, hint and page.
    failure = broken["failure"]
    assert failure["error"] == "ReauthorizationRequired" and "login" in failure["hint"]
    assert failure["cell"] is not None and "pb.health_check(" in failure["source"]
    page = Path(broken["output"])
    assert notebooks_in(out) == [page] and page.parent == out / "notebooks" / "runs"
    assert broken["records"]["health"]["healthy"] is False
    assert broken["parameters"]["workspace"] == str(workspaces[1])
    link = os.path.relpath(page, out)
    assert f"<a href='{link}'>{page.name}</a>" in (out / "summary.html").read_text()
    assert f"notebook page of run 1: {page}" in done.stdout
    assert "failed: run 1 at cell" in done.stdout
    assert_no_secrets([done.stdout, done.stderr, out], before | secrets_of(workspaces))


def test_a_webhook_due_is_a_warning_and_refresh_webhooks_refreshes_it(tmp_path):
    ws, hook_id = workspace_with_a_webhook_due(tmp_path)
    before = secrets_of([ws])
    done = health(tmp_path, tmp_path / "flag", [ws])

    assert done.returncode == 0, done.stdout + done.stderr  # a warning fails nothing
    summary = json.loads((tmp_path / "flag" / "summary.json").read_text())
    (warning,) = summary["warnings"]
    assert warning["record"] == "health" and str(hook_id) in warning["warning"]
    assert "1 webhook(s) on acme expire within 7 days" in warning["warning"]
    assert "<h2>Warnings</h2>" in (tmp_path / "flag" / "summary.html").read_text()
    assert "warning: run 0: 1 webhook(s) on acme expire within 7 days" in done.stdout
    assert notebooks_in(tmp_path / "flag") == []

    done = health(tmp_path, tmp_path / "refresh", [ws], "--refresh-webhooks", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    (run,) = summary["runs"]
    assert run["parameters"]["refresh_webhooks"] is True
    assert run["records"]["health"]["webhooks_refreshed"] == [hook_id]
    assert summary["warnings"] == []
    assert_no_secrets([done.stdout, done.stderr, tmp_path / "flag", tmp_path / "refresh"],
                      before | secrets_of([ws]))


def test_two_workspaces_sharing_one_entry_are_refreshed_one_after_the_other(tmp_path):
    """Overlapping refreshes of one entry would present one refresh token twice: after the
    10-minute leeway Atlassian takes that for theft and revokes the grant (FACTS.md); inside
    it, the emulator forks the token family. Here the family shows a chain instead: each
    refresh presented the token the previous one saved."""
    acme, other = seed(tmp_path, "acme", "globex")
    shared = tmp_path / "acme-too"  # a second workspace on acme's store: the same entry
    shared.mkdir()
    store = acme / ".playbook" / "tokens.json"
    save_settings({"ATLASSIAN_TOKEN_STORE": str(store)}, shared / ".env")
    state_file = acme / ".playbook" / "emulator-state.json"
    first = TokenStore(store).list()[0].tokens.refresh_token.reveal()
    known = set(read_state(state_file)["refresh_tokens"])
    before = secrets_of([acme, other])

    done = health(tmp_path, tmp_path / "out", [acme, other, shared], "--workers", "3", "--json")

    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)["runs"]
    a, g, a_too = runs
    assert a["entry"] == a_too["entry"] != g["entry"]
    assert not windows_overlap(a, a_too)
    assert all(r["records"]["health"]["healthy"] and r["records"]["health"]["rotated"]
               for r in runs)
    state = read_state(state_file)["refresh_tokens"]
    new = {key: record for key, record in state.items() if key not in known}
    assert state[digest(first)]["status"] == "rotated"
    # Two refreshes, one after the other: the first's token rotated by the second, no fork.
    assert sorted(r["status"] for r in new.values()) == ["active", "rotated"]
    last = TokenStore(store).list()[0].tokens.refresh_token.reveal()
    assert new[digest(last)]["status"] == "active"
    assert_no_secrets([done.stdout, done.stderr, tmp_path / "out"],
                      before | secrets_of([acme, other]))


def test_a_service_account_connection_is_checked_beside_a_3lo_one(tmp_path):
    (acme,) = seed(tmp_path, "acme")
    service = tmp_path / "service"
    service.mkdir()
    save_settings({"ATLASSIAN_GRANT": "client_credentials", "ATLASSIAN_SITE": "acme"},
                  service / ".env")
    with connect(load_workspace_settings(service)) as target:
        login_client_credentials(target)
    before = secrets_of([acme, service])
    done = health(tmp_path, tmp_path / "out", [service, acme], "--json")

    assert done.returncode == 0, done.stderr
    service_run, acme_run = json.loads(done.stdout)["runs"]
    record = service_run["records"]["health"]
    assert record["healthy"] and record["grant"] == "client_credentials"
    assert record["new_access_token"] is True and record["rotated"] is False
    assert acme_run["records"]["health"]["grant"] == "authorization_code"
    assert notebooks_in(tmp_path / "out") == []
    assert_no_secrets([done.stdout, done.stderr, tmp_path / "out"],
                      before | secrets_of([acme, service]))

def test_a_folder_without_connections_is_an_error_with_the_fix(tmp_path):
    done = health(tmp_path, tmp_path / "out", [tmp_path])
    assert done.returncode == 1 and done.stdout == ""
    assert "error: No token-store entries found" in done.stderr
    assert "hint: Log in first" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("status, kept", [("ok", "page"), ("failed", "page"),
                                          ("timeout", "check"), ("cancelled", "check")])
def test_a_failed_check_becomes_its_notebook_run_once_that_finished(tmp_path, status, kept):
    checked = RunResult(index=5, run_id="r", notebook="11-health-check.ipynb",
                        parameters={"workspace": "ws"}, status="failed", entry="e",
                        failure={"error": "RateLimited", "message": "429", "hint": "wait"})
    page = RunResult(index=0, run_id="r", notebook="11-health-check.ipynb",
                     parameters={"workspace": "ws"}, status=status, entry="e",
                     failure=None if status == "ok" else {"error": "X", "message": "m"},
                     records={"health": {"healthy": status == "ok"}}, output="page.ipynb")
    merged = _merged(checked, page)
    assert merged.index == 5 and merged.output == "page.ipynb"
    assert merged.status == (status if kept == "page" else "failed")
    if status == "ok":  # healthy a moment later: ok, with a warning that says what happened
        summary = BatchSummary(name="h", notebook="n", executor="in-process", workers=1,
                               folder=tmp_path, started=0, finished=0, results=[merged])
        (warning,) = summary.warnings
        assert "failed in process (RateLimited: 429)" in warning["warning"]
    if kept == "check":
        assert merged.failure == checked.failure




def test_the_command_reads_the_fleet_into_one_plan(tmp_path, monkeypatch, capsys):
    import atlassian_playbook.batch.fleet as fleet
    import atlassian_playbook.batch.plan as plans
    from atlassian_playbook import cli

    (workspace,) = seed(tmp_path, "acme")
    built = []
    real = plans.plan_from_store

    def counted(*args, **kwargs):
        built.append(args)
        return real(*args, **kwargs)

    for module in (plans, fleet):
        monkeypatch.setattr(module, "plan_from_store", counted)
    assert cli.main(["health", "--workspace", str(workspace), "--output",
                     str(tmp_path / "out"), "--progress", "none"]) == 0
    assert f"Target of {workspace}" in capsys.readouterr().out  # the listing's plan
    assert len(built) == 1  # is the checks' plan
