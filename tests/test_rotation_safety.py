"""A rotated refresh token is never lost silently, and a full disk is always a clear error.

Atlassian rotates the refresh token on every refresh and revokes the whole grant when the old
one is presented after the 10-minute reuse leeway (FACTS.md, "Refresh tokens"). Everything that
can go wrong between Atlassian's answer and the save is injected here, against the real loopback
emulator: a slow answer the client gives up on while the server still rotates, a connection
dropped after the server answered, a disk that fills up, and a process SIGKILLed between the
answer and the save, followed by a retry inside and after the leeway.

The full disk is the one fault that is simulated: ``os.fsync`` of files in one folder fails with
ENOSPC (:class:`FullDisk`), as it does on a real full file system with delayed allocation.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import re
import select
import signal
import socket
import struct
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from atlassian_playbook import tokens as tokens_module
from atlassian_playbook._files import atomic_write_text
from atlassian_playbook.config import save_settings
from atlassian_playbook.emulator import Emulator
from atlassian_playbook.errors import (
    ReauthorizationRequired,
    RotationNotSaved,
    StorageError,
    TokenStoreError,
)
from atlassian_playbook.oauth import OAuthClient
from atlassian_playbook.tokens import StoredTokenSource, TokenStore

from .conftest import assert_no_secrets, secrets_in_store
from .test_tokens import login_to_store, make_entry, refresh_posts

LEEWAY = 600  # Atlassian's reuse leeway for a rotated refresh token, seconds (FACTS.md)


# -- helpers -------------------------------------------------------------------------------


class FullDisk:
    """The file system holding ``folder`` as a nearly full disk.

    ``free_bytes`` is the room left for a new file (``None``: plenty); ``fail_next(n)`` makes
    the next ``n`` writes fail whatever their size. A failing write raises ENOSPC from
    ``os.fsync``, where a real full disk reports it for buffered data. Files elsewhere (the
    emulator's, pytest's) are not affected. ``failures`` counts the writes refused.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
        self.folder = Path(folder).resolve()
        self.free_bytes: int | None = None
        self._fail_next = 0
        self.failures = 0
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            if self._refuses(fd):
                self.failures += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)

    def fill(self) -> None:
        self.free_bytes = 0

    def free(self) -> None:
        self.free_bytes = None
        self._fail_next = 0

    def fail_next(self, writes: int) -> None:
        self._fail_next = writes

    def _refuses(self, fd: int) -> bool:
        try:
            where = Path(os.readlink(f"/proc/self/fd/{fd}")).parent
        except OSError:
            return False
        if where != self.folder:
            return False
        if self._fail_next:
            self._fail_next -= 1
            return True
        return self.free_bytes is not None and os.fstat(fd).st_size > self.free_bytes


class FillsDiskOnAnswer:
    """An OAuthClient stand-in that really refreshes, then fills the disk: the answer came
    back and the save is what fails (the window this file is about)."""

    def __init__(self, oauth: OAuthClient, disk: FullDisk, writes: int | None = None) -> None:
        self.oauth = oauth
        self.disk = disk
        self.writes = writes

    def refresh(self, refresh_token):
        fresh = self.oauth.refresh(refresh_token)
        if self.writes is None:
            self.disk.fill()
        else:
            self.disk.fail_next(self.writes)
        return fresh


