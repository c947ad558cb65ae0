"""Notebook 09: refresh and verify in one step, for a batch run that keeps connections alive."""

from __future__ import annotations

from typing import Any

from .. import connection
from ..errors import PlaybookError
from ._results import StepResult, step
from .session import Session, opt
from .verification import failure

__all__ = ["health_check"]


@step()
def health_check(session: Session, *, account_id: str | None = None) -> StepResult:
    """Refresh, verify and record the result for a batch report; fail when unhealthy."""
    data: dict[str, Any] = {"account_id": opt(account_id)}
    error: PlaybookError | None = None
    try:
        refreshed = connection.refresh(session.target, account_id=opt(account_id))
        data.update(
            refreshed=True,
            rotated=refreshed.rotated,
            expires_at=refreshed.to_dict()["expires_at"],
            account_id=refreshed.entry.account_id,
        )
        report = connection.verify(session.target, account_id=refreshed.entry.account_id)
        named = report.to_dict()  # which connection: the batch report keys on it
        data.update(verified=report.ok, account=named["account"], site=named["site"],
                    checks={c.name: c.status for c in report.checks})
        if not report.ok:
            error = failure("Unhealthy: ", report.checks)
    except PlaybookError as caught:
        data.update(refreshed=data.get("refreshed", False), verified=False)
        error = caught
    if error is not None:
        data.update(error=error.message, hint=error.hint)
    data["healthy"] = error is None
    result = StepResult("health", data, error=error)
    result.table([{"item": k, "value": v} for k, v in data.items()], ["item", "value"])
    if error is None:
        result.say("✔ **Healthy**: refreshed (the rotated token is saved) and verified.")
    return result
