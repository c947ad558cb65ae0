"""`atlassian-playbook webhooks register|list|refresh|delete` against the embedded emulator: the
lifecycle of a webhook, its 30-day expiry marked a week ahead, the scope it needs, and no secret
in anything the commands print."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from atlassian_playbook.emulator import Emulator

from .conftest import assert_no_secrets, secrets_in_store
from .test_cli import cli_env, run_cli

SCOPES = "read:jira-work write:jira-work manage:jira-webhook offline_access"
DAY = 24 * 3600
HOOK_URL = "http://127.0.0.1:9/webhook"  # nothing listens: only registration matters here


def logged_in(tmp_path, scopes=SCOPES):
    env = cli_env(tmp_path)
    login = run_cli(["login", "--no-browser", "--scopes", scopes], env, tmp_path)
    assert login.returncode == 0, login.stderr
    return env, Emulator(state_path=tmp_path / "store" / "emulator-state.json")


def test_register_list_due_refresh_delete(tmp_path):
    env, world = logged_in(tmp_path)
    outputs = []

    def cli(*args):
        result = run_cli(list(args), env, tmp_path)
        outputs.extend([result.stdout, result.stderr])
        assert result.returncode == 0, result.stderr
        return result

    registered = cli("webhooks", "register", "--url", HOOK_URL, "--jql", "project = ACME",
                     "--events", "jira:issue_created,jira:issue_updated", "--json")
    hook = json.loads(registered.stdout)
    assert hook["events"] == ["jira:issue_created", "jira:issue_updated"]
    assert not hook["due"]
    listed = cli("webhooks", "list")
    line = next(x for x in listed.stdout.splitlines() if f" {hook['id']} " in x)
    assert "expires" in line and "in 30.0 days" in line and "DUE" not in line

    world.advance_clock(24 * DAY)  # six days left: due within 7
    due = cli("webhooks", "list")
    line = next(x for x in due.stdout.splitlines() if f" {hook['id']} " in x)
    assert line.startswith("DUE") and "webhooks refresh" in due.stdout
    assert json.loads(cli("webhooks", "list", "--json").stdout)["due_within_7_days"] == [
        hook["id"]]

    refreshed = json.loads(cli("webhooks", "refresh", "--json").stdout)
    assert refreshed["refreshed"] == [hook["id"]]
    expected = datetime.fromtimestamp(world.now(), UTC) + timedelta(days=30)
    assert abs(datetime.fromisoformat(refreshed["expires_at"]) - expected) < timedelta(minutes=1)
    assert json.loads(cli("webhooks", "list", "--json").stdout)["due_within_7_days"] == []

    cli("webhooks", "delete", str(hook["id"]))
    assert "No webhooks" in cli("webhooks", "list").stdout

    secrets = secrets_in_store(tmp_path / "store" / "tokens.json")
    secrets.add(world.default_client.client_secret.reveal())
    assert_no_secrets(outputs, secrets)


def test_without_manage_jira_webhook_the_error_names_the_scope(tmp_path):
    env, world = logged_in(tmp_path, "read:jira-work offline_access")
    result = run_cli(["webhooks", "register", "--url", HOOK_URL, "--jql", "project = ACME",
                      "--events", "jira:issue_created"], env, tmp_path)
    assert result.returncode == 1
    # Checked before anything is sent: the message says what this connection lacks.
    assert "lacks manage:jira-webhook" in result.stderr and "hint:" in result.stderr
    assert "unexpected" not in result.stderr
    assert_no_secrets([result.stdout, result.stderr],
                      {world.default_client.client_secret.reveal()})


def test_jira_refusing_an_event_is_one_line_with_the_reason(tmp_path):
    env, _ = logged_in(tmp_path)
    result = run_cli(["webhooks", "register", "--url", HOOK_URL, "--jql", "project = ACME",
                      "--events", "jira:issue_exploded"], env, tmp_path)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "jira:issue_exploded" in line and "hint:" in line
