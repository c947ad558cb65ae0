"""Notebook 04: consent, the code exchange, the token store, and the consent traps rehearsed.

The flow itself is :func:`..connection.login` (the CLI's too); what is the notebook's own is
who answers the consent screen (``consent``) and how a person hands the redirect back.
"""

from __future__ import annotations

import html
import stat
import time
from collections.abc import Callable

from .. import connection
from ..callback import is_loopback
from ..errors import CallbackError, PlaybookError
from ..redact import redact
from ..tokens import entries_summary
from ._results import StepResult, skipped, step
from .session import Session

__all__ = [
    "CONSENT_MODES",
    "login",
    "exchange_tokens",
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
    long to wait for the person, in seconds.
    """
    from ..widgets import AuthorizationPanel

    panel = AuthorizationPanel()  # shown now: the link must be there before anything waits
    headless = session.consents_headless(consent)

    def show(url: str) -> None:
        panel.set_url(url)
        panel.show(
            "Consenting headless (emulator)…"
            if headless
            else "Open the link, choose a site and press Accept; this cell waits for the "
            "callback"
            + (
                "."
                if is_loopback(session.settings.redirect_uri)
                else ", then asks for the URL your browser landed on."
            )
        )

    try:
        login_result = login(
            session, consent=consent, callback=callback, timeout=timeout, show_url=show
        )
    except PlaybookError as error:
        panel.show(f"✘ {html.escape(redact(error.message))}")
        raise
    panel.show("✔ Consent received, code exchanged, tokens stored.")
    data = login_result.to_dict()
    tokens = login_result.entry.tokens
    result = StepResult("login", {**data, "consent": consent, "headless": headless})
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
    return result


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
