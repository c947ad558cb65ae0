"""The emulator's shared state file as it fills (issue 13, item 4): written only when a request
changed something, and then only what it changed, compact, and no bigger after 2,000 refreshes
than after 200, while reuse detection answers as Atlassian does (FACTS.md, "Refresh tokens")."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import atlassian_playbook.emulator._state as state_module
import atlassian_playbook.emulator._written as written_module
from atlassian_playbook.emulator import Emulator
from atlassian_playbook.emulator._state import read_state
from atlassian_playbook.emulator._state_file import COMPACT_AT
from tests.test_emulator import consent, exchange, login, refresh

LEEWAY = 600
INVALID = {"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}


class Clock:
    """The emulator's clock, moved by the test without writing the state file."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def shared(tmp_path, clock):
    with Emulator(state_path=tmp_path / "emulator-state.json", clock=clock) as emu:
        yield emu


def stored(emu: Emulator) -> dict:
    return read_state(emu.state_path)


def compact_size(emu: Emulator) -> int:
    """The state's size as one line: the file's once its changes are folded in."""
    return len(json.dumps(stored(emu), separators=(",", ":")))


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def rotate(emu, http, token: str, times: int, clock: Clock | None = None, step: float = 0):
    """Refresh ``times`` times, each answer's token in the next request; the last token."""
    for _ in range(times):
        if clock is not None:
            clock.now += step
        response = refresh(emu, http, token)
        assert response.status_code == 200, response.text
        token = response.json()["refresh_token"]
    return token


