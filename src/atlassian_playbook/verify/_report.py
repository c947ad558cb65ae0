"""What verification finds: one :class:`Check` per question, and the report that holds them
with the sites and scopes they were judged against."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..api import Site
from ..errors import PlaybookError
from ..redact import redact


@dataclass(frozen=True)
class Check:
    """One line of the report: ``ok`` is True, False, or None when the check was skipped."""

    name: str
    ok: bool | None
    detail: str = ""
    hint: str | None = None

    @property
    def status(self) -> str:
        return {True: "ok", False: "FAILED", None: "skipped"}[self.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "status": self.status,
            "detail": redact(self.detail),
            "hint": redact(self.hint) if self.hint else None,
        }

    def to_text(self) -> str:
        line = f"{self.status:<7} {self.name}  {self.detail}".rstrip()
        if self.ok is False and self.hint:
            line += f"  hint: {self.hint}"
        return redact(line.replace("\n", " "))


class Warned(Check):
    """A finding that fails nothing yet costs the user later (doctor: no ``offline_access``, so
    no refresh token; the health check: a webhook that expires within a week). Neither ok nor
    failed (``ok`` is None, as a skipped check's), but its status is ``warning`` and the summary
    names it: a skipped line is easy to read past."""

    @property
    def status(self) -> str:
        return "warning"


@dataclass
class VerificationReport:
    """What :func:`verify_connection` found. ``ok`` is True when no check failed."""

    sites: list[Site] = field(default_factory=list)
    chosen_site: Site | None = None
    checks: list[Check] = field(default_factory=list)
    scope_table: list[dict[str, Any]] = field(default_factory=list)
    requested_scopes: tuple[str, ...] = ()
    # The token response's scopes: what the grant holds, across sites (no secret).
    token_scopes: tuple[str, ...] = ()
    missing_scopes: tuple[str, ...] = ()
    # /me's answer, the identity the connection acts as (None when read:me is not granted).
    account: dict[str, Any] | None = None
    client_id: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok is not False for check in self.checks)

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe; holds no token (only site ids, scope names and check texts)."""
        site = self.chosen_site
        return {
            "ok": self.ok,
            # Which connection this is, for scripts, the batch report and the token store.
            "client_id": self.client_id,
            "account": (
                {key: self.account.get(key) for key in ("account_id", "name", "email")}
                if self.account
                else None
            ),
            "site": {"cloud_id": site.id, "name": site.name, "url": site.url} if site else None,
            "sites": [site.to_dict() for site in self.sites],
            "chosen_site": self.chosen_site.to_dict() if self.chosen_site else None,
            "requested_scopes": list(self.requested_scopes),
            "missing_scopes": list(self.missing_scopes),
            "checks": [check.to_dict() for check in self.checks],
            "scope_table": [dict(row) for row in self.scope_table],
        }

    def to_text(self) -> str:
        """One line per check, then the verdict: what the CLI prints."""
        width = max((len(c.status) for c in self.checks), default=2)
        lines = []
        if self.account or self.chosen_site:
            who = self.account or {}
            name = who.get("name") or "account"
            email = f" <{who['email']}>" if who.get("email") else ""
            account = (
                f"{name}{email} ({who.get('account_id') or 'id unknown'})"
                if who
                else "an unknown account (read:me not granted)"
            )
            site = self.chosen_site
            where = f" on {site.name} ({site.url})" if site else ""
            lines.append(redact(f"Connection: {account}{where}"))
        for check in self.checks:
            line = f"{check.status:<{width}}  {check.name}  {check.detail}".rstrip()
            if check.ok is False and check.hint:
                line += f"  hint: {check.hint}"
            lines.append(redact(line.replace("\n", " ")))
        failed = sum(1 for c in self.checks if c.ok is False)
        lines.append("verified" if self.ok else f"{failed} check(s) FAILED")
        return "\n".join(lines)


def failed_check(name: str, error: PlaybookError) -> Check:
    return Check(name, False, redact(error.message), redact(error.hint))


def failure_of(prefix: str, checks: Iterable[Check]) -> PlaybookError:
    """One error naming every failed check, with the first one's hint (what a notebook step
    or the health check raises when verification found a problem)."""
    failed = [c for c in checks if c.ok is False]
    return PlaybookError(
        prefix + "; ".join(f"{c.name}: {c.detail}" for c in failed), failed[0].hint
    )
