"""The health check of one stored connection: refresh, verify, and the webhooks due.

Two callers take this same path: notebook 11's step (:func:`~.playbook.health_check`, which
shows the checks as a table and records ``data``) and ``atlassian-playbook health``, which
runs it in process, in threads, over a fleet of connections (:mod:`.batch.in_process`) and
runs notebook 11 only where it failed. So a connection is judged by one piece of code, whether
a kernel runs it or not, and ``data`` is the record the batch report reads either way.

Refreshing first keeps the refresh token from dying of inactivity (90 days idle, FACTS.md)
and saves the rotated one; a service account's connection (``ATLASSIAN_GRANT=
client_credentials``) gets a new access token fetched with its client credentials instead.
A healthy connection's webhooks are checked too: one that expires within :data:`DUE_DAYS` is
a warning (``data["warnings"]``, which the batch report lists) and, with ``refresh_webhooks``,
is refreshed on the spot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import connection, webhooks
from .errors import PlaybookError
from .sites import Site
from .target import Target
from .verify import Check, Warned, failure_of

__all__ = ["HealthReport", "check_health", "DUE_DAYS"]

DUE_DAYS = 7


@dataclass
class HealthReport:
    """What :func:`check_health` found: ``data`` is the record (JSON-able, no secret),
    ``checks`` one line per check (the refresh first), ``error`` set when unhealthy: the
    failed check's whole message and its hint, so whoever reads it knows what fixes it."""

    data: dict[str, Any]
    checks: list[Check] = field(default_factory=list)
    error: PlaybookError | None = None

    @property
    def healthy(self) -> bool:
        return self.error is None


def check_health(target: Target, *, account_id: str | None = None,
                 refresh_webhooks: bool = False) -> HealthReport:
    """Refresh, verify and check the webhooks of ``account_id``'s connection (``None``: the
    client's only one). Never raises a :class:`PlaybookError` for an unhealthy connection:
    it is the report's ``error``."""
    data: dict[str, Any] = {"account_id": account_id}
    report = HealthReport(data)
    checks = report.checks
    try:
        refreshed = connection.refresh(target, account_id=account_id)
    except PlaybookError as caught:
        data.update(refreshed=False, verified=False)
        checks.append(Check("refresh", False, caught.message, caught.hint))
        report.error = caught
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
        report.error, site = _verify(target, refreshed.entry.account_id, data, checks)
        if report.error is None:
            _webhooks(target, refreshed.entry.account_id, site, data, checks, refresh_webhooks)
    if report.error is not None:
        data.update(error=report.error.message, hint=report.error.hint)
    data["healthy"] = report.error is None
    return report


def _verify(target: Target, account_id: str | None, data: dict[str, Any],
            checks: list[Check]) -> tuple[PlaybookError | None, Site | None]:
    """Verify the refreshed connection into ``data`` and ``checks``; the error, if unhealthy,
    and the site verify chose (the webhooks' site: the same rule picks it)."""
    try:
        report = connection.verify(target, account_id=account_id)
    except PlaybookError as caught:
        data["verified"] = False
        checks.append(Check("verify", False, caught.message, caught.hint))
        return caught, None
    named = report.to_dict()  # which connection: the batch report keys on it
    data.update(verified=report.ok, account=named["account"], site=named["site"],
                checks={c.name: c.status for c in report.checks})
    checks += report.checks
    return (None if report.ok else failure_of("Unhealthy: ", report.checks)), report.chosen_site


def _webhooks(target: Target, account_id: str | None, site: Site | None,
              data: dict[str, Any], checks: list[Check], refresh: bool) -> None:
    """The connection's webhooks on ``site`` (verify's choice; ``None``: chosen again, which
    says why none can be): due within :data:`DUE_DAYS` is a warning (in ``data["warnings"]``,
    which the batch report lists); ``refresh`` refreshes those where the scopes allow it. The
    scope rule is the webhook API's own (:meth:`~.webhooks.SiteWebhooks.allows`): without
    those scopes nothing is sent, so a fleet's check pays for no call it cannot use."""
    if site is None:
        try:
            site = webhooks.for_target(target, account_id=account_id).site
        except PlaybookError as caught:
            checks.append(Check("webhooks", None, f"not checked: {caught.message}"))
            return
    hooks = webhooks.SiteWebhooks(target.api_client(account_id=account_id), site)
    if not hooks.allows("GET"):
        data["webhooks"] = "no webhook scope"
        checks.append(Check("webhooks", None, f"no webhook scope on {site.name} "
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
    if refresh and hooks.allows("PUT", "/refresh"):
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
