"""Notebook 10: a service account with OAuth 2.0 client credentials, from the admin's checklist
to a verified connection, and what differs from the 3LO path of notebooks 02-06.

The steps work on the workspace's service-account connection: the credential in ``.env`` with
``ATLASSIAN_GRANT=client_credentials``, or, against the embedded emulator, the emulated
world's first service account (whatever ``ATLASSIAN_GRANT`` says: the notebook is about it).
"""

from __future__ import annotations

from .. import connection
from ..checklist import build_checklist
from ..errors import ConfigError
from ..target import Target, emulator_settings
from ..tokens import CLIENT_CREDENTIALS
from ..verify import failure_of
from ._results import StepResult, step
from .session import Session, opt, words

__all__ = [
    "service_account_checklist",
    "service_account_target",
    "fetch_service_account_token",
    "verify_service_account",
    "renew_after_expiry",
    "compare_with_3lo",
    "DIFFERENCES",
]

PROFILE = "service-account"

# What differs from the 3LO path (FACTS.md, "Beyond the 3LO consent flow"; the lifetimes of
# data/token-lifetimes.json).
DIFFERENCES = [
    {"": "who creates it", "3LO app (notebooks 02-06)": "a developer, in the developer console",
     "service account": "an organisation admin, in Atlassian Administration"},
    {"": "consent screen", "3LO app (notebooks 02-06)": "each user consents, choosing a site",
     "service account": "none: nobody consents"},
    {"": "who the calls act as", "3LO app (notebooks 02-06)": "the user who consented",
     "service account": "the service account (its own account id)"},
    {"": "which sites", "3LO app (notebooks 02-06)": "the sites users consented for, scopes "
     "per site", "service account": "the sites the admin granted the credential"},
    {"": "scopes", "3LO app (notebooks 02-06)": "ticked on the Permissions tab, requested at "
     "consent", "service account": "chosen on the credential; a token may ask for fewer"},
    {"": "access token lifetime", "3LO app (notebooks 02-06)": "60 minutes",
     "service account": "60 minutes"},
    {"": "refresh token", "3LO app (notebooks 02-06)": "with offline_access; rotated at each "
     "refresh, 90 days idle, 365 days absolute", "service account": "none: a new token is "
     "fetched with the client ID and secret"},
    {"": "callback URL", "3LO app (notebooks 02-06)": "registered exactly on the "
     "Authorization tab", "service account": "none"},
    {"": "what to keep safe", "3LO app (notebooks 02-06)": "the client secret and every "
     "rotated refresh token", "service account": "the client secret (shown once; it is the "
     "account's standing credential)"},
]


def service_account_target(session: Session) -> Target:
    """The target holding the workspace's service-account connection.

    With the embedded emulator: its world's first service account, the token store and site
    of the workspace. Against Atlassian: the session's own, which must be configured for it.
    """
    settings = session.settings
    if session.uses_emulator and not settings.is_service_account:
        return Target(emulator_settings(
            session.target.emulator, service_account=True, token_store=settings.token_store,
            site=settings.site, env_file=settings.env_file), session.target.emulator)
    if not settings.is_service_account:
        raise ConfigError(
            "This workspace's .env is set up for a 3LO app, not a service account.",
            "Put the service account's OAuth 2.0 credential in ATLASSIAN_CLIENT_ID and "
            "ATLASSIAN_CLIENT_SECRET and set ATLASSIAN_GRANT=client_credentials (the "
            "checklist above says where they come from); or use a workspace of its own.",
            setting="ATLASSIAN_GRANT",
        )
    return session.target


@step()
def service_account_checklist(session: Session) -> StepResult:
    """The admin's steps in Atlassian Administration and the workspace's, from the
    ``service-account`` profile (no developer-console step applies)."""
    checklist = build_checklist(PROFILE)
    result = StepResult("checklist", checklist.to_dict())
    return result.say(checklist.to_markdown())


@step()
def fetch_service_account_token(session: Session, *, scopes: str = "") -> StepResult:
    """``grant_type=client_credentials``: the token, stored as a client-credentials connection.

    ``scopes`` (space- or comma-separated) narrows the token to some of the credential's;
    ``""`` asks for all of them.
    """
    with service_account_target(session) as target:
        login = connection.login_client_credentials(target, scopes=words(opt(scopes)) or None)
    data = login.to_dict()
    result = StepResult("service_account_token", data)
    result.table([
        {"what": "grant", "value": data["grant"]},
        {"what": "service account", "value": data["account_id"] or "(unknown: no read:me)"},
        {"what": "access token expires", "value": data["expires_at"]},
        {"what": "refresh token", "value": "none (service accounts have none)"},
        {"what": "scopes", "value": " ".join(data["granted_scopes"])},
        {"what": "sites granted", "value": ", ".join(s["name"] for s in data["sites"])},
        {"what": "site used", "value": (data["site"] or {}).get("name") or "(none chosen)"},
    ], ["what", "value"])
    for warning in login.warnings:
        result.say(f"**Warning:** {warning}")
    return result


@step()
def verify_service_account(session: Session, *, fail_on_error: bool = True) -> StepResult:
    """The checks of notebook 05 on the service account's connection (no consent to compare)."""
    with service_account_target(session) as target:
        report = connection.verify(target)
    result = StepResult("service_account_verify", report.to_dict())
    result.table([c.to_dict() for c in report.checks], ["status", "name", "detail", "hint"])
    if fail_on_error and not report.ok:
        result.error = failure_of("Verification failed: ", report.checks)
    elif report.ok:
        result.say("✔ **Verified** as the service account.")
    return result


@step()
def renew_after_expiry(session: Session) -> StepResult:
    """Rehearse the hour running out (the emulator's clock jumps 61 minutes): the next call
    gets a 401, and the client fetches a new token with the client credentials by itself,
    never a refresh grant. Skipped, with the reason, against Atlassian."""
    rehearsals = session.rehearsals
    if rehearsals.unavailable:
        return rehearsals.skip("service_account_renewal", "the hour cannot be made to pass")
    with service_account_target(session) as target:
        before = target.store.get(target.settings.client_id)
        if before.grant != CLIENT_CREDENTIALS:
            raise ConfigError("The stored connection is not a service account's.",
                              "Run the token cell above first.")
        rehearsals.advance_clock(3660)
        with rehearsals.answers("POST", "/oauth/token") as token_answers, \
                rehearsals.answers("GET", "/me") as me_answers, target.api_client() as api:
            api.me()
        after = target.store.get(target.settings.client_id)
    renewed = after.tokens.access_token != before.tokens.access_token
    data = {"renewed": renewed, "token_endpoint": token_answers, "me": me_answers,
            "refresh_token": after.tokens.refresh_token is not None}
    result = StepResult("service_account_renewal", data)
    result.table([
        {"request": "GET /me with the expired token", "answers": me_answers[:1]},
        {"request": "POST /oauth/token (grant_type=client_credentials)",
         "answers": token_answers},
        {"request": "GET /me again, with the new token", "answers": me_answers[1:]},
    ], ["request", "answers"])
    result.say("✔ A new access token was fetched and saved; there is still no refresh token."
               if renewed else "✘ The token was not renewed.")
    return result


@step()
def compare_with_3lo(session: Session) -> StepResult:
    """What differs from the 3LO path, as a table."""
    result = StepResult("differences", {"rows": DIFFERENCES})
    return result.table(DIFFERENCES, ["", "3LO app (notebooks 02-06)", "service account"])
