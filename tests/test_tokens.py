"""TokenSet, TokenStore and StoredTokenSource.

Unit tests use a tiny in-process stand-in for OAuthClient.refresh (it only counts calls and
rotates); the end-to-end tests at the end of the file use the emulator.
"""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest

from atlassian_playbook.errors import (
    RateLimited,
    ReauthorizationRequired,
    ServerError,
    StorageError,
    TokenStoreError,
)
from atlassian_playbook.redact import Secret
from atlassian_playbook.target import emulator_settings
from atlassian_playbook.tokens import (
    StaticTokenSource,
    StoredTokenSource,
    TokenEntry,
    TokenSet,
    TokenSource,
    TokenStore,
)

NOW = 1_700_000_000.0


def make_tokens(n: int = 1, *, refresh: bool = True, expires_at: float = NOW + 3600) -> TokenSet:
    return TokenSet(
        access_token=Secret(f"access-token-number-{n:04d}"),
        refresh_token=Secret(f"refresh-token-number-{n:04d}") if refresh else None,
        expires_at=expires_at,
        scopes=("read:me", "offline_access"),
    )


def make_entry(account: str | None = "acct-1", n: int = 1, client: str = "client-a") -> TokenEntry:
    return TokenEntry(
        client_id=client,
        account_id=account,
        tokens=make_tokens(n),
        requested_scopes=("read:me", "offline_access"),
        site={"id": "cloud-1", "name": "Acme", "url": "https://acme.atlassian.net"},
        updated_at=NOW,
    )


# -- TokenSet -----------------------------------------------------------------------------


def test_from_response_parses_the_token_response():
    body = {
        "access_token": "at-abcdefghijkl",
        "expires_in": 3600,
        "scope": "read:me offline_access",
        "token_type": "Bearer",
        "refresh_token": "rt-abcdefghijkl",
    }
    tokens = TokenSet.from_response(body, now=NOW)
    assert tokens.access_token.reveal() == "at-abcdefghijkl"
    assert tokens.refresh_token.reveal() == "rt-abcdefghijkl"
    assert tokens.expires_at == NOW + 3600
    assert tokens.scopes == ("read:me", "offline_access")
    assert tokens.expires_in(now=NOW + 600) == 3000
    assert not tokens.is_expiring(now=NOW)
    assert tokens.is_expiring(leeway=60, now=NOW + 3550)


def test_from_response_without_refresh_token_has_none():
    tokens = TokenSet.from_response({"access_token": "at-abcdefghijkl", "expires_in": 10}, NOW)
    assert tokens.refresh_token is None
    assert tokens.scopes == ()


def test_from_response_without_access_token_is_an_error():
    from atlassian_playbook.errors import OAuthError

    with pytest.raises(OAuthError):
        TokenSet.from_response({"error": "nope"}, NOW)


def test_token_set_json_round_trip_and_masked_repr():
    tokens = make_tokens()
    assert TokenSet.from_json(json.loads(json.dumps(tokens.to_json()))) == tokens
    for text in (repr(tokens), str(tokens), f"{tokens}"):
        assert "access-token-number" not in text
        assert "refresh-token-number" not in text
        assert "«secret:" in text


# -- TokenStore ---------------------------------------------------------------------------


def test_store_file_is_private_and_round_trips(tmp_path):
    store = TokenStore(tmp_path / "sub" / "tokens.json")
    store.put(make_entry())
    mode = stat.S_IMODE(os.stat(store.path).st_mode)
    assert mode == 0o600
    assert store.get() == make_entry()
    assert store.get("client-a", "acct-1").site["name"] == "Acme"


