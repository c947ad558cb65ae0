"""Tokens: what Atlassian hands back, where they are kept, and how they are renewed safely.

Atlassian rotates refresh tokens: every refresh returns a new one and retires the one sent.
Presenting a retired token after the short reuse leeway is treated as theft and revokes the
whole grant (FACTS.md, "Refresh tokens"), so the user has to consent again. Two rules follow,
and this module enforces both:

* a rotated refresh token is written to the store (atomically, mode 0600) *before* anyone uses
  the new access token, so a crash can never lose it;
* refreshes of one entry are serialised by an inter-process lock, and whoever gets the lock
  second re-reads the store and takes the tokens the first one saved instead of refreshing
  again, so a batch of processes never presents the same refresh token twice.

What can still go wrong between Atlassian's answer and the save is made loud and recoverable.
Before a refresh is sent the store must prove it can take the result (a file of its size plus
a margin is written and fsynced beside it), and the entry is marked as being refreshed, so a
process killed before the save leaves a trace the next refresh reads. A save that fails is
retried; if it still fails, the new tokens stay in memory (used and saved again by the same
source) and :class:`~.errors.RotationNotSaved` says until when a retry recovers the grant.

A service account's connection (``TokenEntry.grant == "client_credentials"``) has no refresh
token: its source fetches a new access token with the client credentials instead (authlib's
``ensure_active_token`` model), under the same lock, and never sends the refresh grant.

Nothing here prints a token: :class:`TokenSet` keeps them in :class:`~.redact.Secret`, and the
entries' ``repr`` shows masks only.
"""

from ._model import (
    AUTHORIZATION_CODE,
    CLIENT_CREDENTIALS,
    DEFAULT_EXPIRES_IN,
    GRANTS,
    REUSE_LEEWAY,
    StaticTokenSource,
    TokenEntry,
    TokenSet,
    TokenSource,
    entries_summary,
)
from ._source import SAVE_ATTEMPTS, FetchGrant, RefreshGrant, StoredTokenSource
from ._store import STORE_VERSION, TokenStore

__all__ = [
    "TokenSet",
    "TokenEntry",
    "TokenStore",
    "TokenSource",
    "RefreshGrant",
    "FetchGrant",
    "StoredTokenSource",
    "StaticTokenSource",
    "entries_summary",
    "DEFAULT_EXPIRES_IN",
    "AUTHORIZATION_CODE",
    "CLIENT_CREDENTIALS",
    "GRANTS",
    "REUSE_LEEWAY",
    "STORE_VERSION",
    "SAVE_ATTEMPTS",
]