class DroppingProxy:
    """A loopback TCP proxy to the emulator's auth server that, for the first ``drops``
    connections, forwards the request, waits until the emulator starts answering (so the
    refresh token *was* rotated) and then hangs up on the client without a byte of the
    answer: ``close`` (FIN, httpx's RemoteProtocolError) or ``reset`` (RST, ReadError)."""

    def __init__(self, upstream_url: str, *, drops: int = 1, how: str = "close") -> None:
        self.upstream = ("127.0.0.1", urlsplit(upstream_url).port)
        self.drops = drops
        self.how = how
        self.connections = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                drop = self.dropped < self.drops
                self.dropped += drop
            threading.Thread(target=self._serve, args=(client, drop), daemon=True).start()

    def _serve(self, client: socket.socket, drop: bool) -> None:
        upstream = socket.create_connection(self.upstream)
        if not drop:
            requests = threading.Thread(target=_pump, args=(client, upstream), daemon=True)
            requests.start()
            _pump(upstream, client)
            requests.join(60)
            client.close()
            upstream.close()
            return
        # Forward the request until the emulator starts answering: it has rotated the token.
        while True:
            readable, _, _ = select.select([client, upstream], [], [], 60)
            if upstream in readable or not readable:
                break
            data = client.recv(65536)
            if not data:
                break
            upstream.sendall(data)
        if self.how == "reset":
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        upstream.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def wait_until(condition, what: str, timeout: float = 60.0) -> None:
    """Wait for ``condition()`` (a generous deadline: only a hung run should ever meet it)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def no_waiting(seconds: float) -> None:
    """An OAuthClient ``sleep`` for retries that must happen at once."""
    pytest.fail(f"waited {seconds} s before retrying")


def token_statuses(emulator) -> list[int]:
    return [status for _, path, status in emulator.request_log if path == "/oauth/token"]


def stray_files(folder: Path) -> list[str]:
    """Temporary or probe files left in ``folder`` by a write (lock files are expected)."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".probe")))


def assert_grant_intact(emulator, settings, store: TokenStore) -> None:
    """Past every leeway, the stored refresh token still refreshes: nothing was lost."""
    emulator.advance_clock(LEEWAY + 1)
    with OAuthClient(settings) as oauth:
        source = StoredTokenSource(store, oauth.refresh, settings.client_id)
        source.refresh(source.get())


def me_status(emulator, access_token) -> int:
    return httpx.get(
        f"{emulator.api_base_url}/me",
        headers={"Authorization": f"Bearer {access_token.reveal()}"},
    ).status_code


# -- before sending: the store must be writable ---------------------------------------------


def test_refresh_is_refused_before_anything_is_sent_when_the_store_cannot_be_written(
    emulator, tmp_path, monkeypatch
):
    settings, store, entry = login_to_store(emulator, tmp_path / "tokens.json")
    before = store.path.read_bytes()
    disk = FullDisk(monkeypatch, tmp_path)
    disk.fill()
    with OAuthClient(settings) as oauth:
        source = StoredTokenSource(store, oauth.refresh, settings.client_id)
        with pytest.raises(TokenStoreError) as info:
            source.refresh(source.get())
    assert not isinstance(info.value, RotationNotSaved)
    assert refresh_posts(emulator) == 0  # Atlassian never saw the refresh token
    assert "Nothing was sent" in info.value.message and str(store.path) in info.value.message
    assert "space" in info.value.hint and str(tmp_path) in info.value.hint
    assert store.path.read_bytes() == before
    assert stray_files(tmp_path) == []
    disk.free()
    assert_grant_intact(emulator, settings, store)


def test_the_writability_proof_needs_room_for_more_than_the_store_holds(
    emulator, tmp_path, monkeypatch
):
    # Room for the store as it is, but not for a slightly larger one: a rotated token may be
    # longer than the one it replaces, so the refresh is not sent.
    settings, store, entry = login_to_store(emulator, tmp_path / "tokens.json")
    disk = FullDisk(monkeypatch, tmp_path)
    disk.free_bytes = store.path.stat().st_size + 64
    with OAuthClient(settings) as oauth:
        source = StoredTokenSource(store, oauth.refresh, settings.client_id)
        with pytest.raises(TokenStoreError):
            source.refresh(source.get())
    assert refresh_posts(emulator) == 0


# -- after the answer: the save fails --------------------------------------------------------