def test_store_holds_many_entries_keyed_by_client_and_account(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.put(make_entry("acct-1", 1))
    store.put(make_entry("acct-2", 2))
    store.put(make_entry("acct-1", 3, client="client-b"))
    store.put(make_entry("acct-1", 4))  # replaces the first
    keys = sorted(e.key for e in store.list())
    assert keys == ["client-a:acct-1", "client-a:acct-2", "client-b:acct-1"]
    assert store.get("client-a", "acct-1").tokens == make_tokens(4)
    assert store.get(account_id="acct-2").tokens == make_tokens(2)


def test_store_get_without_a_match_says_to_log_in(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    with pytest.raises(TokenStoreError) as info:
        store.get("client-a")
    assert "atlassian-playbook login" in info.value.hint
    store.put(make_entry("acct-1"))
    with pytest.raises(TokenStoreError) as info:
        store.get("client-a", "someone-else")
    assert "atlassian-playbook login" in info.value.hint


def test_store_get_with_several_matches_asks_for_the_account(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.put(make_entry("acct-1"))
    store.put(make_entry("acct-2"))
    with pytest.raises(TokenStoreError) as info:
        store.get("client-a")
    assert "account" in info.value.hint
    assert "acct-1" in info.value.message and "acct-2" in info.value.message


def test_store_delete(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.put(make_entry("acct-1"))
    store.put(make_entry(None))
    assert store.delete("client-a", "acct-1") is True
    assert store.delete("client-a", "acct-1") is False
    assert [e.key for e in store.list()] == ["client-a:None"]


def test_store_write_is_atomic_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    store = TokenStore(tmp_path / "tokens.json")
    store.put(make_entry("acct-1"))
    before = store.path.read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageError) as info:
        store.put(make_entry("acct-2"))
    assert str(store.path) in info.value.message
    monkeypatch.undo()
    assert store.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [
        "tokens.json"
    ]


def test_store_never_shows_tokens(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    entry = store.put(make_entry())
    for text in (repr(entry), str(entry), repr(store.list()), repr(store)):
        assert "access-token-number" not in text
        assert "refresh-token-number" not in text


def test_corrupt_store_is_a_clear_error(tmp_path):
    path = tmp_path / "tokens.json"
    path.write_text("{not json")
    with pytest.raises(TokenStoreError) as info:
        TokenStore(path).list()
    assert str(path) in info.value.hint


def write_store_by_hand(path, **changes) -> str:
    """A store file with one entry, some of its fields replaced (``tokens__x`` for tokens.x)."""
    raw = make_entry("acct-1").to_json()
    for name, value in changes.items():
        where, _, field_name = name.rpartition("__")
        (raw[where] if where else raw)[field_name] = value
    path.write_text(json.dumps({"version": 1, "entries": {"client-a:acct-1": raw}}))
    return "client-a:acct-1"


@pytest.mark.parametrize(
    ("changes", "field_name"),
    [
        ({"client_id": 42}, "client_id"),
        ({"account_id": ["acct-1"]}, "account_id"),
        ({"tokens": "at-abc"}, "tokens"),
        ({"tokens__access_token": 12345}, "tokens.access_token"),
        ({"tokens__refresh_token": {"value": "x"}}, "tokens.refresh_token"),
        ({"tokens__expires_at": "tomorrow"}, "tokens.expires_at"),
        ({"tokens__expires_at": True}, "tokens.expires_at"),
        ({"tokens__scopes": "read:me offline_access"}, "tokens.scopes"),
        ({"tokens__scopes": ["read:me", 7]}, "tokens.scopes"),
        ({"requested_scopes": "read:me"}, "requested_scopes"),
        ({"site": "Acme"}, "site"),
        ({"updated_at": "yesterday"}, "updated_at"),
    ],
)
def test_an_entry_with_a_wrong_typed_field_names_the_file_the_entry_and_the_field(
    tmp_path, changes, field_name
):
    path = tmp_path / "tokens.json"
    key = write_store_by_hand(path, **changes)
    with pytest.raises(TokenStoreError) as info:
        TokenStore(path).list()
    error = info.value
    assert str(path) in error.message and key in error.message
    assert f"{field_name} " in error.message
    assert "atlassian-playbook login" in error.hint and key in error.hint


def test_an_entry_missing_its_access_token_is_named(tmp_path):
    path = tmp_path / "tokens.json"
    raw = make_entry("acct-1").to_json()
    del raw["tokens"]["access_token"]
    path.write_text(json.dumps({"version": 1, "entries": {"client-a:acct-1": raw}}))
    with pytest.raises(TokenStoreError) as info:
        TokenStore(path).get()
    assert "tokens.access_token" in info.value.message and "missing" in info.value.message


def test_logging_in_again_replaces_a_damaged_entry_and_keeps_the_others(tmp_path):
    path = tmp_path / "tokens.json"
    write_store_by_hand(path, tokens__access_token=12345)
    store = TokenStore(path)
    raw = json.loads(path.read_text())
    raw["entries"]["client-a:acct-2"] = make_entry("acct-2", 2).to_json()
    path.write_text(json.dumps(raw))
    store.put(make_entry("acct-1", 3))  # what login does
    assert store.get("client-a", "acct-1").tokens == make_tokens(3)
    assert store.get("client-a", "acct-2").tokens == make_tokens(2)


def test_missing_store_is_empty(tmp_path):
    assert TokenStore(tmp_path / "nope.json").list() == []


# -- StoredTokenSource, unit level ---------------------------------------------------------


class CountingOAuth:
    """Rotates like Atlassian (new access and refresh token each time) and counts calls."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()
        self.gate = gate

    def refresh(self, refresh_token: Secret) -> TokenSet:
        if self.gate is not None:
            self.gate.wait(5)
        with self.lock:
            self.calls.append(refresh_token.reveal())
            n = 100 + len(self.calls)
        return make_tokens(n, expires_at=NOW + 10**9)


def test_stored_source_satisfies_the_protocol(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    assert isinstance(StoredTokenSource(store, CountingOAuth().refresh, "client-a"), TokenSource)
    assert isinstance(StaticTokenSource(make_tokens()), TokenSource)


def test_refresh_persists_the_rotated_tokens_before_returning(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.put(make_entry("acct-1", 1))
    oauth = CountingOAuth()
    updates = []
    source = StoredTokenSource(store, oauth.refresh, "client-a", "acct-1", on_update=updates.append)

    stale = source.get()
    fresh = source.refresh(stale)

    assert oauth.calls == ["refresh-token-number-0001"]
    assert fresh == make_tokens(101, expires_at=NOW + 10**9)
    assert store.get("client-a", "acct-1").tokens == fresh
    assert [u.tokens for u in updates] == [fresh]
    # the entry's other fields survive
    assert store.get("client-a", "acct-1").site["name"] == "Acme"


def test_refresh_with_stale_tokens_returns_the_stored_ones_without_calling(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.put(make_entry("acct-1", 1))
    oauth = CountingOAuth()
    first = StoredTokenSource(store, oauth.refresh, "client-a", "acct-1")
    second = StoredTokenSource(store, oauth.refresh, "client-a", "acct-1")
    stale = second.get()
    fresh = first.refresh(first.get())
    assert second.refresh(stale) == fresh
    assert len(oauth.calls) == 1


def test_concurrent_refreshes_of_one_entry_call_atlassian_once(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.put(make_entry("acct-1", 1))
    gate = threading.Event()
    oauth = CountingOAuth(gate)
    sources = [StoredTokenSource(store, oauth.refresh, "client-a", "acct-1") for _ in range(4)]
    stale = sources[0].get()
    results: list[TokenSet] = []
    errors: list[BaseException] = []

    def run(source):
        try:
            results.append(source.refresh(stale))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in sources]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10)
    assert not errors
    assert oauth.calls == ["refresh-token-number-0001"]
    assert len(results) == 4 and len({r.access_token for r in results}) == 1
    assert store.get().tokens == results[0]


def test_refresh_uses_the_stored_refresh_token_not_the_stale_one(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.put(make_entry("acct-1", 7))
    # stored tokens are newer than 'stale' but already expired: refresh with the stored one
    store.put(
        TokenEntry(
            "client-a",
            "acct-1",
            make_tokens(8, expires_at=NOW - 1),
            updated_at=NOW,
        )
    )
    oauth = CountingOAuth()
    source = StoredTokenSource(store, oauth.refresh, "client-a", "acct-1", clock=lambda: NOW)
    source.refresh(make_tokens(7))
    assert oauth.calls == ["refresh-token-number-0008"]


def test_refresh_keeps_the_old_refresh_token_when_none_comes_back(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.put(make_entry("acct-1", 1))

    class NoRotation:
        def refresh(self, refresh_token):
            return make_tokens(2, refresh=False)

    source = StoredTokenSource(store, NoRotation().refresh, "client-a", "acct-1")
    fresh = source.refresh(source.get())
    assert fresh.refresh_token.reveal() == "refresh-token-number-0001"
    assert store.get().tokens.refresh_token.reveal() == "refresh-token-number-0001"


def test_refresh_without_refresh_token_requires_a_new_login(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.put(TokenEntry("client-a", "acct-1", make_tokens(1, refresh=False), updated_at=NOW))
    oauth = CountingOAuth()
    source = StoredTokenSource(store, oauth.refresh, "client-a")
    with pytest.raises(ReauthorizationRequired) as info:
        source.refresh(source.get())
    assert "offline_access" in info.value.hint
    assert oauth.calls == []


def test_failed_refresh_leaves_the_store_untouched(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.put(make_entry("acct-1", 1))
    before = store.path.read_bytes()

    class Refusing:
        def refresh(self, refresh_token):
            raise ReauthorizationRequired("refused", status_code=403, error="invalid_grant")

    source = StoredTokenSource(store, Refusing().refresh, "client-a", "acct-1")
    with pytest.raises(ReauthorizationRequired):
        source.refresh(source.get())
    assert store.path.read_bytes() == before



@pytest.mark.parametrize(
    "refusal",
    [
        RateLimited("busy", retry_after=30, status_code=429, url="https://auth.test/oauth/token"),
        ServerError("down", status_code=503, url="https://auth.test/oauth/token"),
    ],
    ids=["429", "503"],
)
def test_a_refresh_the_token_endpoint_did_not_process_leaves_no_in_flight_mark(
    tmp_path, refusal
):
    # A 429 or 5xx from the token endpoint is a TransientError, not an OAuthError: the refresh
    # was not processed, so nothing was rotated and the entry is not left marked as in flight.
    store = TokenStore(tmp_path / "tokens.json")
    store.put(make_entry("acct-1", 1))

    def refuse(refresh_token):
        raise refusal

    source = StoredTokenSource(store, refuse, "client-a", "acct-1")
    with pytest.raises(type(refusal)):
        source.refresh(source.get())
    assert store.get("client-a", "acct-1").refresh_started_at is None

def test_source_for_a_deleted_entry_says_to_log_in(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.put(make_entry("acct-1", 1))
    source = StoredTokenSource(store, CountingOAuth().refresh, "client-a", "acct-1")
    source.get()
    store.delete("client-a", "acct-1")
    with pytest.raises(TokenStoreError) as info:
        source.get()
    assert "login" in info.value.hint


def test_entry_locks_are_per_entry(tmp_path):
    store = TokenStore(tmp_path / "tokens.json", lock_timeout=0.2)
    with store.lock("client-a", "acct-1"):
        with store.lock("client-a", "acct-2"):  # another entry: not blocked
            pass
        blocked = []

        def other():
            try:
                with store.lock("client-a", "acct-1"):
                    pass
            except TokenStoreError as exc:
                blocked.append(exc)

        t = threading.Thread(target=other)
        t.start()
        t.join(5)
    assert len(blocked) == 1
    assert "refresh" in blocked[0].message


# -- StoredTokenSource against the emulator ------------------------------------------------


def login_to_store(emulator, store_path) -> tuple[object, TokenStore, TokenEntry]:
    """Authorize with auto-consent, exchange, and store the entry, as `login` does."""
    import httpx

    from atlassian_playbook.oauth import OAuthClient

    settings = emulator_settings(emulator, token_store=store_path)
    with OAuthClient(settings) as oauth:
        request = oauth.authorization_request()
        location = httpx.get(request.url).headers["location"]
        tokens = oauth.exchange_code(oauth.parse_callback(location, request.state))
    store = TokenStore(store_path)
    entry = store.put(
        TokenEntry(settings.client_id, emulator.user["account_id"], tokens, request.scopes)
    )
    return settings, store, entry


def refresh_posts(emulator) -> int:
    return sum(1 for _, path, _ in emulator.request_log if path == "/oauth/token") - 1


def test_stored_source_refresh_rotates_persists_and_the_next_refresh_works(emulator, tmp_path):
    from atlassian_playbook.oauth import OAuthClient

    settings, store, entry = login_to_store(emulator, tmp_path / "tokens.json")
    with OAuthClient(settings) as oauth:
        source = StoredTokenSource(store, oauth.refresh, settings.client_id)
        first = source.refresh(source.get())
        assert store.get().tokens == first != entry.tokens
        emulator.advance_clock(601)  # the original refresh token is now dead for good
        second = source.refresh(source.get())  # uses the saved, rotated token: still fine
    assert store.get().tokens == second
    assert refresh_posts(emulator) == 2


def test_threads_refreshing_one_entry_make_one_call(emulator, tmp_path):
    from atlassian_playbook.oauth import OAuthClient

    settings, store, entry = login_to_store(emulator, tmp_path / "tokens.json")
    barrier = threading.Barrier(4)
    results: list[TokenSet] = []
    errors: list[BaseException] = []

    def run():
        # Each thread its own OAuthClient, TokenStore object and source: as separate processes.
        with OAuthClient(settings) as oauth:
            source = StoredTokenSource(TokenStore(store.path), oauth.refresh, settings.client_id)
            stale = source.get()
            barrier.wait(10)
            try:
                results.append(source.refresh(stale))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert refresh_posts(emulator) == 1
    assert len({r.refresh_token for r in results}) == 1
    assert store.get().tokens == results[0]
    # The original token was presented exactly once, so no reuse: after the leeway the grant
    # is intact and the saved token refreshes.
    emulator.advance_clock(601)
    with OAuthClient(settings) as oauth:
        StoredTokenSource(store, oauth.refresh, settings.client_id).refresh(results[0])


def _refresh_in_another_process(settings, store_path, client_id, barrier, queue) -> None:
    from atlassian_playbook.oauth import OAuthClient

    with OAuthClient(settings) as oauth:
        source = StoredTokenSource(TokenStore(store_path), oauth.refresh, client_id)
        stale = source.get()
        barrier.wait(60)
        fresh = source.refresh(stale)
    queue.put(fresh.refresh_token.fingerprint)


def test_processes_refreshing_one_entry_make_one_call(emulator, tmp_path):
    import multiprocessing

    settings, store, entry = login_to_store(emulator, tmp_path / "tokens.json")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    queue = ctx.Queue()
    processes = [
        ctx.Process(
            target=_refresh_in_another_process,
            args=(settings, store.path, settings.client_id, barrier, queue),
        )
        for _ in range(2)
    ]
    for p in processes:
        p.start()
    fingerprints = [queue.get(timeout=120) for _ in processes]
    for p in processes:
        p.join(60)
        assert p.exitcode == 0
    assert refresh_posts(emulator) == 1
    stored = store.get().tokens
    assert fingerprints == [stored.refresh_token.fingerprint] * 2
    assert stored.refresh_token != entry.tokens.refresh_token


def test_stored_source_after_revocation_raises_reauthorization(emulator, tmp_path):
    from atlassian_playbook.oauth import OAuthClient

    settings, store, entry = login_to_store(emulator, tmp_path / "tokens.json")
    emulator.revoke()
    with OAuthClient(settings) as oauth:
        source = StoredTokenSource(store, oauth.refresh, settings.client_id)
        with pytest.raises(ReauthorizationRequired) as info:
            source.refresh(source.get())
    assert "login" in info.value.hint
    assert store.get().tokens == entry.tokens  # nothing half-written
