"""The consent traps made on purpose: each fails against the emulator as on Atlassian, the
user's own grant is untouched, and nothing runs against a real target."""

from __future__ import annotations

import json

import httpx
import pytest

from atlassian_playbook import connection
from atlassian_playbook.emulator import Emulator
from atlassian_playbook.errors import PlaybookError
from atlassian_playbook.rehearsals import REHEARSALS, rehearse
from atlassian_playbook.target import Target, emulator_settings

from .conftest import loopback_callback
from .test_cli import cli_env, run_cli


def test_every_rehearsal_fails_the_way_atlassian_fails(emulator):
    results = {r.name: r for r in rehearse(Target(emulator_settings(emulator), emulator))}
    assert set(results) == set(REHEARSALS)
    assert {name for name, r in results.items() if not r.as_expected} == set()
    assert "Invalid authorization code" in results["callback-mismatch"].seen
    assert "site admin must authorize" in results["site-admin"].seen
    # The site admin's approval is withdrawn again: a second run rehearses the refusal again.
    again = rehearse(Target(emulator_settings(emulator), emulator), ["site-admin"])
    assert again[0].as_expected


def test_rehearsals_leave_the_users_own_grant_alone(emulator):
    target = Target(emulator_settings(emulator, redirect_uri=loopback_callback(emulator)),
                    emulator)
    login = connection.login(target, browser="headless", show_url=lambda url: None)
    before = login.entry.tokens
    rehearse(target)
    with httpx.Client(trust_env=False) as http:
        listed = http.get(f"{emulator.api_base_url}/oauth/token/accessible-resources",
                          headers={"Authorization": f"Bearer {before.access_token.reveal()}"})
    assert listed.status_code == 200
    scopes = {s for r in listed.json() for s in r["scopes"]}
    assert {"read:jira-user", "read:confluence-space.summary"} <= scopes


def test_a_world_without_the_trap_reports_it_instead_of_passing(emulator):
    emulator.set_user_installed_apps("initech", True)
    [result] = rehearse(Target(emulator_settings(emulator), emulator), ["site-admin"])
    assert not result.as_expected and "user-installed-apps initech block" in result.fix


def test_rehearsals_refuse_a_real_target(emulator):
    real = Target(emulator_settings(emulator, auth_base_url="https://auth.atlassian.com",
                                    api_base_url="https://api.atlassian.com"))
    with pytest.raises(PlaybookError) as info:
        rehearse(real)
    assert "not available against atlassian" in info.value.message


def test_rehearsals_work_on_an_emulator_that_shows_its_consent_page(tmp_path):
    state = tmp_path / "emulator-state.json"
    with Emulator(auto_consent=False, state_path=state) as emulator:
        results = rehearse(Target(emulator_settings(emulator), emulator))
    assert all(r.as_expected for r in results)


def test_cli_rehearse_prints_each_trap_and_exits_zero(tmp_path):
    result = run_cli(["emulator", "rehearse", "--json", "app-not-shared", "api-not-added"],
                     cli_env(tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    names = [r["name"] for r in json.loads(result.stdout)]
    assert names == ["app-not-shared", "api-not-added"]
    unknown = run_cli(["emulator", "rehearse", "nope"], cli_env(tmp_path), tmp_path)
    assert unknown.returncode == 1 and "callback-mismatch" in unknown.stderr
