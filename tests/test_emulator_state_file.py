"""The state file's layout (``_state_file.py``): the state on the first line and a line for each
change after it; what a refresh writes, how other processes' lines are read, and what a broken,
unfinished or older file does."""

from __future__ import annotations

import errno
import json
import os

import pytest

from atlassian_playbook.emulator import Emulator, StateFileError
from atlassian_playbook.emulator._state import STATE_VERSION, StateStore, read_state
from atlassian_playbook.emulator._state_file import COMPACT_AT
from atlassian_playbook.errors import StorageError
from tests.test_emulator import login, refresh


@pytest.fixture
def state(tmp_path):
    path = tmp_path / "emulator-state.json"
    Emulator(state_path=path)
    return path


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_refresh_appends_its_records_and_leaves_the_world_as_written(tmp_path, http):
    path = tmp_path / "emulator-state.json"
    with Emulator(state_path=path) as emu:
        token = login(emu, http)["refresh_token"]
        before = path.read_bytes()
        assert refresh(emu, http, token).status_code == 200
    after = path.read_bytes()
    assert after.startswith(before) and after.count(b"\n") == before.count(b"\n") + 1
    change = json.loads(after[len(before):])
    assert "world" not in change.get("set", {})
    assert set(change["put"]) == {"access_tokens", "refresh_tokens", "families"}
    assert len(change["put"]["access_tokens"]) == 2  # the new one, and the old one's grace


def test_a_change_line_another_store_appended_is_read_without_reading_the_file_again(state):
    mine, theirs = StateStore(state), StateStore(state)
    with mine.transaction(read_only=True) as data:
        assert data["clock_offset"] == 0
    held = mine._file
    with theirs.transaction() as data:
        data["clock_offset"] = 42.0
    with mine.transaction(read_only=True) as data:
        assert data["clock_offset"] == 42.0
    assert mine._file is held  # caught up from its end, the file not opened again
    with theirs.transaction() as data:  # a rewrite: a new file renamed over the old
        data["extra"] = "new top-level key"
    with mine.transaction(read_only=True) as data:
        assert data["extra"] == "new top-level key"
    assert mine._file is not held and len(lines(state)) == 1


def test_changes_are_folded_into_the_first_line_once_they_outgrow_it(state):
    store = StateStore(state)
    counts = []
    for step in range(400):
        with store.transaction() as data:
            data["faults"] = [{"pad": "x" * 400, "step": step}]
        counts.append(len(lines(state)))
    assert max(counts) > 10 and 1 in counts[10:]  # appended, then folded in
    assert state.stat().st_size <= 2 * COMPACT_AT
    assert read_state(state)["faults"][0]["step"] == 399
    assert oct(state.stat().st_mode & 0o777) == "0o600"


def test_a_broken_change_line_names_the_file_and_the_line(state):
    with state.open("a", encoding="utf-8") as handle:
        handle.write('{"set":{"clock_offset":1.0}}\n{"set":{"clock_off\n')
    before = state.read_bytes()
    with pytest.raises(StateFileError) as caught:
        Emulator(state_path=state)
    assert caught.value.message.startswith(f"The emulator state file {state} ")
    assert "is not JSON (broken or cut short at line 3, column 9" in caught.value.message
    assert state.read_bytes() == before


@pytest.mark.parametrize(("line", "problem"), [
    ('[]', "at line 2: a line that is not a change"),
    ('{"set":{"version":9}}', "at line 2: a change that sets something a state does not hold"),
    ('{"set":{"faults":{}}}', "at line 2: faults is a dict"),
    ('{"put":{"world":{}}}', "at line 2: a put into something that is not a collection"),
    ('{"put":{"grants":{"g":1}}}', "at line 2: grants holds something that is not an object"),
    ('{"drop":{"grants":"g"}}', "at line 2: a drop that is not a list"),
    ('{"set":{"default_client_id":"gone"}}', "wrong shape: default_client_id names no client"),
])
def test_a_change_line_of_the_wrong_shape_is_refused(state, line, problem):
    with state.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    with pytest.raises(StateFileError) as caught:
        Emulator(state_path=state)
    assert problem in caught.value.message


def test_an_unfinished_last_line_is_left_out_and_cut_by_the_next_write(state):
    with state.open("a", encoding="utf-8") as handle:
        # A crash before the fsync returned; longer than the line that comes next.
        handle.write('{"set":{"clock_offset":99,"faults":[{"x":"' + "x" * 200)
    emu = Emulator(state_path=state)
    assert read_state(state)["clock_offset"] == 0
    emu.advance_clock(5)
    assert [list(change["set"]) for change in lines(state)[1:]] == [["clock_offset"]]
    assert read_state(state)["clock_offset"] == 5


def test_a_version_2_file_keeps_its_state_and_is_rewritten_at_the_first_change(state, http):
    old = {**read_state(state), "version": 2}
    del old["pruned_at"]  # not in version 2
    state.write_text(json.dumps(old, indent=1), encoding="utf-8")  # any layout: one document
    emu = Emulator(state_path=state)
    assert emu.default_client.client_id == old["default_client_id"]
    assert json.loads(state.read_text())["version"] == 2  # a look leaves it as it was
    emu.advance_clock(1)
    (first, *rest) = lines(state)
    assert first["version"] == STATE_VERSION and not rest
    assert first["clients"] == old["clients"]


def test_a_full_disk_while_appending_is_a_storage_error_and_the_file_is_as_it_was(
    state, monkeypatch
):
    emu = Emulator(state_path=state)
    emu.advance_clock(1)
    before = state.read_bytes()
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StorageError) as caught:
        emu.advance_clock(1)
    assert caught.value.errno == errno.ENOSPC and caught.value.path == state
    assert state.read_bytes() == before
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert read_state(state)["clock_offset"] == 1
    emu.advance_clock(2)
    assert read_state(state)["clock_offset"] == 3  # the refused second is not in memory either


class RefusedLock:
    """A file lock that must not be taken."""

    def __enter__(self):
        raise AssertionError("the file lock was taken")

    def __exit__(self, *exc):
        return False


def test_a_look_at_an_unchanged_file_does_without_the_lock_and_one_at_a_changed_file_not(
    state
):
    mine, theirs = StateStore(state), StateStore(state)
    with mine.transaction(read_only=True):
        pass  # read it once, under the lock
    mine._file_lock = RefusedLock()
    with mine.transaction(read_only=True) as data:
        assert data["clock_offset"] == 0
    with theirs.transaction() as data:
        data["clock_offset"] = 1.0  # appended: the file is longer than mine saw it
    with pytest.raises(AssertionError, match="file lock was taken"):
        with mine.transaction(read_only=True):
            pass
