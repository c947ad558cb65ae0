"""The health check warns a week before a webhook expires, and refreshes it when asked
(issue 12): notebook 11 in a real batch over an emulator workspace whose webhook expires in 5
days; the warning is in summary.json, summary.html and the terminal summary."""

import json
import subprocess
import sys
from pathlib import Path

from atlassian_playbook import webhooks
from atlassian_playbook.batch.workspace import seed_emulator_workspace
from atlassian_playbook.config import load_settings, save_settings
from atlassian_playbook.emulator import Emulator
from atlassian_playbook.target import Target, emulator_settings, emulator_state_path

from .conftest import assert_no_secrets, secrets_in_store

SCOPES = "read:me read:jira-work write:jira-work manage:jira-webhook offline_access"
DAY = 24 * 3600


def workspace_with_a_webhook_due(root: Path) -> tuple[Path, int]:
    """A workspace whose one connection has a webhook that expires 5 days from the emulator's
    now (registered, then the clock moved 25 days)."""
    ws = root / "ws"
    ws.mkdir()
    save_settings({"ATLASSIAN_SCOPES": SCOPES}, ws / ".env")
    seed_emulator_workspace(ws)
    settings = load_settings(ws / ".env", environ={}).replace(
        token_store=ws / ".playbook" / "tokens.json")
    with Emulator(state_path=emulator_state_path(settings)) as emulator:
        target = Target(emulator_settings(emulator, token_store=settings.token_store,
                                          redirect_uri=settings.redirect_uri), emulator)
        with target:
            hooks = webhooks.for_target(target)
            hook = hooks.register("http://127.0.0.1:9/hooks", "project = ACME",
                                  ["jira:issue_created"])
            emulator.advance_clock(25 * DAY)
    return ws, hook.id


def run_batch(root: Path, ws: Path, name: str, **parameters) -> tuple[subprocess.CompletedProcess,
                                                                     dict, str]:
    plan = root / f"{name}.json"
    plan.write_text(json.dumps({"notebook": "11-health-check.ipynb",
                                "runs": [{"workspace": str(ws), **parameters}]}))
    out = root / name
    done = subprocess.run(
        [sys.executable, "-m", "atlassian_playbook", "batch", str(plan), "--output", str(out),
         "--progress", "none", "--workers", "1"],
        cwd=root, capture_output=True, text=True, timeout=600,
    )
    summary = json.loads((out / "summary.json").read_text())
    return done, summary, (out / "summary.html").read_text()


def test_a_webhook_due_within_a_week_is_a_warning_in_every_summary(tmp_path):
    ws, hook_id = workspace_with_a_webhook_due(tmp_path)
    done, summary, page = run_batch(tmp_path, ws, "flag")
    assert done.returncode == 0, done.stdout + done.stderr  # a warning fails nothing
    (warning,) = summary["warnings"]
    assert warning["record"] == "health"
    assert "1 webhook(s) on acme expire within 7 days" in warning["warning"]
    assert str(hook_id) in warning["warning"]
    assert "<h2>Warnings</h2>" in page and "expire within 7 days" in page
    assert "warning: run 0: 1 webhook(s) on acme expire within 7 days" in done.stdout
    record = summary["runs"][0]["records"]["health"]
    assert record["webhooks_due"] == [hook_id] and "webhooks_refreshed" not in record
    assert_no_secrets([done.stdout, done.stderr, page, json.dumps(summary)],
                      secrets_in_store(ws / ".playbook" / "tokens.json"))


def test_refresh_webhooks_refreshes_the_due_ones_and_clears_the_warning(tmp_path):
    ws, hook_id = workspace_with_a_webhook_due(tmp_path)
    done, summary, _ = run_batch(tmp_path, ws, "refresh", refresh_webhooks=True)
    assert done.returncode == 0, done.stdout + done.stderr
    record = summary["runs"][0]["records"]["health"]
    assert record["webhooks_refreshed"] == [hook_id]
    assert summary["warnings"] == []
    again, summary, _ = run_batch(tmp_path, ws, "after")  # 30 days from now: nothing due
    assert summary["warnings"] == [] and summary["runs"][0]["records"]["health"][
        "webhooks_due"] == []
