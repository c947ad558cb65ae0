"""Notebook 11: refresh and verify in one step, for a batch run that keeps connections alive.

The check itself is :func:`atlassian_playbook.health.check_health`, which
``atlassian-playbook health`` also runs in process over a fleet; this step shows what it
found as a table, records its ``data`` and raises when the connection is unhealthy, so the
failing cell holds the whole error and its hint. A service account's connection
(``ATLASSIAN_GRANT=client_credentials``) is checked the same way; its "refresh" fetches a new
access token with the client credentials.

A healthy connection's webhooks are checked too: one that expires within 7 days is a warning
(the batch report lists it) and, with ``refresh_webhooks``, is refreshed on the spot."""

from __future__ import annotations

from ..health import check_health
from ._results import StepResult, step
from .session import Session, opt

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
    report = check_health(session.target, account_id=opt(account_id),
                          refresh_webhooks=refresh_webhooks)
    result = StepResult("health", report.data, error=report.error)
    result.table([{**c.to_dict(), "check": c.name} for c in report.checks], _COLUMNS)
    if report.healthy and report.data.get("grant") == "client_credentials":
        result.say("✔ **Healthy**: a new access token fetched with the service account's "
                   "client credentials (there is no refresh token), saved and verified.")
    elif report.healthy:
        result.say("✔ **Healthy**: refreshed (the rotated token is saved) and verified.")
    else:
        result.say("✘ **Unhealthy**: the FAILED row says what broke and, in its hint, what "
                   "fixes it.")
    return result
