"""Notebook 04: consent, the code exchange, the token store, and the consent traps rehearsed.

The flow itself is :func:`..connection.login` (the CLI's too); what is the notebook's own is
who answers the consent screen (``consent``) and how a person hands the redirect back.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Callable

from .. import connection
from ..callback import WaitCancelled, WaitControl, is_loopback, watching
from ..errors import CallbackError, PlaybookError
from ..tokens import entries_summary
from ._results import StepResult, skipped, step
from .consent import ConsentDisplay
from .session import Session

__all__ = [
    "CONSENT_MODES",
    "login",
    "exchange_tokens",
    "partner_code_warning",
    "show_token_store",
    "rehearse_consent_traps",
]

# Who answers the consent screen: "auto" (headless against a loopback emulator, else a person),
# "browser" (always a person), "deny" (emulator only: the headless browser presses Deny).
CONSENT_MODES = ("auto", "browser", "deny")
CALLBACK_MODES = ("auto", "listen", "paste")


def _ask_pasted_url() -> str:
    """A masked input box in JupyterLab for the URL the browser landed on (it holds the code)."""
    from getpass import getpass

    try:
        return getpass("Paste the whole URL your browser landed on (hidden), then Enter: ")
    except Exception as error:  # StdinNotImplementedError under papermill / nbconvert
        raise CallbackError(
            f"Nobody can paste the redirected URL here ({type(error).__name__}).",
            "Run this notebook in JupyterLab, or use `atlassian-playbook login --paste`; a "
            "headless run only works against the emulator.",
        ) from None


def login(
    session: Session,
    *,
    consent: str = "auto",
    callback: str = "auto",
    timeout: float = 300.0,
    show_url: Callable[[str], object] | None = None,
) -> connection.LoginResult:
    """The authorization code flow for a notebook; see :func:`exchange_tokens`."""
    if consent not in CONSENT_MODES:
        raise PlaybookError(
            f"consent={consent!r} is not a consent mode.",
            f"Use one of: {', '.join(CONSENT_MODES)}.",
        )
    if callback not in CALLBACK_MODES:
        raise PlaybookError(
            f"callback={callback!r} is not a callback mode.", "Use auto, listen or paste."
        )
    if consent == "deny" and not session.headless_possible:
        raise PlaybookError(
            "consent='deny' rehearses a refusal against the emulator only.",
            "Press Deny yourself on Atlassian's consent screen to see it live.",
        )
    headless = session.consents_headless(consent)
    # The embedded emulator answers consent itself: at once (auto), with a refusal (deny), or
    # with its consent page for a person (browser).
    wanted = {"auto": True, "deny": "deny"}.get(consent, False)
    if session.uses_emulator and session.auto_consent != wanted:
        session.auto_consent = wanted
        session.reload()
    return connection.login(
        session.target,
        mode=callback,
        browser="headless" if headless else "none",
        paste=None if headless else _ask_pasted_url,
        show_url=show_url or (lambda url: None),
        timeout=timeout,
    )


@step()
def exchange_tokens(
    session: Session, *, consent: str = "auto", callback: str = "auto", timeout: float = 300.0
) -> StepResult:
    """Authorize, catch the code, exchange it, store the tokens, show a masked summary.

    ``consent``: ``auto`` consents headless against a loopback emulator and waits for a person
    anywhere else; ``browser`` always waits for a person (the emulator then shows its consent
    page); ``deny`` (emulator only) presses Deny, to rehearse a refusal. ``callback``: ``auto``
    listens on a loopback callback URL and otherwise asks for the URL the browser landed on
    (a partner's callback such as Merge's); ``listen``/``paste`` force one. ``timeout``: how
    long to wait for the person, in seconds; a person sees a countdown and a Cancel button,
    and the notebook's stop button ends the wait as cleanly (:class:`WaitCancelled`).
    """
    headless = session.consents_headless(consent)
    # Shown now: the link must be there before anything waits.
    display = ConsentDisplay(person=not headless)
    listens = callback == "listen" or (
        callback == "auto" and is_loopback(session.settings.redirect_uri)
    )
    partner_warning = partner_code_warning(session)
    if headless:
        status = ("Consenting headless: the emulator's browser signs in, chooses the site and "
                  "presses Accept…")
    else:
        status = ("Open the link, choose the site that has the products the app needs and "
                  "press Accept; this cell waits for the callback"
                  + ("." if listens else ", then asks for the URL your browser landed on."))

    def show(url: str) -> None:
        display.set_url(url)
        display.say((f"⚠️ {partner_warning} " if partner_warning else "") + status)

    try:
        with display.waiting(timeout) as control, watching(control or WaitControl()):
            login_result = login(
                session, consent=consent, callback=callback, timeout=timeout, show_url=show
            )
    except KeyboardInterrupt:  # outside the listener's wait: the paste box, the exchange
        error = WaitCancelled(
            "The login was interrupted before the tokens were stored.",
            "Run the cell again when you are ready to consent.",
        )
        display.say(f"⏹ {error.message}")
        raise error from None
    except PlaybookError as error:
        display.say(f"{'⏹' if isinstance(error, WaitCancelled) else '✘'} {error.message}")
        raise
    display.say("✔ Consent received, code exchanged, tokens stored.")
    data = login_result.to_dict()
    tokens = login_result.entry.tokens
    result = StepResult("login", {**data, "consent": consent, "headless": headless})
    if headless:
        sites = ", ".join(f"{s['name']} ({s['url']})" for s in data["sites"]) or "no site"
        result.say(
            f"**The emulator consented for you** (`consent = \"{consent}\"`): it signed in as "
            f"its user, chose **{sites}** and accepted "
            f"`{' '.join(data['granted_scopes']) or '(no scope)'}`. Against Atlassian, you "
            "make these choices on the consent screen."
        )
    result.table(
        [
            {"item": "account", "value": data["account_id"] or "(unknown: read:me not requested)"},
            {"item": "access token", "value": f"{tokens.access_token} (masked)"},
            {"item": "expires at", "value": data["expires_at"]},
            {
                "item": "refresh token",
                "value": f"{tokens.refresh_token} (masked)" if tokens.refresh_token else "missing",
            },
            {"item": "requested scopes", "value": data["requested_scopes"]},
            {"item": "granted scopes", "value": data["granted_scopes"]},
            {
                "item": "sites",
                "value": [f"{s['name']} ({s['id']})" for s in data["sites"]]
                or "(none listed: no site scopes requested)",
            },
        ],
        ["item", "value"],
    )
    for warning in login_result.warnings:
        result.say(f"⚠️ {warning}")
    if partner_warning:
        result.data["partner_receives_code"] = True
        result.say(f"⚠️ {partner_warning}")
    return result


def partner_code_warning(session: Session) -> str | None:
    """With a partner's callback (Merge, Clerk), what the learner must know before consent:
    the partner's page receives the code first. ``None`` for the playbook's own callback."""
    profile = session.profile
    if not profile.callback.belongs_to_partner or is_loopback(session.settings.redirect_uri):
        return None
    return (
        f"{profile.partner}'s page receives the code first: after consent the browser lands "
        f"on {session.settings.redirect_uri}, and {profile.partner} may redeem the code there. "
        "A code is single-use (RFC 6749 §4.1.2), so the playbook's exchange then fails with "
        "invalid_grant \"Invalid authorization code\": the partner holds the connection, not "
        "the playbook. To get tokens here as well, add a loopback callback URL to the app's "
        "Authorization tab (guides disagree whether an app may hold several) and use it in .env."
    )


def _mode(mode: int | None) -> str:
    return "missing" if mode is None else f"{mode:04o}"


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))


@step()
def show_token_store(session: Session) -> StepResult:
    """Where the tokens are, that the file is private (0600), and what it holds (masked)."""
    path = session.settings.token_store
    entries = session.target.store.list()
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    private = mode is not None and mode & 0o077 == 0
    result = StepResult(
        "token_store",
        {
            "path": str(path),
            "mode": _mode(mode),
            "private": private,
            "entries": len(entries),
            "accounts": [e.account_id for e in entries],
        },
    )
    result.say(
        f"**Token store:** `{path}` — mode `{_mode(mode)}`"
        + (" (only you can read it)" if private else " ⚠️ readable by others")
    )
    rows = entries_summary(entries)
    for row in rows:
        row["updated_at"] = _iso(row["updated_at"])
    result.table(rows)
    if mode is not None and not private:
        result.error = PlaybookError(
            f"The token store {path} is readable by other users.", f"Run `chmod 600 {path}`."
        )
    return result


@step()
def rehearse_consent_traps(session: Session, *, enabled: bool = True) -> StepResult:
    """The consent traps made on purpose against the emulator (see :mod:`..rehearsals`): what
    each looks like to the user and what fixes it. Against Atlassian, says why not."""
    if not enabled:
        return skipped("rehearsals", "The parameters cell says `rehearse = False`.")
    stage = session.rehearsals
    if stage.unavailable:
        return stage.skip("rehearsals", "the rehearsals make an app fail on purpose.")
    traps = stage.consent_traps()
    result = StepResult("rehearsals", [r.to_dict() for r in traps]).table(
        [
            {
                "trap": r.name,
                "the mistake": r.mistake,
                "what the user sees": r.seen,
                "as on Atlassian": "✔" if r.as_expected else "✘",
                "the fix": r.fix,
            }
            for r in traps
        ],
        ["trap", "the mistake", "what the user sees", "as on Atlassian", "the fix"],
    )
    failed = [r.name for r in traps if not r.as_expected]
    if failed:
        result.error = PlaybookError(
            f"Rehearsal(s) did not fail the way Atlassian fails: {', '.join(failed)}.",
            "Check the emulated world (docs/EMULATOR.md) or report it with "
            "`atlassian-playbook doctor --record`.",
        )
    return result
