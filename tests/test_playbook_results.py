"""The playbook's result objects and its rehearsal interface, in process (no kernel).

A step returns a result that the cell shows (once: steps display nothing themselves) and that
the step recorded; a failed step shows it and raises. What only the emulator may be made to do
goes through one interface, which against Atlassian skips with the reason instead of raising.
"""

from __future__ import annotations

import time

import pytest
from IPython.core.formatters import DisplayFormatter
from IPython.display import Markdown

import atlassian_playbook.playbook as pb
from atlassian_playbook import target as target_module
from atlassian_playbook.errors import PlaybookError
from atlassian_playbook.playbook import _results
from atlassian_playbook.playbook._results import InteractiveResult, StepResult, step
from atlassian_playbook.playbook.rehearsal import EmulatorRehearsals, NotAvailable
from atlassian_playbook.redact import Secret
from atlassian_playbook.target import Target, emulator_settings
from atlassian_playbook.tokens import TokenStore

from .conftest import free_port
from .notebook_helpers import new_workspace


@pytest.fixture
def shown(monkeypatch) -> list:
    displayed: list = []
    monkeypatch.setattr(_results, "show", lambda *objects: displayed.extend(objects))
    return displayed


@pytest.fixture
def recorded(monkeypatch) -> dict:
    values: dict = {}
    monkeypatch.setattr(_results, "record", lambda name, value: values.__setitem__(name, value))
    return values


@pytest.fixture
def session(tmp_path, shown, recorded):
    """A session on the embedded emulator in a fresh workspace."""
    new_workspace(tmp_path)
    session = pb.start(tmp_path, quiet=True)
    yield session
    for key, emulator in list(target_module._embedded.items()):
        if str(key[0]).startswith(str(tmp_path)):
            emulator.stop()
            del target_module._embedded[key]


@pytest.fixture
def on_atlassian(emulator, tmp_path):
    """A session whose target is the real Atlassian (nothing here sends it a request)."""
    real = Target(emulator_settings(emulator, auth_base_url="https://auth.atlassian.com",
                                    api_base_url="https://api.atlassian.com"))
    return pb.Session(tmp_path, real)


# --- the result objects -------------------------------------------------------------------------


def test_a_result_renders_its_text_and_tables_as_markdown_masked_and_escaped():
    secret = Secret("a-client-secret-0123456789")
    result = StepResult("x", {"n": 1}).say("**Saved.**").table(
        [{"field": "<b>", "value": secret, "ok": True}]
    )
    markdown = result._repr_markdown_()
    assert markdown.startswith("**Saved.**\n\n<table>")
    assert "&lt;b&gt;" in markdown and "<td style='text-align:left'>✔</td>" in markdown
    assert "a-client-secret-0123456789" not in markdown and str(secret) in markdown
    assert result.to_dict() == {"n": 1}


def test_jupyter_shows_a_result_through_its_markdown_and_a_console_as_text():
    result = StepResult("x").say("**Saved.**").table([{"field": "a", "ok": False}])
    data, _ = DisplayFormatter().format(result)
    assert data["text/markdown"] == result._repr_markdown_()
    assert data["text/plain"] == "**Saved.**\nfield | ok\na | ✘" == result.to_text()


def test_a_result_with_a_control_shows_it_between_its_texts(shown):
    control = object()
    result = InteractiveResult("x").say("before").table([{"a": 1}]).control(control).say("after")
    result._ipython_display_()
    assert [type(o) for o in shown] == [Markdown, object, Markdown]
    assert shown[0].data.startswith("before\n\n<table>") and shown[2].data == "after"
    assert shown[1] is control
    assert result._repr_markdown_().endswith("</table>\n\nafter")  # the text, without it


def test_a_step_records_its_result_and_leaves_the_showing_to_the_cell(recorded, shown):
    @step()
    def passing() -> StepResult:
        return StepResult("passing", {"ok": True}).say("fine")

    result = passing()
    assert recorded == {"passing": {"ok": True}}
    assert shown == []  # the cell's last expression shows it, so it shows once
    assert result._repr_markdown_() == "fine"


def test_a_failed_step_records_shows_and_raises(recorded, shown):
    @step()
    def failing() -> StepResult:
        return StepResult("failing", {"ok": False}, ["what was found"],
                          error=PlaybookError("Broke.", "Fix it."))

    with pytest.raises(PlaybookError, match="Broke") as raised:
        failing()
    assert raised.value.hint == "Fix it."
    assert recorded == {"failing": {"ok": False}}
    assert [r.name for r in shown] == ["failing"]  # the failing cell still holds the tables


