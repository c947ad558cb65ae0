"""Notebook 05: what the stored connection reaches, checked call by call."""

from __future__ import annotations

from collections.abc import Iterable

from .. import connection
from ..advisor import split_endpoints
from ..verify import check_calls, failure_of
from ._results import StepResult, step
from .session import Session, opt

__all__ = ["verify_access"]


@step()
def verify_access(
    session: Session,
    *,
    account_id: str | None = None,
    calls: str | Iterable[str] | None = None,
    fail_on_error: bool = True,
) -> StepResult:
    """Sites with their cloud ids, requested vs granted scopes per site, /me, a Jira and a
    Confluence call: each ok, failed (with the hint) or skipped (with the reason).

    ``calls`` (one per line or ``;``-separated, ``"GET /rest/api/3/issue/ACME-1"``) adds a
    check per call the integration makes (:func:`..verify.check_calls`): a refused one says
    which scope it needed, what the site has, and where it is granted.

    Fails when a check failed (unless ``fail_on_error=False``), so a headless run stops here
    with the hint in this cell's output.
    """
    report = connection.verify(session.target, account_id=opt(account_id))
    listed = split_endpoints(calls) if isinstance(calls, str) else list(calls or ())
    if listed:
        with session.target.api_client(account_id=opt(account_id)) as api:
            check_calls(api, report, listed)
    # connection.verify names the stored entry's account even without read:me
    account = (report.account or {}).get("account_id")
    result = StepResult("verify", {**report.to_dict(), "account_id": account})
    result.say("### Sites this connection reaches").table(
        [
            {
                "site": s.name,
                "url": s.url,
                "cloud id": s.id,
                "products": s.products,
                "chosen": report.chosen_site is not None and s.id == report.chosen_site.id,
            }
            for s in report.sites
        ],
        ["site", "url", "cloud id", "products", "chosen"],
    )
    result.say("### Requested vs granted scopes per site").table(report.scope_table)
    result.say("### Checks").table(
        [c.to_dict() for c in report.checks], ["status", "name", "detail", "hint"]
    )
    if fail_on_error and not report.ok:
        result.error = failure_of("Verification failed: ", report.checks)
    elif report.ok:
        result.say("✔ **Verified**: every check passed or was skipped for a reason shown above.")
    return result
