"""Notebook 06: refresh and rotation, reuse of a rotated token (rehearsed), and when each of
the user's credentials stops working.

Atlassian's lifetimes are data (``data/token-lifetimes.json``) and the notebook's Markdown;
the code adds only the user's own dates.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from .. import connection
from ..errors import ReauthorizationRequired
from ..tokens import TokenEntry
from ._results import StepResult, step
from .session import Session, opt

__all__ = ["Refreshed", "refresh_tokens", "demonstrate_reuse", "lifecycle_timeline"]


@cache
def _lifetimes() -> dict[str, Any]:
    path = files("atlassian_playbook").joinpath("data/token-lifetimes.json")
    return json.loads(path.read_text(encoding="utf-8"))


def past_reuse_leeway() -> int:
    """Seconds that take a rotated refresh token past Atlassian's reuse leeway: a minute more."""
    return _lifetimes()["reuse_leeway_seconds"] + 60


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))


@dataclass(repr=False)
class Refreshed(StepResult):
    """A refresh, kept by notebook 06 for the reuse demonstration (``refresh`` holds the
    tokens before it)."""

    refresh: connection.RefreshResult | None = None


@step(shows_itself=True)
def refresh_tokens(session: Session, *, account_id: str | None = None) -> Refreshed:
    """Refresh now; show the rotation (masked fingerprints) and that the new token was saved."""
    refreshed = connection.refresh(session.target, account_id=opt(account_id))
    result = Refreshed("refresh", refreshed.to_dict(), refresh=refreshed)
    result.table(
        [
            {"refresh token": "before (sent)", "fingerprint": refreshed.previous_refresh_token},
            {
                "refresh token": "after (saved to the store)",
                "fingerprint": refreshed.new_refresh_token,
            },
        ]
    )
    return result.say(
        f"Rotated: **{'yes' if refreshed.rotated else 'no'}**. The access token now expires at "
        f"{result.data['expires_at']}. The new refresh token was saved *before* anything "
        "else used it: the old one stops working after the reuse leeway."
    )


@step()
def demonstrate_reuse(
    session: Session, refreshed: Refreshed, *, recover: bool = True
) -> StepResult:
    """Show what reusing a rotated refresh token does, then recover (emulator only).

    The emulator's clock moves past the reuse leeway, the old refresh token is presented, the
    theft rule revokes every refresh token of the grant (the newest too), and, with
    ``recover``, the playbook consents again headless and stores the new tokens. Against the
    real Atlassian this is skipped: it would revoke a real grant.
    """
    stage = session.rehearsals
    if stage.unavailable:
        return stage.skip(
            "reuse",
            "reusing a rotated refresh token would revoke this grant for real.",
            demonstrated=False,
        )
    before = refreshed.refresh
    leeway = past_reuse_leeway()
    stage.advance_clock(leeway)
    outcome: dict[str, Any] = {"demonstrated": True, "clock_advanced_s": leeway}
    result = StepResult("reuse", outcome)
    rows = []
    with session.target.oauth_client() as oauth:
        for label, token, key in (
            (
                "old (rotated) refresh token, 11 min later",
                before.previous_tokens.refresh_token,
                "old_token_rejected",
            ),
            ("newest refresh token, right after", before.entry.tokens.refresh_token,
             "grant_revoked"),
        ):
            try:
                oauth.refresh(token)
                outcome[key] = False
                answer = "accepted"
            except ReauthorizationRequired as error:
                outcome[key] = True
                answer = f"rejected: {error.message}"
            rows.append({"presented": label, "fingerprint": str(token), "answer": answer})
    result.table(rows, ["presented", "fingerprint", "answer"])
    if outcome["old_token_rejected"] and outcome["grant_revoked"]:
        result.say(
            "The reuse was taken for theft: **every refresh token of the grant is revoked"
            "**, the newest one too. Only a new consent fixes it."
        )
    if recover:
        chosen = before.entry.site or {}
        recovered = _consent_again(session, chosen.get("id"))
        outcome.update(
            recovered=True,
            new_refresh_token=str(recovered.tokens.refresh_token),
            account_id=recovered.account_id,
            site=(recovered.site or {}).get("id"),
        )
        where = f" for **{chosen['name']}**, the site this connection had chosen" if chosen \
            else ""
        result.say(
            f"**Recovered:** the playbook consented again{where} (headless, against the "
            "emulator) and stored new tokens (refresh token "
            f"{recovered.tokens.refresh_token}). A consent for another site would have added "
            "that site to the same grant, leaving the connection with two sites and none "
            "chosen. With real users, this is the moment they must be sent through consent "
            "again, and told which site to choose."
        )
    return result


def _consent_again(session: Session, site: str | None) -> TokenEntry:
    """A new consent, headless against the emulator, for ``site`` (the connection's own)."""
    if session.auto_consent is not True:  # the embedded emulator must consent by itself
        session.auto_consent = True
        session.reload()
    return connection.login(
        session.target, browser="headless", show_url=lambda url: None, site=site
    ).entry


def _until(rule: str | dict[str, Any], entry: TokenEntry) -> str:
    """A lifetime's end for this connection (see ``data/token-lifetimes.json``)."""
    if isinstance(rule, str):
        return rule
    if rule["from"] == "expires_at":
        return _iso(entry.tokens.expires_at)
    if entry.tokens.refresh_token is None:  # "last_use": only a refresh token is kept alive
        return "no refresh token"
    return _iso(entry.updated_at + rule["days"] * 86400)


@step()
def lifecycle_timeline(session: Session, *, account_id: str | None = None) -> StepResult:
    """When each of this connection's credentials stops working (the rules: notebook 06's
    Markdown and ``data/token-lifetimes.json``)."""
    entry = session.target.store.get(
        session.settings.client_id, opt(account_id)
    )
    rows = [
        {"what": life["what"], "until": _until(life["until"], entry), "why": life["why"]}
        for life in _lifetimes()["lifetimes"]
    ]
    return StepResult("timeline", rows).table(rows, ["what", "until", "why"])