def test_steps_show_nothing_but_the_refresh_notebook_06_keeps_in_a_variable(session, shown,
                                                                             recorded):
    overview = pb.overview(session)
    login = pb.exchange_tokens(session)
    assert shown == []
    assert recorded["overview"] == overview.to_dict() and overview.to_dict()["connections"] == 0
    assert "granted scopes" in login._repr_markdown_()
    refreshed = pb.refresh_tokens(session)
    assert shown == [refreshed]  # `refreshed = pb.refresh_tokens(...)` shows no Out[]
    assert recorded["refresh"]["rotated"] and refreshed.refresh.previous_tokens is not None


def test_the_timeline_dates_are_the_connections_own(session, recorded):
    pb.exchange_tokens(session)
    entry = TokenStore(session.settings.token_store).get(session.settings.client_id)
    pb.lifecycle_timeline(session)
    rows = {row["what"]: row for row in recorded["timeline"]}

    def iso(epoch: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))

    assert rows["access token"]["until"] == iso(entry.tokens.expires_at)
    assert rows["refresh token: inactivity"]["until"] == iso(entry.updated_at + 90 * 86400)
    assert rows["a rotated refresh token"]["until"] == "10 minutes after its rotation"
    assert all(row["why"] for row in rows.values())


# --- the rehearsal interface --------------------------------------------------------------------


def test_against_atlassian_every_rehearsal_is_skipped_with_the_reason(on_atlassian, recorded,
                                                                      shown):
    stage = on_atlassian.rehearsals
    assert isinstance(stage, NotAvailable)
    assert stage.unavailable == "Not available against Atlassian"
    traps = pb.rehearse_consent_traps(on_atlassian)  # no exception: a message and a record
    assert recorded["rehearsals"]["status"] == "skipped"
    assert recorded["rehearsals"]["reason"].startswith("Not available against Atlassian: ")
    assert "**Skipped.** Not available against Atlassian" in traps._repr_markdown_()
    pb.demonstrate_reuse(on_atlassian, pb.Refreshed("refresh"))
    assert recorded["reuse"]["status"] == "skipped" and recorded["reuse"]["demonstrated"] is False
    assert "revoke this grant for real" in recorded["reuse"]["reason"]
    assert shown == []


def test_a_rehearsal_called_against_atlassian_anyway_says_why_not(on_atlassian):
    with pytest.raises(PlaybookError, match="Not available against Atlassian") as raised:
        on_atlassian.rehearsals.advance_clock(60)
    assert "emulator" in raised.value.hint


def test_another_server_is_named_in_the_reason(emulator, tmp_path):
    double = pb.Session(tmp_path, Target(emulator_settings(emulator)))  # no embedded emulator
    assert double.rehearsals.unavailable == f"Not available against {emulator.auth_base_url}"


def test_the_emulator_rehearses_a_rate_limit_and_says_what_it_answered(emulator, http, tmp_path):
    stage = pb.Session(tmp_path, Target(emulator_settings(emulator), emulator)).rehearsals
    assert isinstance(stage, EmulatorRehearsals) and stage.unavailable is None
    with stage.answers("GET", "/me") as statuses:
        stage.rate_limit_next("/me", retry_after=1)
        first = http.get(f"{emulator.api_base_url}/me")
        second = http.get(f"{emulator.api_base_url}/me")
        http.get(f"{emulator.api_base_url}/oauth/token/accessible-resources")
    assert first.status_code == 429 and "retry-after" in first.headers
    assert statuses == [429, second.status_code] and second.status_code != 429


def test_against_another_server_the_report_runs_and_its_rate_limit_rehearsal_is_skipped(
    emulator, tmp_path, recorded
):
    """A test double (an emulator this test runs, not the playbook's): the real reporting
    call goes out, the 429 is not rehearsed, and the record says why."""
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    client = emulator.register_client(redirect_uris=(redirect,))
    new_workspace(
        tmp_path,
        register=False,
        ATLASSIAN_CLIENT_ID=client.client_id,
        ATLASSIAN_CLIENT_SECRET=client.client_secret.reveal(),
        ATLASSIAN_REDIRECT_URI=redirect,
        ATLASSIAN_AUTH_BASE_URL=emulator.auth_base_url,
        ATLASSIAN_API_BASE_URL=emulator.api_base_url,
        ATLASSIAN_SCOPES="read:me report:personal-data offline_access",
    )
    session = pb.start(tmp_path, quiet=True)
    assert session.target.kind == "custom"
    pb.exchange_tokens(session)
    report = pb.personal_data_report(session)
    data = recorded["personal_data"]
    assert data["status"] == "reported" and data["requests"] == 1
    assert "rate_limited" not in data
    assert data["rate_limit_rehearsal"] == {
        "status": "skipped",
        "reason": f"Not available against {emulator.auth_base_url}",
    }
    assert 429 not in [status for _, _, status in emulator.request_log]
    assert "Rate-limit rehearsal skipped" in report._repr_markdown_()
