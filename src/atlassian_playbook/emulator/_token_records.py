"""The records behind the tokens: what keeps a token usable, refresh-token families, and
forgetting what can no longer be used.

Lifetimes, on the emulator's clock: refresh tokens 90 days idle (365 days absolute), and a
rotated refresh token's reuse leeway 10 minutes. The authorization server
(:mod:`._auth`) issues and rotates through these; the gateway (:mod:`._gateway`) asks
:func:`access_token_valid` of every call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from ._tracked import peek

__all__ = [
    "REUSE_LEEWAY",
    "REFRESH_IDLE",
    "REFRESH_ABSOLUTE",
    "PRUNE_EVERY",
    "access_token_valid",
    "find_grant",
    "new_refresh_token",
    "family_of",
    "rotated_long_ago",
    "revoke_refresh_tokens",
    "prune",
]

REUSE_LEEWAY = 600
REFRESH_IDLE = 90 * 86400
REFRESH_ABSOLUTE = 365 * 86400
PRUNE_EVERY = 60


def access_token_valid(access: dict | None, data: dict, now: float) -> bool:
    """Whether an access token record still opens the gateway: not expired, its grant alive,
    not revoked with its refresh token, and not past the grace after that one was rotated."""
    if access is None or access["expires_at"] <= now or access["grant_id"] not in data["grants"]:
        return False
    if access.get("revoked"):
        return False
    revoke_at = access.get("revoke_at")
    return revoke_at is None or now < revoke_at



def find_grant(data: dict, client_id: str, account_id: str) -> str | None:
    for grant_id, grant in data["grants"].items():
        if grant["client_id"] == client_id and grant["account_id"] == account_id:
            return grant_id
    return None


# A refresh token is 43 random characters, its family's id (16 hex digits) and a 22-character
# tag (HMAC-SHA256 of both under the family's key): one run of URL-safe characters, as the
# token-shaped strings render.py looks for. The tag lets the emulator recognise a rotated token
# of a live family after its record was pruned, without keeping a digest per refresh.
_RANDOM, _FAMILY = 43, 16


def new_refresh_token(family: str, key: str) -> str:
    random_part = secrets.token_urlsafe(32)
    return random_part + family + _tag(random_part + family, key)


def family_of(token: str) -> str:
    return token[_RANDOM:_RANDOM + _FAMILY]


def _tag(text: str, key: str) -> str:
    mac = hmac.new(bytes.fromhex(key), text.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def rotated_long_ago(data: dict, token: str, client_id: str, now: float) -> bool:
    """Whether ``token``, which has no record, is a refresh token of a live family of
    ``client_id``: a token rotated more than the leeway ago (an active token's record stays as
    long as its family; a revoked family is forgotten at once)."""
    family = data["families"].get(family_of(token))
    if family is None or family["client_id"] != client_id or not _live(family, data, now):
        return False
    tag = _tag(token[:_RANDOM + _FAMILY], family["key"])
    return hmac.compare_digest(token[_RANDOM + _FAMILY:].encode(), tag.encode())


def _live(family: dict, data: dict, now: float) -> bool:
    """Whether a token of ``family`` may still be used: its grant there, not idle or old."""
    return (family["grant_id"] in data["grants"]
            and now - family["last_used"] < REFRESH_IDLE + REUSE_LEEWAY
            and now - family["started_at"] < REFRESH_ABSOLUTE)


def revoke_refresh_tokens(data: dict, grant_id: str) -> None:
    """Reuse outside the leeway is taken for theft: the whole grant's refresh tokens die, the
    newest included (Atlassian's refresh-token guide), and with them every access token they
    issued. Its families are forgotten: their tokens are unknown from now on, which Atlassian
    answers as it answers revoked ones."""
    tokens = data["access_tokens"]
    for key in [key for key, access in peek(tokens) if access["grant_id"] == grant_id]:
        tokens[key]["revoked"] = True
    _drop(data["families"], lambda family: family["grant_id"] == grant_id)


def prune(data: dict, now: float) -> None:
    """Forget what can no longer be used, so a shared state file stays small.

    Forgotten codes and tokens get the same answer as invalid ones, so this changes nothing a
    client can observe. What the size then depends on is the live grants and token families,
    not how often they refreshed: a rotated refresh token's record goes when its leeway ends
    (its family, kept while any of its tokens can be used, still recognises it), an access
    token's when it stops opening the gateway.

    It looks at every record, so it runs at most once every :data:`PRUNE_EVERY` seconds of the
    emulator's clock (a record outlives its use by that much at most). It reads the records
    through :func:`peek` and deletes in place, so the state file's writer serialises none of
    the records it looked at again (``_tracked.py``), only notes the deleted ones.
    """
    last = data["pruned_at"]
    if last is not None and 0 <= now - last < PRUNE_EVERY:
        return
    data["pruned_at"] = now
    grants = data["grants"]
    _drop(data["consents"], lambda consent: consent["expires_at"] <= now)
    _drop(data["codes"], lambda code: code["expires_at"] <= now or code["grant_id"] not in grants)
    _drop(data["access_tokens"], lambda access: not access_token_valid(access, data, now))
    families = data["families"]
    _drop(families, lambda family: not _live(family, data, now))
    _drop(data["refresh_tokens"], lambda token: token.get("family") not in families or (
        token["status"] == "rotated" and now - token["rotated_at"] > REUSE_LEEWAY))


def _drop(records: dict, doomed) -> None:
    """Delete the records ``doomed(record)`` says go, in place, looking at them with
    :func:`peek`: ``doomed`` reads its record and changes nothing."""
    for key in [key for key, record in peek(records) if doomed(record)]:
        del records[key]
