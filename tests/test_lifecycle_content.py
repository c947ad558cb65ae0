"""The lifecycle story (notebooks 01, 06, 09) and the session header, run headless.

What the notebooks say is checked against FACTS.md ("Refresh tokens"): the 365-day absolute
lifetime is in force, the previous access token dies 10 minutes after a refresh, and only a
reuse *after* the 10-minute leeway revokes the grant. The live-session trap is played as a room
plays it: the person picks a site on the consent page, notebook 06 revokes the grant through a
reuse and recovers, and the recovery must consent to that same site, so 09 stays healthy.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import httpx
import pytest

import atlassian_playbook.playbook as pb
from atlassian_playbook import connection, target
from atlassian_playbook.emulator import Emulator, read_state
from atlassian_playbook.execute import run_notebook
from atlassian_playbook.kernels import SpareKernels
from atlassian_playbook.playbook import _results
from atlassian_playbook.target import emulator_settings

from .conftest import assert_no_secrets, loopback_callback
from .notebook_helpers import (
    cell_source,
    cell_text,
    clean_environ,
    client_secrets_in_state,
    failing_cell,
    new_workspace,
    run,
    tokens_in_store,
)

pytestmark = pytest.mark.notebook

GLOBEX = "8b2e6d14-0c3f-4e7a-b5d9-1a4f7c2e9b63"  # the default world's Jira-only site
JIRA_ONLY_SCOPES = "read:me read:jira-user offline_access"


def _state(workspace: Path) -> Path:
    return workspace / ".playbook" / "emulator-state.json"


def _cells(outcome) -> list[dict]:
    return json.loads(outcome.output_path.read_text())["cells"]


def _all_text(outcome) -> str:
    """What a reader sees: every Markdown cell and every output."""
    return "\n".join(
        cell_source(c) if c["cell_type"] == "markdown" else cell_text(c) for c in _cells(outcome)
    )


def _header(outcome) -> str:
    """The Markdown the session cell (``pb.start``) shows."""
    cell = next(c for c in _cells(outcome) if "pb.start(" in cell_source(c))
    shown = [
        "".join(o["data"]["text/markdown"])
        for o in cell["outputs"]
        if "text/markdown" in o.get("data", {})
    ]
    assert len(shown) == 1, shown
    return shown[0]


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    """01 before any login, then 04, 06 and 09; then the grant revoked and 09 again."""
    ws = new_workspace(tmp_path_factory.mktemp("lifecycle"))
    with clean_environ(), SpareKernels(runs=6) as kernels:  # each next kernel started ahead
        runs = {name: run(name, ws, kernels=kernels) for name in (
            "01-overview", "04-token-exchange", "06-refresh-lifecycle", "11-health-check")}
        secrets = tokens_in_store(ws) | client_secrets_in_state(ws)
        runs["01-after-login"] = _run_as("01-overview", ws, "01-after-login", kernels)
        Emulator(state_path=_state(ws)).revoke()  # the user removes the app in Connected apps
        runs["09-revoked"] = _run_as("11-health-check", ws, "09-revoked", kernels)
    return ws, runs, secrets


def _run_as(name: str, workspace: Path, label: str, kernels: SpareKernels):
    """Run ``name`` again without overwriting its first executed copy."""
    with clean_environ():
        return run_notebook(f"{name}.ipynb", workspace / "out" / f"{label}.ipynb",
                            {"workspace": str(workspace)}, timeout=120, kernels=kernels)


def test_01_says_only_reuse_after_the_leeway_revokes_the_grant(story):
    _, runs, _ = story
    assert runs["01-overview"].ok
    text = _all_text(runs["01-overview"])
    assert "used twice (which revokes" not in text
    assert re.search(r"after the 10-minute (reuse )?leeway", text), text


def test_06_states_the_365_days_in_force_and_the_old_access_token_s_death(story):
    _, runs, _ = story
    outcome = runs["06-refresh-lifecycle"]
    assert outcome.ok, outcome.failure
    text = _all_text(outcome)
    assert "unconfirmed" not in text.lower()
    assert "365 days" in text
    assert re.search(r"previous access token[^.]*10 minutes", text), text
    timeline = {row["what"]: row for row in outcome.records["timeline"]}
    absolute = timeline["refresh token: absolute"]
    assert "in force" in absolute["why"] and "unconfirmed" not in absolute["why"].lower()
    old_access = timeline["the previous access token"]
    assert "10 minutes" in old_access["until"]
    assert "revoked" in old_access["why"]


@pytest.mark.parametrize("name", ["01-overview", "06-refresh-lifecycle", "11-health-check"])
def test_each_notebook_ends_with_what_the_learner_now_has(story, name):
    _, runs, _ = story
    last = cell_source(_cells(runs[name])[-1])
    assert "You now have" in last, last


def test_the_session_header_is_one_line_and_names_the_connection(story):
    ws, runs, secrets = story
    before = _header(runs["01-overview"])
    assert "\n" not in before.strip(), before
    for label in ("**Target:** the embedded Atlassian emulator", "**Workspace:**",
                  "**Profile:** custom"):
        assert label in before
    assert "**Account:**" not in before  # nobody logged in yet
    after = _header(runs["01-after-login"])
    assert "\n" not in after.strip(), after
    entry = json.loads((ws / ".playbook" / "tokens.json").read_text())["entries"]
    (stored,) = entry.values()
    assert f"**Account:** `{stored['account_id']}`" in after
    assert f"**Site:** {stored['site']['name']}" in after
    assert_no_secrets([before, after, _header(runs["06-refresh-lifecycle"])], secrets)


def test_09_shows_a_table_with_the_whole_error_and_its_hint(story):
    _, runs, _ = story
    healthy = runs["11-health-check"]
    assert healthy.ok, healthy.failure
    check_cell = next(c for c in _cells(healthy) if "pb.health_check(" in cell_source(c))
    assert "{'" not in cell_text(check_cell)  # no Python dict printed
    assert "<th style='text-align:left'>status</th>" in cell_text(check_cell)

    revoked = runs["09-revoked"]
    assert not revoked.ok
    health = revoked.records["health"]
    assert health["healthy"] is False
    cell = failing_cell(revoked)
    shown = cell_text(cell)
    assert "{'" not in shown
    left = "<td style='text-align:left'>"
    row = (f"{left}FAILED</td>{left}refresh</td>{left}{html.escape(health['error'])}</td>"
           f"{left}{html.escape(health['hint'])}</td>")
    assert row in shown, shown


# --- the live-session trap: re-consent must keep the chosen site --------------------------------


def _person_picks(site: str):
    """The person at the emulator's consent page: chooses ``site`` and presses Accept."""

    def open_link(url: str) -> None:
        with httpx.Client(trust_env=False, timeout=30) as browser:
            page = browser.get(url)
            consent = re.search(r'name="consent_request" value="([^"]+)"', page.text).group(1)
            answer = browser.post(
                url.split("?")[0] + "/decision",
                data={"consent_request": consent, "decision": "accept", "site": site},
            )
            assert answer.is_redirect, answer.text
            browser.get(answer.headers["location"])  # the loopback listener gets the code

    return open_link


