"""Notebook 11: refresh and verify in one step, for a batch run that keeps connections alive.

A service account's connection (``ATLASSIAN_GRANT=client_credentials``) is checked the same
way; its "refresh" fetches a new access token with the client credentials."""

from __future__ import annotations

from typing import Any

from .. import connection
from ..errors import PlaybookError
from ..verify import Check
from ._results import StepResult, step
from .session import Session, opt
from .verification import failure

__all__ = ["health_check"]

_COLUMNS = ["status", "check", "detail", "hint"]


@step()
def health_check(session: Session, *, account_id: str | None = None) -> StepResult:
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