def test_a_save_that_fails_is_retried_and_the_rotation_is_kept(emulator, tmp_path, monkeypatch):
    settings, store, entry = login_to_store(emulator, tmp_path / "tokens.json")
    disk = FullDisk(monkeypatch, tmp_path)
    with OAuthClient(settings) as oauth:
        source = StoredTokenSource(
            store, FillsDiskOnAnswer(oauth, disk, writes=2).refresh, settings.client_id
        )
        fresh = source.refresh(source.get())
    assert disk.failures == 2
    assert store.get().tokens == fresh
    assert store.get().refresh_started_at is None
    assert stray_files(tmp_path) == []
    assert_grant_intact(emulator, settings, store)


def test_a_rotation_that_cannot_be_saved_names_the_deadline_and_stays_usable(
    emulator, tmp_path, monkeypatch, caplog
):
    settings, store, entry = login_to_store(emulator, tmp_path / "tokens.json")
    disk = FullDisk(monkeypatch, tmp_path)
    with caplog.at_level(logging.DEBUG, logger="atlassian_playbook"):
        with OAuthClient(settings) as oauth:
            refresh = FillsDiskOnAnswer(oauth, disk).refresh
            source = StoredTokenSource(store, refresh, settings.client_id)
            sent = time.time()
            with pytest.raises(RotationNotSaved) as info:
                source.refresh(source.get())
            error = info.value
            # Several attempts to save, then the error; the store still holds the old tokens.
            assert disk.failures == tokens_module.SAVE_ATTEMPTS
            assert store.get().tokens == entry.tokens
            assert stray_files(tmp_path) == []

            # What the user is told: the deadline, the leeway, where and how to retry.
            assert sent + LEEWAY <= error.deadline <= time.time() + LEEWAY
            hhmm = time.strftime("%H:%M", time.gmtime(error.deadline))
            for text in (error.message, error.hint):
                assert f"{hhmm} UTC" in text
            assert "10-minute" in error.message and "revoke" in error.message
            assert "no space left" in error.message.lower()
            assert str(tmp_path) in error.hint and "atlassian-playbook refresh" in error.hint

            # The running process keeps the new tokens: they work, and get() hands them out.
            assert error.tokens != entry.tokens
            assert me_status(emulator, error.tokens.access_token) == 200
            assert source.get() == error.tokens
            texts = [str(error), repr(error), error.one_line(), repr(error.tokens)]

            # Once the disk has room again, the next use saves them.
            disk.free()
            assert source.get() == error.tokens
            assert store.get().tokens == error.tokens
    secrets = secrets_in_store(store.path) | {
        entry.tokens.refresh_token.reveal(),
        entry.tokens.access_token.reveal(),
    }
    assert_no_secrets(texts + [caplog.text], secrets)
    assert_grant_intact(emulator, settings, store)


def test_after_an_unsaved_rotation_a_refresh_inside_the_leeway_saves_a_working_token(
    emulator, tmp_path, monkeypatch
):
    settings, store, entry = login_to_store(emulator, tmp_path / "tokens.json")
    disk = FullDisk(monkeypatch, tmp_path)
    with OAuthClient(settings) as oauth:
        refresh = FillsDiskOnAnswer(oauth, disk).refresh
        source = StoredTokenSource(store, refresh, settings.client_id)
        with pytest.raises(RotationNotSaved):
            source.refresh(source.get())
    # The process is gone; the user frees space and refreshes within the 10 minutes, as the
    # error said: the store's (rotated-out) refresh token is still accepted.
    disk.free()
    emulator.advance_clock(LEEWAY - 60)
    with OAuthClient(settings) as oauth:
        retry = StoredTokenSource(TokenStore(store.path), oauth.refresh, settings.client_id)
        fresh = retry.refresh(retry.get())
    assert store.get().tokens == fresh
    assert me_status(emulator, fresh.access_token) == 200
    assert_grant_intact(emulator, settings, store)


