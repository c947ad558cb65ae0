"""``verify_connection()``: the checks shared by ``atlassian-playbook verify`` and the notebook.

Each check answers one question a person setting up 3LO asks ("which sites did I get?", "did
the scopes I asked for arrive on *this* site?", "does /me work?") and never raises: a failure
becomes a failed :class:`Check` carrying the error's message and hint, and a check that cannot
run (a scope not requested, no site chosen) is *skipped* with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import scopes
from .api import ApiClient, Site, choose_site
from .errors import PlaybookError
from .redact import redact

__all__ = ["Check", "VerificationReport", "verify_connection", "ACCOUNT_LEVEL_SCOPES"]

# Scopes that belong to the grant, not to a site: accessible-resources does not list them, the
# token response does. offline_access shows up as a refresh token rather than a site scope.
ACCOUNT_LEVEL_SCOPES = frozenset(
    {"read:me", "read:account", "offline_access", "report:personal-data"}
)

SCOPES_HINT = (
    "Add the missing scopes on the console's Permissions tab, request them in ATLASSIAN_SCOPES "
    "and log in again, choosing this site on the consent screen (scopes granted on one site do "
    "not carry to another; scope changes need a new consent)."
)
OFFLINE_HINT = (
    "No refresh token came back: put offline_access in ATLASSIAN_SCOPES (it goes in the "
    "authorization URL, not on the Permissions tab) and log in again."
)


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


@dataclass
class VerificationReport:
    """What :func:`verify_connection` found. ``ok`` is True when no check failed."""

    sites: list[Site] = field(default_factory=list)
    chosen_site: Site | None = None
    checks: list[Check] = field(default_factory=list)
    scope_table: list[dict[str, Any]] = field(default_factory=list)
    requested_scopes: tuple[str, ...] = ()
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
            "account": ({key: self.account.get(key) for key in ("account_id", "name", "email")}
                        if self.account else None),
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
            account = f"{name}{email} ({who.get('account_id') or 'id unknown'})" if who else \
                "an unknown account (read:me not granted)"
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


def _failed(name: str, error: PlaybookError) -> Check:
    return Check(name, False, redact(error.message), redact(error.hint))


def _required(method: str, path: str) -> list[tuple[str, ...]]:
    """Scope alternatives for an endpoint from the catalog (``[]`` when it does not know)."""
    try:
        return [tuple(alt) for alt in scopes.required_scopes(method, path)]
    except PlaybookError:
        return []


def _satisfied(granted: Sequence[str], method: str, path: str) -> bool:
    """Whether ``granted`` covers the endpoint; an endpoint unknown to the catalog is tried."""
    try:
        return scopes.is_satisfied(tuple(granted), method, path)
    except PlaybookError:
        return True


def _needs(method: str, path: str) -> str:
    alternatives = [alt for alt in _required(method, path) if alt]
    if not alternatives:
        return "its scope"
    return " or ".join(" + ".join(alt) for alt in alternatives)


def _site_column(site: Site, sites: Sequence[Site]) -> str:
    label = site.name or site.url or site.id
    if sum(1 for s in sites if (s.name or s.url or s.id) == label) > 1:
        label = f"{label} [{site.id[:8]}]"
    return f"granted on {label}"


def _short_id(value: Any) -> str:
    text = str(value or "")
    return f"{text[:4]}..." if len(text) > 8 else text


def _guard(name: str, run: Callable[[], Check]) -> Check:
    try:
        return run()
    except PlaybookError as error:
        return _failed(name, error)


def consent_check(configured: Sequence[str], consented: Sequence[str]) -> Check:
    """Scopes in the settings that the stored consent never included need a new consent
    (FACTS.md: changing scopes later requires users to consent again)."""
    pending = [s for s in configured if s not in consented]
    if pending:
        return Check(
            "settings vs consent",
            False,
            f"ATLASSIAN_SCOPES asks for {' '.join(pending)}, which the stored connection was "
            "never consented to",
            "Scope changes need a new consent: run `atlassian-playbook login` (or notebook 04) "
            "again, then verify.",
        )
    return Check("settings vs consent", True, "every scope in ATLASSIAN_SCOPES was consented to")


def verify_connection(
    api: ApiClient,
    *,
    requested_scopes: Sequence[str],
    site: str | None = None,
    has_refresh_token: bool | None = None,
) -> VerificationReport:
    """Run the checks against the connection ``api`` holds; never raises a PlaybookError.

    ``site`` picks the site (cloud id, name or URL); ``None`` falls back to
    ``api.settings.site``, then to the only site. ``has_refresh_token`` says whether the grant
    came with a refresh token (``offline_access``); ``None`` asks the token source.
    """
    requested = tuple(dict.fromkeys(requested_scopes))
    report = VerificationReport(requested_scopes=requested)
    checks = report.checks
    wanted = site if site is not None else getattr(api.settings, "site", None)

    token_scopes: tuple[str, ...] = ()
    try:
        token = api.tokens.get()
        token_scopes = tuple(token.scopes or ())
        if has_refresh_token is None:
            has_refresh_token = getattr(token, "refresh_token", None) is not None
    except PlaybookError as error:
        checks.append(_failed("token", error))
        return report

    # 1. accessible resources
    try:
        report.sites = api.accessible_resources()
    except PlaybookError as error:
        checks.append(_failed("accessible resources", error))
        for name in ("site chosen", "scopes", "/me", "Jira myself", "Confluence spaces"):
            checks.append(Check(name, None, "needs accessible resources"))
        return report
    sites = report.sites
    if sites:
        checks.append(
            Check(
                "accessible resources",
                True,
                f"{len(sites)} site(s): " + "; ".join(s.label for s in sites),
            )
        )
    elif set(requested) <= ACCOUNT_LEVEL_SCOPES:
        # An identity-only grant (a sign-in provider's: read:me, offline_access) reaches no site,
        # and Atlassian lists none for it: expected, not a failure.
        checks.append(
            Check(
                "accessible resources",
                None,
                "no site scopes requested (identity only, e.g. a sign-in provider): Atlassian "
                "lists no site for such a grant",
            )
        )
    else:
        checks.append(
            Check(
                "accessible resources",
                False,
                "the token reaches no site",
                "The user must have access to at least one Jira or Confluence site: log in "
                "again and choose a site on the consent screen.",
            )
        )

    # 2. site chosen
    if sites:
        try:
            report.chosen_site = choose_site(sites, wanted)
            how = "the site asked for" if wanted else "the only site granted"
            checks.append(Check("site chosen", True, f"{report.chosen_site.label} ({how})"))
        except PlaybookError as error:
            checks.append(_failed("site chosen", error))
    else:
        checks.append(Check("site chosen", None, "no site to choose"))
    chosen = report.chosen_site

    # 3. scopes: requested vs granted, per site
    checks.append(_scope_check(report, requested, token_scopes, has_refresh_token, sites, chosen))

    # 4. /me
    if "read:me" in requested or "read:me" in token_scopes:
        checks.append(_guard("/me", lambda: _me_check(api, report)))
    else:
        checks.append(
            Check("/me", None, "read:me not requested; add it to ATLASSIAN_SCOPES to check /me")
        )

    # 5. Jira myself
    checks.append(_guard("Jira myself", lambda: _jira_check(api, chosen)))

    # 6. Confluence spaces
    checks.append(_guard("Confluence spaces", lambda: _confluence_check(api, chosen)))
    return report


def _scope_check(
    report: VerificationReport,
    requested: tuple[str, ...],
    token_scopes: tuple[str, ...],
    has_refresh_token: bool | None,
    sites: Sequence[Site],
    chosen: Site | None,
) -> Check:
    columns = [(site, _site_column(site, sites)) for site in sites]
    site_scopes = [s for site in sites for s in site.scopes]
    every = list(dict.fromkeys([*requested, *site_scopes, *token_scopes]))
    judged = [chosen] if chosen else list(sites)

    missing: list[str] = []
    elsewhere: list[str] = []
    rows: list[dict[str, Any]] = []
    for scope in every:
        row: dict[str, Any] = {"scope": scope, "requested": scope in requested}
        if scope == "offline_access":
            granted = has_refresh_token
            row["granted (token)"] = granted
            for _, column in columns:
                row[column] = None
            row["note"] = (
                "not a site scope: a refresh token was issued"
                if granted
                else "not a site scope: no refresh token was issued"
                if granted is False
                else "not a site scope: unknown whether a refresh token was issued"
            )
            if scope in requested and granted is False:
                missing.append(scope)
        elif scope in ACCOUNT_LEVEL_SCOPES:
            granted = scope in token_scopes
            row["granted (token)"] = granted
            for _, column in columns:
                row[column] = None
            row["note"] = "granted to the app for the user, not per site"
            if scope in requested and not granted:
                missing.append(scope)
        else:
            row["granted (token)"] = None  # a site scope: the sites' columns say
            for site, column in columns:
                row[column] = scope in site.scopes
            lacking = [site for site in judged if scope not in site.scopes]
            if scope in requested and (lacking or not judged):
                missing.append(scope)
                having = [site for site in sites if scope in site.scopes]
                if having:
                    elsewhere.append(
                        f"{scope} is granted on {', '.join(s.name or s.id for s in having)} "
                        f"but not on {', '.join(s.name or s.id for s in lacking)}"
                    )
                row["note"] = "MISSING"
            else:
                row["note"] = ""
        rows.append(row)
    report.scope_table = rows
    report.missing_scopes = tuple(missing)

    where = f"on {chosen.name or chosen.id}" if chosen else "on every site"
    if not missing:
        granted_here = {s for site in judged for s in site.scopes}
        granted_here |= {s for s in token_scopes if s in ACCOUNT_LEVEL_SCOPES}
        extra = [s for s in every if s not in requested and s in granted_here]
        detail = f"all {len(requested)} requested scope(s) granted {where}"
        if extra:
            detail += f" (also granted: {' '.join(extra)})"
        return Check("scopes", True, detail)
    detail = f"requested but not granted {where}: {' '.join(missing)}"
    if elsewhere:
        detail += " (" + "; ".join(elsewhere) + ")"
    hints = []
    if [s for s in missing if s != "offline_access"]:
        hints.append(SCOPES_HINT)
    if "offline_access" in missing:
        hints.append(OFFLINE_HINT)
    return Check("scopes", False, detail, " ".join(hints))


def _me_check(api: ApiClient, report: VerificationReport) -> Check:
    me = api.me()
    report.account = dict(me)
    name = me.get("name") or me.get("nickname") or "(no name)"
    return Check("/me", True, f"{name} ({_short_id(me.get('account_id'))})")


def _jira_check(api: ApiClient, site: Site | None) -> Check:
    name = "Jira myself"
    if site is None:
        return Check(name, None, "no site chosen")
    path = f"/ex/jira/{site.id}/rest/api/3/myself"
    if not _satisfied(site.scopes, "GET", path):
        return Check(
            name,
            None,
            f"needs {_needs('GET', path)}, not granted on {site.name or site.id}",
        )
    me = api.jira_myself(site.id)
    who = me.get("displayName") or me.get("name") or "(no name)"
    return Check(name, True, f"{who} ({_short_id(me.get('accountId'))}) on {site.name}")


def _confluence_check(api: ApiClient, site: Site | None) -> Check:
    name = "Confluence spaces"
    if site is None:
        return Check(name, None, "no site chosen")
    path = api.confluence_spaces_path(site.id, site.scopes)
    if not _satisfied(site.scopes, "GET", path):
        v1 = f"/ex/confluence/{site.id}/wiki/rest/api/space"
        v2 = f"/ex/confluence/{site.id}/wiki/api/v2/spaces"
        return Check(
            name,
            None,
            f"needs {_needs('GET', v1)} (v1) or {_needs('GET', v2)} (v2), not granted on "
            f"{site.name or site.id}",
        )
    body = api.confluence_spaces(site.id, scopes=site.scopes)
    results = body.get("results") if isinstance(body, dict) else None
    results = results if isinstance(results, list) else []
    api_version = "v2" if path.endswith("/api/v2/spaces") else "v1"
    keys = ", ".join(str(r.get("key") or r.get("name") or "?") for r in results[:5])
    detail = f"{len(results)} space(s) via {api_version}" + (f": {keys}" if keys else "")
    return Check(name, True, detail)
