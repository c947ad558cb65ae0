"""Paper cuts new users met in the CLI (issue 11): each test runs the real CLI in a subprocess,
against the embedded emulator, and reads what the user reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import assert_no_secrets
from .test_cli import cli_env, run_cli

WITHOUT_OFFLINE = "read:me read:jira-work"
WITH_OFFLINE = "read:me read:jira-work offline_access"


# --- doctor: a missing offline_access is a warning the summary names --------------------------


def test_doctor_summary_names_the_missing_offline_access_warning(tmp_path):
    env = cli_env(tmp_path, ATLASSIAN_SCOPES=WITHOUT_OFFLINE)
    doctor = run_cli(["doctor"], env, tmp_path)
    assert doctor.returncode == 0, doctor.stdout  # no check failed: scripts may go on
    lines = doctor.stdout.splitlines()
    warned = [line for line in lines if line.startswith("warning")]
    assert len(warned) == 1 and "offline_access" in warned[0] and "hint:" in warned[0]
    assert not any(line.startswith("skipped") and "offline_access" in line for line in lines)
    assert lines[-1].startswith("All checks passed, 1 warning: ")
    assert "no refresh token" in lines[-1]

    report = json.loads(run_cli(["doctor", "--json"], env, tmp_path).stdout)
    assert report["ok"] is True and report["warnings"] == 1
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["scopes: missing-offline-access"] == "warning"


def test_doctor_strict_fails_on_a_warning_and_help_documents_the_exit_status(tmp_path):
    strict = run_cli(["doctor", "--strict"], cli_env(tmp_path, ATLASSIAN_SCOPES=WITHOUT_OFFLINE),
                     tmp_path)
    assert strict.returncode == 1
    summary = strict.stdout.splitlines()[-1]
    assert summary.startswith("No check failed, but --strict fails on 1 warning: ")

    clean = run_cli(["doctor", "--strict"], cli_env(tmp_path, ATLASSIAN_SCOPES=WITH_OFFLINE),
                    tmp_path)
    assert clean.returncode == 0, clean.stdout
    assert clean.stdout.splitlines()[-1] == "All checks passed."

    usage = run_cli(["doctor", "--help"], cli_env(tmp_path), tmp_path).stdout
    assert "exit status" in usage and "--strict" in usage
    assert "0 " in usage and "1 " in usage


# --- batch: a malformed plan is pointed at by line and column ---------------------------------


@pytest.mark.parametrize(("name", "text", "where", "cause"), [
    ("indent.yaml", "notebook: 11-health-check.ipynb\nruns:\n  - account_id: a\n   workspace: x\n",
     "line 4, column 4", "indentation"),
    ("tab.yaml", "notebook: 11-health-check.ipynb\nruns:\n\t- account_id: a\n",
     "line 3, column 1", "tab"),
    ("quote.yaml", 'notebook: "11-health-check.ipynb\nruns: []\n', "line 3, column 1", "quote"),
    ("bracket.yaml", "notebook: 11-health-check.ipynb\nruns: [{account_id: a}\n",
     "line 3, column 1", "bracket"),
    ("comma.json", '{"notebook": "11-health-check.ipynb",\n "runs": [{"account_id": "a"},]\n}\n',
     "line 2, column 31", "trailing comma"),
])
def test_a_malformed_plan_names_its_file_line_and_column(tmp_path, name, text, where, cause):
    (tmp_path / name).write_text(text, encoding="utf-8")
    batch = run_cli(["batch", name], cli_env(tmp_path), tmp_path)
    assert batch.returncode == 1
    message, _, hint = batch.stderr.strip().partition("  hint: ")
    assert message.startswith(f"error: The plan {name} cannot be read: {where}: "), message
    assert cause in hint and "examples/batch-plan.yaml" in hint, hint
    assert batch.stderr.count("\n") == 1  # one line, as every error


# --- login --paste: the hint's placeholders print as written ----------------------------------


def test_the_paste_hint_prints_its_placeholders_and_a_real_code_stays_masked(tmp_path):
    env = cli_env(tmp_path)
    garbage = run_cli(["login", "--paste", "--no-browser"], env, tmp_path, stdin="garbage\n")
    assert garbage.returncode == 1
    assert "including ?code=...&state=..." in garbage.stderr, garbage.stderr
    assert "«secret" not in garbage.stderr

    # A pasted URL with a real token but neither code nor state: the message quotes it, masked.
    token = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LWNvZGU.Zm9vYmFy"
    quoted = run_cli(["login", "--paste", "--no-browser"], env, tmp_path,
                     stdin=f"http://127.0.0.1:1/callback?access_token={token}\n")
    assert quoted.returncode == 1
    assert "access_token=«secret:" in quoted.stderr, quoted.stderr
    assert_no_secrets([quoted.stdout, quoted.stderr], {token})


# --- demo: it ends by saying what to do next --------------------------------------------------


def test_demo_ends_with_the_next_three_things_to_do(demo_run):
    demo, cwd = demo_run
    assert demo.returncode == 0, demo.stdout + demo.stderr
    tail = demo.stdout[demo.stdout.index("Playbook passed."):]
    steps = [line for line in tail.splitlines() if line[:3] in ("1. ", "2. ", "3. ")]
    assert len(steps) == 3, tail
    site = (cwd / "out" / "site" / "index.html").resolve()
    assert site.is_file() and str(site) in steps[0]
    assert "jupyter lab" in steps[1] and "atlassian-playbook init" in steps[1]
    assert "ATLASSIAN_CLIENT_ID" in steps[2] and "ATLASSIAN_CLIENT_SECRET" in steps[2]
    assert "checklist --profile" in steps[2] and "login" in steps[2]


def test_next_steps_in_a_workspace_skip_init_and_say_how_to_get_jupyterlab(tmp_path,
                                                                            monkeypatch):
    from atlassian_playbook import demo

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01-overview.ipynb").write_text("{}")
    monkeypatch.chdir(tmp_path)
    found = demo.next_steps(tmp_path / "site" / "index.html", Path(".env"))
    assert "init" not in found and "cd " not in found and "in .env," in found

    real_find_spec = demo.importlib.util.find_spec
    monkeypatch.setattr(demo.importlib.util, "find_spec",
                        lambda name: None if name == "jupyterlab" else real_find_spec(name))
    absent = demo.next_steps(tmp_path / "site" / "index.html", Path(".env"))
    assert "pip install 'atlassian-oauth-playbook[lab]'`, then `" in absent


def test_a_missing_plan_says_where_it_was_looked_for(tmp_path):
    batch = run_cli(["batch", "nightly.yaml"], cli_env(tmp_path), tmp_path)
    assert batch.returncode == 1
    assert f"nightly.yaml does not exist (in {tmp_path.resolve()})" in batch.stderr
    assert "examples/batch-plan.yaml" in batch.stderr


def test_login_names_the_option_a_typed_scope_came_from(tmp_path):
    result = run_cli(["login", "--scopes", "read:jira-wrok read:me"], cli_env(tmp_path), tmp_path)
    assert result.returncode == 1
    assert "--scopes names unknown scope: read:jira-wrok" in result.stderr
    assert "ATLASSIAN_SCOPES" not in result.stderr
    assert "did you mean read:jira-work" in result.stderr


def test_a_missing_callback_url_gets_a_sentence_and_an_example(tmp_path):
    result = run_cli(["emulator", "callbacks", "add"], cli_env(tmp_path), tmp_path)
    assert result.returncode == 1
    hint = result.stderr.split("hint:", 1)[1]
    assert "Give it after the action" in hint
    assert "emulator callbacks add http://127.0.0.1:8765/callback" in hint