def test_a_request_that_only_reads_leaves_the_file_as_it_was(shared, http):
    tokens = login(shared, http)
    before = shared.state_path.stat()
    text = shared.state_path.read_bytes()
    answer = http.get(f"{shared.api_base_url}/oauth/token/accessible-resources",
                      headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert answer.status_code == 200
    assert shared.users and shared.now()
    after = shared.state_path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert shared.state_path.read_bytes() == text


def test_a_refresh_serialises_what_it_changed_not_the_state(shared, http, monkeypatch):
    token = rotate(shared, http, login(shared, http)["refresh_token"], 40)
    encoded: list[str] = []

    def encode(value):
        encoded.append(text := json.dumps(value, separators=(",", ":")))
        return text

    # The writer's serialiser, and only its: responses are JSON too.
    monkeypatch.setattr(written_module, "encode", encode)
    monkeypatch.setattr(written_module, "fragment", lambda key, value: f"{encode(key)}:"
                        f"{encode(value)}")
    assert refresh(shared, http, token).status_code == 200
    monkeypatch.undo()
    assert compact_size(shared) > 20_000  # 40 rotated pairs within their leeway
    assert 0 < sum(map(len, encoded)) < 3_000, [len(text) for text in encoded]
    assert not any('"users"' in text for text in encoded)  # nor the world


def test_each_line_of_the_file_is_compact_json(shared, http):
    rotate(shared, http, login(shared, http)["refresh_token"], 3)
    lines = shared.state_path.read_text(encoding="utf-8").split("\n")
    assert len(lines) > 2 and lines[-1] == ""  # the state, changes after it, each line ended
    for line in lines[:-1]:
        assert line == json.dumps(json.loads(line), separators=(",", ":"))


def test_the_file_stops_growing_once_rotated_tokens_pass_the_leeway(shared, http, clock):
    # One refresh a minute, as a busy client: rotated tokens pass the 10-minute leeway as the
    # loop goes on. The size is then set by the live family, not by how often it refreshed.
    token = rotate(shared, http, login(shared, http)["refresh_token"], 200, clock, 61)
    size_after_200 = compact_size(shared)
    rotate(shared, http, token, 1800, clock, 61)
    assert compact_size(shared) <= size_after_200 + 512  # the clock's digits, not records
    # The file: a state, and change lines up to its size (or COMPACT_AT) before they are
    # folded into a new first line.
    assert shared.state_path.stat().st_size <= 2 * (size_after_200 + 512) + COMPACT_AT
    data = stored(shared)
    assert len(data["refresh_tokens"]) <= LEEWAY // 61 + 2
    assert len(data["access_tokens"]) <= LEEWAY // 61 + 2
    assert len(data["families"]) == 1


def test_pruning_runs_at_most_once_a_minute_of_the_emulators_clock(shared, http, clock):
    # Each pruning looks at every record: a token past its leeway waits for the next one.
    first = login(shared, http)["refresh_token"]
    clock.now += 100
    second = rotate(shared, http, first, 1)  # prunes (100 s after the login's)
    clock.now += LEEWAY - 30
    third = rotate(shared, http, second, 1)  # prunes; first is within its leeway, kept
    clock.now += 40
    fourth = rotate(shared, http, third, 1)  # first's leeway is over; 40 s since the pruning
    assert digest(first) in stored(shared)["refresh_tokens"]
    clock.now += 21
    rotate(shared, http, fourth, 1)  # a minute since the last pruning
    assert digest(first) not in stored(shared)["refresh_tokens"]
    assert digest(second) in stored(shared)["refresh_tokens"]


def test_reusing_a_pruned_rotated_token_after_the_leeway_revokes_the_family(
    shared, http, clock
):
    first = login(shared, http)["refresh_token"]
    newest = rotate(shared, http, first, 3)
    clock.now += LEEWAY + 1
    newest = rotate(shared, http, newest, 1)  # the refresh that prunes the rotated three
    assert digest(first) not in stored(shared)["refresh_tokens"]
    reused = refresh(shared, http, first)
    assert (reused.status_code, reused.json()) == (403, INVALID)
    revoked = refresh(shared, http, newest)
    assert (revoked.status_code, revoked.json()) == (403, INVALID)


def test_a_damaged_pruned_token_is_unknown_and_revokes_nothing(shared, http, clock):
    first = login(shared, http)["refresh_token"]
    newest = rotate(shared, http, first, 2)
    clock.now += LEEWAY + 1
    newest = rotate(shared, http, newest, 1)
    damaged = first[:-1] + ("A" if first[-1] != "A" else "B")
    answer = refresh(shared, http, damaged)
    assert (answer.status_code, answer.json()) == (403, INVALID)
    assert refresh(shared, http, newest).status_code == 200


def test_reuse_within_the_leeway_still_gets_a_pair_of_its_own(shared, http, clock):
    first = login(shared, http)["refresh_token"]
    second = rotate(shared, http, first, 1)
    clock.now += LEEWAY - 60
    again = refresh(shared, http, first)
    assert again.status_code == 200
    assert again.json()["refresh_token"] not in (first, second)
    assert refresh(shared, http, second).status_code == 200


def test_a_reused_or_expired_code_answers_as_before(shared, http, clock):
    code = consent(shared, http)
    assert exchange(shared, http, code).status_code == 200
    used = exchange(shared, http, code)
    late_code = consent(shared, http)
    clock.now += 601
    late = exchange(shared, http, late_code)
    for answer in (used, late):
        assert answer.status_code == 403
        assert answer.json() == {"error": "invalid_grant",
                                 "error_description": "Invalid authorization code"}


CHILD = """
import sys
from atlassian_playbook.emulator import Emulator
emu = Emulator(state_path=sys.argv[1])
assert emu.client("from-parent") is not None, "the parent's write is not seen"
emu.register_client(client_id="from-child")
"""


def test_two_processes_sharing_the_file_see_each_others_writes(shared):
    assert shared.client("from-child") is None  # this store has read the file: it is cached
    shared.register_client(client_id="from-parent")
    done = subprocess.run([sys.executable, "-c", CHILD, str(shared.state_path)],
                          capture_output=True, text=True, env=_child_env())
    assert done.returncode == 0, done.stderr[-2000:]
    assert shared.client("from-child") is not None


def _child_env() -> dict:
    src = str(Path(state_module.__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [src, *filter(None, [os.environ.get("PYTHONPATH")])])}
