"""The personal data reporting cycle: durations, batches of 90, closed/updated, Cycle-Period."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from atlassian_playbook._files import read_json
from atlassian_playbook.api import ApiClient
from atlassian_playbook.emulator import Emulator
from atlassian_playbook.errors import PlaybookError, ScopeNotGranted, ServerError
from atlassian_playbook.oauth import OAuthClient
from atlassian_playbook.reporting import (
    ACTIONS,
    format_updated_at,
    parse_duration,
    report_accounts_cycle,
)
from atlassian_playbook.target import emulator_settings
from atlassian_playbook.tokens import StaticTokenSource

ACTIVE = "5be24ad8b1653240376955d2"  # Atlassian's test ids (FACTS.md)
CLOSED = "5be24ba3f91c106033269289"
ADA = "5b10ac8d82e05b22cc7d4ef5"  # the emulated user; profile changed 2025-01-15
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REPORT_PATH = "/app/report-accounts/"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P7D", timedelta(days=7)),
        ("PT12H", timedelta(hours=12)),
        ("P1DT30M", timedelta(days=1, minutes=30)),
        ("P2W", timedelta(days=14)),
        ("PT0.5S", timedelta(seconds=0.5)),
        ("p7d", timedelta(days=7)),
        ("P1M", timedelta(days=30)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "7D", "P7", "P1H", "week"])
def test_parse_duration_rejects_what_is_not_iso_8601(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_updated_at_is_formatted_as_the_api_documents():
    assert format_updated_at(datetime(2017, 5, 12)) == "2017-05-12T00:00:00.000Z"
    cest = datetime(2017, 5, 12, 2, 0, 0, 123456, tzinfo=UTC) + timedelta(0)
    assert format_updated_at(cest) == "2017-05-12T02:00:00.123Z"
    assert format_updated_at("2017-05-12T02:00:00+02:00") == "2017-05-12T00:00:00.000Z"
    with pytest.raises(PlaybookError):
        format_updated_at("last tuesday")


def test_actions_say_what_to_do():
    assert ACTIONS == {"closed": "erase", "updated": "refresh or erase"}


# -- against the emulator ------------------------------------------------------------------


@pytest.fixture
def emu():
    with Emulator(auto_consent=True) as emulator:
        yield emulator
        while OPEN_CLIENTS:
            OPEN_CLIENTS.pop().close()


# The clients reporting_client() made, closed by the emu fixture before the emulator stops.
OPEN_CLIENTS: list[ApiClient] = []


def reporting_client(emu, **kwargs) -> tuple[ApiClient, list[float]]:
    scopes = ("report:personal-data", "read:jira-user")
    settings = emulator_settings(emu, scopes=scopes)
    with OAuthClient(settings) as oauth:
        request = oauth.authorization_request(scopes)
        answer = httpx.get(request.url)
        tokens = oauth.exchange_code(
            oauth.parse_callback(answer.headers["location"], request.state)
        )
    sleeps: list[float] = []
    api = ApiClient(settings, StaticTokenSource(tokens), sleep=sleeps.append, **kwargs)
    OPEN_CLIENTS.append(api)
    return api, sleeps


def accounts(n: int, updated=datetime(2024, 1, 1)) -> list[tuple[str, datetime]]:
    return [(f"557058:{i:08d}", updated) for i in range(n)]


def posts(emu) -> list[int]:
    return [status for method, path, status in emu.request_log if path == REPORT_PATH]


def test_200_accounts_go_in_3_requests_and_closed_and_updated_come_back(emu):
    api, _ = reporting_client(emu)
    stored = [*accounts(197), (ACTIVE, NOW), (CLOSED, NOW), (ADA, datetime(2024, 6, 1))]
    outcome = report_accounts_cycle(api, stored, now=NOW)
    assert posts(emu) == [204, 204, 200]  # 90 + 90 + 20; the last batch holds the test ids
    assert outcome.requests == 3
    assert len(outcome.reported) == 200
    assert outcome.closed == [CLOSED]
    assert outcome.updated == [ADA]
    assert outcome.actions == {CLOSED: "erase", ADA: "refresh or erase"}
    assert outcome.skipped == []
    assert outcome.cycle_period == "P7D"
    assert outcome.next_due == NOW + timedelta(days=7)


def test_a_fresh_copy_of_the_user_is_not_updated_and_204_means_nothing_to_do(emu):
    api, _ = reporting_client(emu)
    outcome = report_accounts_cycle(api, [(ADA, "2025-02-01T00:00:00Z"), (ACTIVE, NOW)], now=NOW)
    assert posts(emu) == [204]
    assert outcome.closed == [] and outcome.updated == [] and outcome.actions == {}


def test_a_second_run_within_the_cycle_period_skips_reported_accounts(emu, tmp_path):
    api, _ = reporting_client(emu)
    state = tmp_path / "reporting" / "cycle.json"
    stored = [*accounts(100), (CLOSED, NOW)]
    first = report_accounts_cycle(api, stored, cycle_state_path=state, now=NOW)
    assert first.requests == 2
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    assert read_json(state)["cycle_period"] == "P7D"

    later = NOW + timedelta(days=6, hours=23)
    second = report_accounts_cycle(
        api, [*stored, ("557058:new", NOW)], cycle_state_path=state, now=later
    )
    assert second.requests == 1 and second.reported == ["557058:new"]
    assert len(second.skipped) == 101
    assert second.closed == []  # CLOSED was skipped: its erasure was asked for in the first run
    assert second.next_due == NOW + timedelta(days=7)
    assert posts(emu) == [204, 200, 204]

    third = report_accounts_cycle(api, stored, cycle_state_path=state, now=NOW + timedelta(days=7))
    assert third.requests == 2 and third.skipped == [] and third.closed == [CLOSED]


def test_without_a_state_file_nothing_is_remembered(emu):
    api, _ = reporting_client(emu)
    report_accounts_cycle(api, accounts(3), now=NOW)
    outcome = report_accounts_cycle(api, accounts(3), now=NOW)
    assert outcome.requests == 1 and outcome.skipped == []


def test_the_servers_cycle_period_is_remembered(emu, tmp_path):
    api, _ = reporting_client(emu)
    state = tmp_path / "cycle.json"
    emu.inject_fault(REPORT_PATH, status=204, headers={"Cycle-Period": "PT12H"})
    first = report_accounts_cycle(api, accounts(2), cycle_state_path=state, now=NOW)
    assert first.cycle_period == "PT12H"
    assert first.next_due == NOW + timedelta(hours=12)
    skipped = report_accounts_cycle(
        api, accounts(2), cycle_state_path=state, now=NOW + timedelta(hours=11)
    )
    assert skipped.requests == 0 and len(skipped.skipped) == 2
    again = report_accounts_cycle(
        api, accounts(2), cycle_state_path=state, now=NOW + timedelta(hours=12)
    )
    assert again.requests == 1


def test_429_in_the_cycle_is_waited_out_by_the_client(emu):
    api, sleeps = reporting_client(emu)
    emu.inject_fault(REPORT_PATH, status=429, retry_after=2)
    outcome = report_accounts_cycle(api, [(CLOSED, NOW)], now=NOW)
    assert sleeps == [2.0]
    assert posts(emu) == [429, 200]
    assert outcome.closed == [CLOSED]


def test_a_failure_mid_cycle_keeps_the_batches_already_reported(emu, tmp_path):
    api, _ = reporting_client(emu, max_retries=0)
    state = tmp_path / "cycle.json"

    injected = []

    def fail_after_first_batch(response):
        if response.request.url.path == REPORT_PATH and not injected:
            injected.append(emu.inject_fault(REPORT_PATH, status=500, times=1))

    api.http.event_hooks["response"].append(fail_after_first_batch)
    with pytest.raises(ServerError):
        report_accounts_cycle(api, accounts(200), cycle_state_path=state, now=NOW)
    assert len(read_json(state)["accounts"]) == 90

    assert posts(emu) == [204, 500]
    resumed = report_accounts_cycle(api, accounts(200), cycle_state_path=state, now=NOW)
    assert resumed.requests == 2 and len(resumed.skipped) == 90


def test_more_than_90_in_one_raw_call_is_refused_before_sending(emu):
    api, _ = reporting_client(emu)
    batch = [{"accountId": a, "updatedAt": "2024-01-01T00:00:00.000Z"} for a, _ in accounts(91)]
    with pytest.raises(PlaybookError) as caught:
        api.report_accounts(batch)
    assert "at most 90" in caught.value.message
    assert posts(emu) == []
    # ...which is what the service would have said, later and less clearly:
    token = api.tokens.get().access_token.reveal()
    answer = httpx.post(
        emu.api_base_url + REPORT_PATH,
        json={"accounts": batch},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 400


def test_missing_reporting_scope_is_scope_not_granted(emu):
    scopes = ("read:jira-user",)
    settings = emulator_settings(emu, scopes=scopes)
    with OAuthClient(settings) as oauth:
        request = oauth.authorization_request(scopes)
        answer = httpx.get(request.url)
        tokens = oauth.exchange_code(
            oauth.parse_callback(answer.headers["location"], request.state)
        )
    with ApiClient(settings, StaticTokenSource(tokens)) as api:
        with pytest.raises(ScopeNotGranted) as caught:
            report_accounts_cycle(api, [(ACTIVE, NOW)], now=NOW)
    assert "report:personal-data" in caught.value.message


def test_outcome_to_dict_is_plain_data(emu):
    api, _ = reporting_client(emu)
    outcome = report_accounts_cycle(api, [(CLOSED, NOW)], now=NOW)
    assert outcome.to_dict() == {
        "closed": [CLOSED],
        "updated": [],
        "skipped": [],
        "reported": [CLOSED],
        "requests": 1,
        "actions": {CLOSED: "erase"},
        "cycle_period": "P7D",
        "next_due": (NOW + timedelta(days=7)).isoformat(),
    }


# --- the emulated world's stored accounts: one updated, one closed ---------------------------

GRACE, CHARLES = "5c3f9b2e1d4a7e0012a4b6c8", "5d7a2c9e4b1f3a0018c6e2d4"


def test_the_default_world_stores_one_updated_and_one_closed_account(emu):
    stored = emu.stored_accounts
    assert [a["account_id"] for a in stored] == [GRACE, CHARLES]
    api, _ = reporting_client(emu)
    outcome = report_accounts_cycle(api, [(a["account_id"], a["copied_at"]) for a in stored],
                                    now=NOW)
    assert posts(emu) == [200]
    assert outcome.updated == [GRACE] and outcome.closed == [CHARLES]
    assert outcome.actions == {GRACE: "refresh or erase", CHARLES: "erase"}


def test_a_closed_user_is_closed_whatever_the_copy_and_a_fresh_copy_is_not_updated(emu):
    api, _ = reporting_client(emu)
    outcome = report_accounts_cycle(api, [(CHARLES, NOW), (GRACE, NOW)], now=NOW)
    assert outcome.closed == [CHARLES] and outcome.updated == []


def test_a_stored_account_must_be_a_user_of_the_world():
    import yaml

    from atlassian_playbook.emulator._world import DEFAULT_WORLD, WorldError, load_world

    world = yaml.safe_load(DEFAULT_WORLD.read_text())
    world["stored_accounts"].append({"user": "nobody", "copied_at": "2025-01-01T00:00:00Z"})
    with pytest.raises(WorldError) as info:
        load_world(world)
    assert "'nobody' is not a user of this world" in info.value.message
    world["stored_accounts"][-1] = {"user": "ada", "copied_at": "yesterday"}
    with pytest.raises(WorldError) as info:
        load_world(world)
    assert "'yesterday' is not an ISO 8601 time" in info.value.message
