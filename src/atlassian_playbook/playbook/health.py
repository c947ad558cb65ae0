"""Notebook 11: refresh and verify in one step, for a batch run that keeps connections alive.

A service account's connection (``ATLASSIAN_GRANT=client_credentials``) is checked the same
way; its "refresh" fetches a new access token with the client credentials.

A healthy connection's webhooks are checked too: one that expires within 7 days is a warning
(the batch report lists it) and, with ``refresh_webhooks``, is refreshed on the spot."""

from __future__ import annotations

from typing import Any

from .. import connection, webhooks
from ..errors import PlaybookError
from ..verify import Check, Warned
from ._results import StepResult, step
from .session import Session, opt
from .verification import failure

__all__ = ["health_check"]

_COLUMNS = ["status", "check", "detail", "hint"]


@step()
def health_check(session: Session, *, account_id: str | None = None,
                 refresh_webhooks: bool = False) -> StepResult:
    """Refresh, verify and record the result for a batch report; fail when unhealthy.

    The table has one row per check, the refresh first; the row that failed carries the whole
    error message and its hint, so the notebook (and the batch report's copy of it) says what
    broke and what fixes it without reading the traceback.
    """
    data: dict[str, Any] = {"account_id": opt(account_id)}
    checks: list[Check] = []
    error: PlaybookError | None = None
    try:
        refreshed = connection.refresh(session.target, account_id=opt(account_id))
    except PlaybookError as caught:
        data.update(refreshed=False, verified=False)
        checks.append(Check("refresh", False, caught.message, caught.hint))
        error = caught
    else:
        renewed = refreshed.to_dict()
        expires_at = renewed["expires_at"]
        data.update(refreshed=True, rotated=refreshed.rotated, expires_at=expires_at,
                    account_id=refreshed.entry.account_id, grant=refreshed.entry.grant)
        if refreshed.entry.is_service_account:  # "refresh" is a new token: nothing rotates
            data["new_access_token"] = renewed["new_access_token"]
            checks.append(Check("refresh", True, f"{renewed['note']}; it expires at "
                                f"{expires_at}"))
        else:
            checks.append(Check("refresh", True, f"rotated: "
                                f"{'yes' if refreshed.rotated else 'no'}; the access token "
                                f"now expires at {expires_at}"))
        error = _verify(session, refreshed.entry.account_id, data, checks)
        if error is None:
            _webhooks(session, refreshed.entry.account_id, data, checks, refresh_webhooks)
    if error is not None:
        data.update(error=error.message, hint=error.hint)
    data["healthy"] = error is None
    result = StepResult("health", data, error=error)
    result.table([{**c.to_dict(), "check": c.name} for c in checks], _COLUMNS)
    if error is None and data.get("grant") == "client_credentials":
        result.say("✔ **Healthy**: a new access token fetched with the service account's "
                   "client credentials (there is no refresh token), saved and verified.")
    elif error is None:
        result.say("✔ **Healthy**: refreshed (the rotated token is saved) and verified.")
    else:
        result.say("✘ **Unhealthy**: the FAILED row says what broke and, in its hint, what "
                   "fixes it.")
    return result


def _verify(session: Session, account_id: str | None, data: dict[str, Any],
            checks: list[Check]) -> PlaybookError | None:
    """Verify the refreshed connection into ``data`` and ``checks``; the error, if unhealthy."""
    try:
        report = connection.verify(session.target, account_id=account_id)
    except PlaybookError as caught:
        data["verified"] = False
        checks.append(Check("verify", False, caught.message, caught.hint))
        return caught
    named = report.to_dict()  # which connection: the batch report keys on it
    data.update(verified=report.ok, account=named["account"], site=named["site"],
                checks={c.name: c.status for c in report.checks})
    checks += report.checks
    return None if report.ok else failure("Unhealthy: ", report.checks)


# What listing and refreshing the app's webhooks need (FACTS.md, "Beyond the 3LO consent flow").
_WEBHOOK_SCOPES = {"read:jira-work", "manage:jira-webhook"}
DUE_DAYS = 7


def _webhooks(session: Session, account_id: str | None, data: dict[str, Any],
              checks: list[Check], refresh: bool) -> None:
    """The connection's webhooks on its site: due within :data:`DUE_DAYS` is a warning (in
    ``data["warnings"]``, which the batch report lists); ``refresh`` refreshes those."""
    try:
        hooks = webhooks.for_target(session.target, account_id=account_id)
    except PlaybookError as caught:
        checks.append(Check("webhooks", None, f"not checked: {caught.message}"))
        return
    if not _WEBHOOK_SCOPES <= set(hooks.site.scopes):
        data["webhooks"] = "no webhook scope"
        checks.append(Check("webhooks", None, f"no webhook scope on {hooks.site.name} "
                            "(manage:jira-webhook): nothing to check"))
        return
    listed = hooks.list()
    due = webhooks.due_within(listed, DUE_DAYS, hooks.now())
    data.update(webhooks=len(listed), webhooks_due=[w.id for w in due])
    if not due:
        checks.append(Check("webhooks", True, f"{len(listed)} webhook(s), none expires within "
                            f"{DUE_DAYS} days"))
        return
    which = ", ".join(f"{w.id} on {w.expires_at:%Y-%m-%d}" for w in due)
    if refresh:
        until = hooks.refresh([w.id for w in due])
        data["webhooks_refreshed"] = [w.id for w in due]
        checks.append(Check("webhooks", True, f"{len(due)} due within {DUE_DAYS} days "
                            f"({which}): refreshed until {until:%Y-%m-%d}"))
        return
    warning = (f"{len(due)} webhook(s) on {hooks.site.name} expire within {DUE_DAYS} days "
               f"({which})")
    data.setdefault("warnings", []).append(warning)
    checks.append(Warned("webhooks", None, warning, "Refresh them: `atlassian-playbook webhooks "
                         "refresh`, or run this check with refresh_webhooks=True; unrefreshed, "
                         "Jira stops delivering them without a word."))