@pytest.fixture
def room(tmp_path, monkeypatch):
    """A workspace where a person chose the Jira-only site at consent (as in notebook 04 with
    ``consent="browser"``), with Jira-only scopes so that site serves everything asked for."""
    monkeypatch.setattr(_results, "show", lambda *objects: None)
    ws = new_workspace(tmp_path / "room", ATLASSIAN_SCOPES=JIRA_ONLY_SCOPES)
    session = pb.start(ws, auto_consent=False, quiet=True)
    try:
        login = connection.login(session.target, browser="none", mode="listen",
                                 show_url=_person_picks(GLOBEX), timeout=60)
    finally:
        session.target.close()
        for key, emulator in list(target._embedded.items()):
            if str(key[0]).startswith(str(tmp_path)):
                emulator.stop()
                del target._embedded[key]
    assert [s.id for s in login.sites] == [GLOBEX]
    return ws


def _granted_sites(workspace: Path) -> list[set[str]]:
    grants = read_state(_state(workspace))["grants"].values()
    return [set(grant["sites"]) for grant in grants]


def test_recovery_in_06_consents_to_the_chosen_site_and_09_stays_healthy(room):
    lifecycle = run("06-refresh-lifecycle", room)
    assert lifecycle.ok, lifecycle.failure
    reuse = lifecycle.records["reuse"]
    assert reuse["grant_revoked"] and reuse["recovered"]
    assert reuse["site"] == GLOBEX
    assert _granted_sites(room) == [{GLOBEX}]  # no second site added by the recovery
    health = run("11-health-check", room)
    assert health.ok, health.failure
    assert health.records["health"]["site"]["cloud_id"] == GLOBEX


# --- connection.login's site choice, in process -------------------------------------------------


@pytest.fixture
def emulated(emulator, tmp_path):
    """A target on the (auto-consenting) emulator, its store in ``tmp_path``."""
    redirect_uri = loopback_callback(emulator)
    settings = emulator_settings(emulator, redirect_uri=redirect_uri,
                                 scopes=tuple(JIRA_ONLY_SCOPES.split()),
                                 token_store=tmp_path / "tokens.json")
    with target.Target(settings, emulator) as emulated:
        yield emulated


def _login(emulated, **options):
    return connection.login(emulated, browser="headless", show_url=lambda url: None, **options)


def test_a_headless_login_consents_to_the_site_asked_for(emulated):
    first = _login(emulated, site=GLOBEX)
    assert [s.id for s in first.sites] == [GLOBEX]  # the emulator's own default is acme
    assert first.entry.site["id"] == GLOBEX and first.warnings == []


def test_a_later_login_for_another_site_keeps_the_connection_s_site_and_says_why(emulated):
    _login(emulated, site=GLOBEX)
    again = _login(emulated)  # the consent picks acme: the grant now holds both sites
    assert {s.name for s in again.sites} == {"acme", "globex"}
    assert emulated.store.get().site["id"] == GLOBEX
    (warning,) = again.warnings
    assert "adds it to the same grant" in warning and "globex" in warning
    assert "ATLASSIAN_SITE" in warning