def test_past_the_leeway_an_unsaved_rotation_is_saved_by_the_process_that_holds_it(
    emulator, tmp_path, monkeypatch
):
    settings, store, entry = login_to_store(emulator, tmp_path / "tokens.json")
    disk = FullDisk(monkeypatch, tmp_path)
    now = [time.time()]
    with OAuthClient(settings) as oauth:
        source = StoredTokenSource(
            store, FillsDiskOnAnswer(oauth, disk).refresh, settings.client_id, clock=lambda: now[0]
        )
        with pytest.raises(RotationNotSaved) as first:
            source.refresh(source.get())
        # An hour on, the disk still full: the new access token expires and needs a refresh.
        now[0] += 3600
        emulator.advance_clock(3600)
        with pytest.raises(RotationNotSaved) as later:
            source.refresh(first.value.tokens)
        assert later.value.tokens == first.value.tokens
        assert "only this process" in later.value.message
        assert "Do not run `atlassian-playbook refresh`" in later.value.hint
        assert refresh_posts(emulator) == 1  # nothing more was sent
        disk.free()
        assert source.get() == first.value.tokens
    assert store.get().tokens == first.value.tokens
    assert_grant_intact(emulator, settings, store)


# -- the answer is lost on the way -------------------------------------------------------------


def test_a_slow_answer_the_client_gives_up_on_is_retried_and_a_working_token_saved(
    emulator, tmp_path
):
    settings, store, entry = login_to_store(emulator, tmp_path / "tokens.json")
    # The server takes twice the client's timeout, then still rotates the token it was sent.
    emulator.inject_fault("/oauth/token", status=None, delay=6.0, times=1)
    with OAuthClient(settings, timeout=3.0) as oauth:
        source = StoredTokenSource(store, oauth.refresh, settings.client_id)
        fresh = source.refresh(source.get())
    assert store.get().tokens == fresh
    wait_until(lambda: len(token_statuses(emulator)) == 3, "the slow refresh to be answered")
    assert token_statuses(emulator) == [200, 200, 200]  # code, retry, and the late original
    assert_grant_intact(emulator, settings, store)


@pytest.mark.parametrize("how", ["close", "reset"])
def test_a_connection_dropped_after_the_server_answered_is_retried_at_once(
    emulator, tmp_path, how
):
    settings, store, entry = login_to_store(emulator, tmp_path / "tokens.json")
    proxy = DroppingProxy(emulator.auth_base_url, how=how)
    try:
        via_proxy = settings.replace(auth_base_url=proxy.url)
        with OAuthClient(via_proxy, sleep=no_waiting) as oauth:
            source = StoredTokenSource(store, oauth.refresh, settings.client_id)
            fresh = source.refresh(source.get())
    finally:
        proxy.close()
    assert (proxy.dropped, proxy.connections) == (1, 2)  # the dropped one, and the retry's
    assert token_statuses(emulator) == [200, 200, 200]
    assert store.get().tokens == fresh
    assert_grant_intact(emulator, settings, store)


# -- a process killed between the answer and the save -------------------------------------


def _refresh_then_wait_to_be_killed(settings, store_path, answered, never) -> None:
    """In a child process: refresh for real, announce the answer, and block before saving."""

    class StopsAfterTheAnswer(OAuthClient):
        def refresh(self, refresh_token):
            fresh = super().refresh(refresh_token)
            answered.set()
            never.wait(600)  # the test SIGKILLs this process here
            return fresh

    with StopsAfterTheAnswer(settings) as oauth:
        source = StoredTokenSource(TokenStore(store_path), oauth.refresh, settings.client_id)
        source.refresh(source.get())


def kill_between_answer_and_save(settings, store: TokenStore) -> None:
    ctx = multiprocessing.get_context("spawn")
    answered, never = ctx.Event(), ctx.Event()
    child = ctx.Process(
        target=_refresh_then_wait_to_be_killed, args=(settings, store.path, answered, never)
    )
    child.start()
    try:
        assert answered.wait(120), "the child never got the token endpoint's answer"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.join(60)
    assert child.exitcode == -signal.SIGKILL


