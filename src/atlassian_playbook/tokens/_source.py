"""Refreshing a stored connection safely: :class:`StoredTokenSource` serialises refreshes of one
entry across processes, re-reads before refreshing, and saves rotated tokens before anyone
uses them (see the package docstring for why)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass

from ..errors import (
    ConfigError,
    OAuthError,
    ReauthorizationRequired,
    RotationNotSaved,
    StorageError,
    TokenStoreError,
    TransientError,
)
from ..redact import Secret, get_logger, mask
from ._model import REUSE_LEEWAY, TokenEntry, TokenSet, _describe
from ._store import TokenStore

logger = get_logger(__name__)

# Room proved free beside the store, beyond its current size, before a refresh is sent:
# rotated tokens may be longer than the ones they replace.
SAVE_MARGIN = 4096
# Saves of rotated tokens tried before giving up, SAVE_BACKOFF * n seconds apart.
SAVE_ATTEMPTS = 3
SAVE_BACKOFF = 0.05


@dataclass(frozen=True)
class _UnsavedRotation:
    """Tokens Atlassian rotated to that the store has not taken yet.

    ``replaces`` is the refresh token they were rotated from (still the stored one), which
    Atlassian accepts until ``deadline``.
    """

    entry: TokenEntry
    replaces: Secret
    deadline: float


# Sends a refresh token to the token endpoint and returns its answer, without storing it
# (:meth:`~.oauth.OAuthClient.refresh`). May raise OAuthError or TransientError.
RefreshGrant = Callable[[Secret], TokenSet]

# Fetches a new token with the client credentials, for the given scopes (``None``: all the
# credential's) and returns it, without storing it (:meth:`~.oauth.OAuthClient.client_credentials`).
FetchGrant = Callable[[Sequence[str] | None], TokenSet]


class StoredTokenSource:
    """A :class:`TokenSource` backed by one entry of a :class:`TokenStore`.

    ``refresh`` sends the refresh grant (``oauth.refresh`` of an
    :class:`~.oauth.OAuthClient`, which the caller owns and closes): this module needs
    nothing else of the token endpoint, and does not import it.

    ``account_id=None`` picks the only entry for ``client_id`` (an error when there are
    several). ``on_update(entry)`` is called after rotated tokens were saved — authlib's
    ``update_token`` idea, for callers that keep a copy elsewhere. ``clock`` is Atlassian's
    time as far as expiry and the reuse leeway go (tests pass the emulator's).

    ``fetch`` (``oauth.client_credentials``) renews a service account's connection (an entry
    whose ``grant`` is ``client_credentials``): a new token is fetched with the client
    credentials, as authlib's client does for that grant, and the refresh grant is never sent.

    When rotated tokens cannot be saved (:class:`~.errors.RotationNotSaved`), this source
    keeps them: :meth:`get` and :meth:`refresh` hand them out and try the save again each
    time, so a process that outlives a full disk saves them as soon as there is room.
    """

    def __init__(
        self,
        store: TokenStore,
        refresh: RefreshGrant,
        client_id: str,
        account_id: str | None = None,
        *,
        on_update: Callable[[TokenEntry], object] | None = None,
        clock: Callable[[], float] = time.time,
        fetch: FetchGrant | None = None,
    ) -> None:
        self.store = store
        self._refresh_grant = refresh
        self._fetch_grant = fetch
        self.client_id = client_id
        self.account_id = account_id
        self.on_update = on_update
        self._clock = clock
        self._resolved: tuple[str, str | None] | None = None
        self._unsaved: _UnsavedRotation | None = None

    def __repr__(self) -> str:
        return (
            f"StoredTokenSource(store={self.store!r}, client_id={self.client_id!r}, "
            f"account_id={self.account_id!r})"
        )

    def entry(self) -> TokenEntry:
        """The current entry, re-read from the file (another process may have rotated it)."""
        if self._resolved is None:
            found = self.store.get(self.client_id, self.account_id)
            self._resolved = (found.client_id, found.account_id)
            return found
        found = self.store.find(*self._resolved)
        if found is None:
            raise TokenStoreError(
                f"The stored connection {_describe(*self._resolved)}was deleted from "
                f"{self.store.path}.",
                "Run `atlassian-playbook login` again.",
            )
        return found

    @property
    def renews_without_refresh_token(self) -> bool:
        """True when this source renews tokens that carry no refresh token (a service
        account's, through ``fetch``): :class:`~.auth.TokenAuth` then renews them before they
        expire instead of spending their last seconds."""
        return self._fetch_grant is not None and self.entry().is_service_account

    def get(self) -> TokenSet:
        """The current tokens: the stored ones, or rotated ones not saved yet (saved now if
        the store can take them)."""
        unsaved = self._unsaved
        if unsaved is not None:
            try:
                with self.store.lock(unsaved.entry.client_id, unsaved.entry.account_id):
                    self._save_unsaved()
            except (StorageError, TokenStoreError) as exc:
                logger.debug("rotated tokens still not saved: %s", exc.message)
            unsaved = self._unsaved
            if unsaved is not None:
                return unsaved.entry.tokens
        return self.entry().tokens

    def refresh(self, stale: TokenSet) -> TokenSet:
        """Renew ``stale`` once, under the entry's lock, and persist before returning.

        If the stored tokens are no longer ``stale`` (another process or thread refreshed
        while we waited for the lock), they are returned as they are: Atlassian is not called
        and no refresh token is presented twice. The refresh always uses the *stored* refresh
        token, never the one in ``stale``.

        Nothing is sent unless the store proves it can take the answer (else
        :class:`TokenStoreError`, and the grant is untouched). An answer that cannot be saved
        raises :class:`~.errors.RotationNotSaved` after a few tries.
        """
        entry = self.entry()
        client_id, account_id = entry.client_id, entry.account_id
        with self.store.lock(client_id, account_id):
            if self._unsaved is not None:
                try:
                    self._save_unsaved()
                except (StorageError, TokenStoreError) as exc:
                    pending = self._unsaved.entry.tokens
                    if _rotated_since(pending, stale) and not pending.is_expiring(0, self._clock()):
                        return pending
                    raise self._not_saved(exc) from None
            current = self.store.find(client_id, account_id)
            if current is None:
                raise TokenStoreError(
                    f"The stored connection {_describe(client_id, account_id)}disappeared "
                    f"from {self.store.path} during a refresh.",
                    "Run `atlassian-playbook login` again.",
                )
            tokens = current.tokens
            if _rotated_since(tokens, stale) and not tokens.is_expiring(0, self._clock()):
                logger.debug("tokens for %s were already refreshed elsewhere", current.key)
                return tokens
            if current.is_service_account:
                return self._fetch_new(current)
            if tokens.refresh_token is None:
                raise ReauthorizationRequired(
                    "This connection has no refresh token (offline_access was not granted), "
                    "and its access token cannot be renewed.",
                    "Add offline_access to ATLASSIAN_SCOPES and run `atlassian-playbook login` "
                    "again.",
                )
            self._prepare(current)
            sent_at = self._clock()
            try:
                fresh = self._refresh_grant(tokens.refresh_token)
            except (OAuthError, TransientError) as exc:
                if exc.status_code is not None:
                    # Atlassian answered, and refused: nothing was rotated, so the mark goes.
                    with suppress(StorageError, TokenStoreError):
                        self.store.put(current)
                if isinstance(exc, ReauthorizationRequired):
                    raise self._lost_rotation(exc, current) from None
                raise
            fresh = fresh.with_refresh_token(tokens.refresh_token)
            updated = dataclasses.replace(
                current, tokens=fresh, updated_at=self._clock(), refresh_started_at=None
            )
            self._unsaved = _UnsavedRotation(updated, tokens.refresh_token, sent_at + REUSE_LEEWAY)
            self._save_rotation()
        if current.refresh_started_at is not None:
            logger.warning(
                "the answer to an earlier refresh of %s (sent %s) was never saved; recovered "
                "with the stored refresh token",
                current.key,
                _utc(current.refresh_started_at),
            )
        logger.info(
            "refreshed tokens for %s: refresh token %s -> %s",
            updated.key,
            mask(tokens.refresh_token.reveal()),
            mask(fresh.refresh_token.reveal() if fresh.refresh_token else None),
        )
        if self.on_update is not None:
            self.on_update(updated)
        return fresh

    # -- the steps of a refresh, with the entry's lock held ---------------------------------

    def _fetch_new(self, current: TokenEntry) -> TokenSet:
        """A service account's renewal: a new token from the client credentials, saved.

        Nothing rotates, so nothing can be lost: a save that fails leaves the old entry, and
        the next renewal fetches again (the secret is the same)."""
        if self._fetch_grant is None:
            raise ConfigError(
                f"The stored connection {_describe(current.client_id, current.account_id)}is "
                "a service account's (client credentials): it has no refresh token, and this "
                "token source was given no way to fetch a new token.",
                "Service accounts have no refresh token: fetch a new token with the client "
                "credentials (`atlassian-playbook refresh` or `login --client-credentials`; in "
                "Python, StoredTokenSource(..., fetch=oauth.client_credentials)).",
            )
        fresh = self._fetch_grant(current.requested_scopes or None)
        updated = dataclasses.replace(current, tokens=fresh, updated_at=self._clock(),
                                      refresh_started_at=None)
        try:
            self.store.put(updated)
        except (StorageError, TokenStoreError) as exc:
            logger.warning("the new service-account token was not saved: %s", exc.message)
        logger.info("fetched a new token for %s with the client credentials", updated.key)
        if self.on_update is not None:
            self.on_update(updated)
        return fresh

    def _prepare(self, current: TokenEntry) -> None:
        """Before anything is sent: prove the store can take the answer, and mark the entry
        as being refreshed (an earlier mark stays: its leeway ends first)."""
        try:
            self.store.prove_writable(SAVE_MARGIN)
            if current.refresh_started_at is None:
                self.store.put(dataclasses.replace(current, refresh_started_at=self._clock()))
        except StorageError as exc:
            raise TokenStoreError(
                f"Not refreshing {_describe(current.client_id, current.account_id)}: the "
                f"token store {self.store.path} cannot be written ({exc.reason}). Nothing was "
                "sent to Atlassian, so the connection is intact.",
                f"Free space in {self.store.path.parent} or fix its permissions, then try again.",
            ) from None

    def _save_rotation(self) -> None:
        """Save the rotation just received, trying a few times before giving up."""
        for attempt in range(SAVE_ATTEMPTS):
            if attempt:
                time.sleep(SAVE_BACKOFF * attempt)
            try:
                self.store.put(self._unsaved.entry)
            except (StorageError, TokenStoreError) as exc:
                failure = exc
                logger.warning("saving the rotated tokens failed: %s", exc.message)
                continue
            self._unsaved = None
            return
        raise self._not_saved(failure)

    def _save_unsaved(self) -> None:
        """Save the rotation kept in memory, if the store still holds the token it replaces;
        forget it if the store has moved on (a newer rotation saved elsewhere, a new login)."""
        unsaved = self._unsaved
        if unsaved is None:  # another thread saved or dropped it meanwhile
            return
        stored = self.store.find(unsaved.entry.client_id, unsaved.entry.account_id)
        if stored is not None and stored.tokens.refresh_token == unsaved.replaces:
            self.store.put(unsaved.entry)
            logger.info("saved the rotated tokens for %s after all", unsaved.entry.key)
        self._unsaved = None

    def _not_saved(self, failure: TokenStoreError | StorageError) -> RotationNotSaved:
        unsaved = self._unsaved
        when = _utc(unsaved.deadline)
        reason = failure.reason if isinstance(failure, StorageError) else failure.message
        which = _describe(unsaved.entry.client_id, unsaved.entry.account_id)
        folder = self.store.path.parent
        if self._clock() <= unsaved.deadline:
            message = (
                f"Atlassian rotated the refresh token {which}but the new one could not be "
                f"saved to {self.store.path} ({reason}). Unless a refresh is retried before "
                f"{when} (Atlassian's 10-minute reuse leeway) where the store can be written, "
                "Atlassian revokes the connection and only a new consent fixes it."
            )
            hint = (
                f"Free space in {folder} (or make it writable) and run `atlassian-playbook "
                f"refresh` before {when}: the stored refresh token works until then. "
                "Meanwhile this process uses the new tokens (and tries to save them again)."
            )
        else:
            # Past the leeway the stored token is a trap: presenting it revokes the grant,
            # the rotated token only this process holds included.
            message = (
                f"The rotated tokens {which}are still not saved to {self.store.path} "
                f"({reason}), and the stored refresh token's 10-minute reuse leeway ended at "
                f"{when}: only this process holds a refresh token that works."
            )
            hint = (
                f"Free space in {folder} (or make it writable) while this process runs: it "
                "saves the new tokens at their next use. Do not run `atlassian-playbook "
                "refresh` until then: the stored refresh token would revoke the connection."
            )
        return RotationNotSaved(
            message, hint, tokens=unsaved.entry.tokens, deadline=unsaved.deadline
        )

    def _lost_rotation(
        self, refused: ReauthorizationRequired, current: TokenEntry
    ) -> ReauthorizationRequired:
        """Say why the grant is gone when an earlier refresh's answer was lost and its leeway
        has passed: the refresh token we sent was the rotated-out one."""
        started = current.refresh_started_at
        if started is None or self._clock() <= started + REUSE_LEEWAY:
            return refused
        return ReauthorizationRequired(
            f"Atlassian revoked this connection ({refused.status_code} {refused.error}): the "
            f"answer to a refresh sent at {_utc(started)} was never saved (the process stopped, "
            "timed out or could not write the store), and the refresh token it replaced was "
            "presented after Atlassian's 10-minute reuse leeway.",
            "Only a new consent fixes it: run `atlassian-playbook login` again.",
            error=refused.error,
            description=refused.description,
            status_code=refused.status_code,
        )


def _utc(timestamp: float) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(timestamp))


def _rotated_since(current: TokenSet, stale: TokenSet) -> bool:
    return (
        current.refresh_token != stale.refresh_token or current.access_token != stale.access_token
    )