def test_killed_between_answer_and_save_then_a_refresh_inside_the_leeway_recovers(
    emulator, tmp_path, caplog
):
    settings, store, entry = login_to_store(emulator, tmp_path / "tokens.json")
    kill_between_answer_and_save(settings, store)
    assert refresh_posts(emulator) == 1  # Atlassian rotated the token...
    stored = store.get()
    assert stored.tokens == entry.tokens  # ...and the store never got the new one,
    assert stored.refresh_started_at is not None  # but it knows a refresh was in flight.

    emulator.advance_clock(LEEWAY - 60)
    with caplog.at_level(logging.WARNING, logger="atlassian_playbook"):
        with OAuthClient(settings) as oauth:
            source = StoredTokenSource(store, oauth.refresh, settings.client_id)
            fresh = source.refresh(source.get())
    assert store.get().tokens == fresh and store.get().refresh_started_at is None
    assert any("was never saved" in r.getMessage() for r in caplog.records)
    assert me_status(emulator, fresh.access_token) == 200
    assert_grant_intact(emulator, settings, store)


def test_killed_between_answer_and_save_then_a_refresh_after_the_leeway_needs_consent(
    emulator, tmp_path
):
    settings, store, entry = login_to_store(emulator, tmp_path / "tokens.json")
    kill_between_answer_and_save(settings, store)
    emulator.advance_clock(LEEWAY + 1)
    with OAuthClient(settings) as oauth:
        # The source's clock is Atlassian's: the emulator's, which has moved on.
        source = StoredTokenSource(store, oauth.refresh, settings.client_id, clock=emulator.now)
        with pytest.raises(ReauthorizationRequired) as info:
            source.refresh(source.get())
    error = info.value
    assert "revoked" in error.message and "never saved" in error.message
    assert re.search(r"\d\d:\d\d UTC", error.message)
    assert "new consent" in error.hint and "atlassian-playbook login" in error.hint


# -- a full disk on any write ------------------------------------------------------------------


def _write_token_store(folder: Path) -> Path:
    store = TokenStore(folder / "tokens.json")
    store.put(make_entry("acct-2", 2))
    return store.path


def _write_env(folder: Path) -> Path:
    return save_settings({"ATLASSIAN_SITE": "acme"}, folder / ".env")


def _write_emulator_state(folder: Path) -> Path:
    emulator = Emulator(state_path=folder / "emulator-state.json")  # no servers needed
    emulator.advance_clock(1)
    return emulator.state_path


WRITERS = {
    "token store": (_write_token_store, "tokens.json"),
    ".env": (_write_env, ".env"),
    "emulator state": (_write_emulator_state, "emulator-state.json"),
}


def _existing(folder: Path, name: str) -> Path:
    if name == "tokens.json":
        TokenStore(folder / name).put(make_entry("acct-1", 1))
    elif name == ".env":
        save_settings({"ATLASSIAN_SITE": "before"}, folder / name)
    else:
        Emulator(state_path=folder / name)
    return folder / name


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_full_disk_on_any_write_is_a_clear_error_and_keeps_the_old_file(
    tmp_path, monkeypatch, writer
):
    write, name = WRITERS[writer]
    path = _existing(tmp_path, name)
    before = path.read_bytes()
    FullDisk(monkeypatch, tmp_path).fill()
    with pytest.raises(StorageError) as info:
        write(tmp_path)
    error = info.value
    assert error.path == path and error.errno == errno.ENOSPC
    assert str(path) in error.message and "no space left" in error.message.lower()
    assert "Free space" in error.hint and str(tmp_path) in error.hint
    assert isinstance(error, OSError)  # callers that caught OSError still do
    assert path.read_bytes() == before
    assert stray_files(tmp_path) == []


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.EDQUOT, "quota"),
        (errno.EROFS, "read-only"),
        (errno.EACCES, "permission"),
    ],
)
def test_other_write_refusals_name_the_file_and_the_fix(tmp_path, monkeypatch, code, words):
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "replace", refuse)
    target = tmp_path / "file.txt"
    with pytest.raises(StorageError) as info:
        atomic_write_text(target, "text")
    assert str(target) in info.value.message and words in info.value.message.lower()
    assert str(tmp_path) in info.value.hint
    assert list(tmp_path.iterdir()) == []
