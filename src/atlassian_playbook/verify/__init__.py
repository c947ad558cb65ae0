"""``verify_connection()``: the checks shared by ``atlassian-playbook verify`` and the notebook.

Each check answers one question a person setting up 3LO asks ("which sites did I get?", "did
the scopes I asked for arrive on *this* site?", "does /me work?") and never raises: a failure
becomes a failed :class:`Check` carrying the error's message and hint, and a check that cannot
run (a scope not requested, no site chosen) is *skipped* with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .. import scopes
from ..api import ApiClient, Site, choose_site
from ..errors import PlaybookError, ScopeNotGranted
from ._mismatch import ScopeMismatch, check_calls, explain_scope_mismatch
from ._report import Check, VerificationReport, Warned, failed_check, failure_of

__all__ = [
    "Check",
    "VerificationReport",
    "Warned",
    "failure_of",
    "verify_connection",
    "ScopeMismatch",
    "explain_scope_mismatch",
    "check_calls",
    "ACCOUNT_LEVEL_SCOPES",
]

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
        return failed_check(name, error)


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
        report.token_scopes = token_scopes
        if has_refresh_token is None:
            has_refresh_token = getattr(token, "refresh_token", None) is not None
    except PlaybookError as error:
        checks.append(failed_check("token", error))
        return report

    # 1. accessible resources
    try:
        report.sites = api.accessible_resources()
    except PlaybookError as error:
        checks.append(failed_check("accessible resources", error))
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
        # An identity-only grant (a sign-in provider's: read:me, offline_access) needs no site.
        # No source says what Atlassian lists for it (a sign-in provider's guide says the user
        # authorizes one site), so an empty list is not a failure, and the text claims nothing.
        checks.append(
            Check(
                "accessible resources",
                None,
                "no site listed, and none needed: only identity scopes were requested (e.g. a "
                "sign-in provider). Whether Atlassian lists the site chosen at consent for such "
                "a grant is not documented",
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
            checks.append(failed_check("site chosen", error))
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
    checks.append(_guard("Jira myself", lambda: _jira_check(api, chosen, report)))

    # 6. Confluence spaces
    checks.append(_guard("Confluence spaces", lambda: _confluence_check(api, chosen, report)))
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

    where = (
        f"on {chosen.name or chosen.id}"
        if chosen
        else "on every site"
        if sites
        else "to the app for the user (no site listed)"
    )
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


def _jira_check(api: ApiClient, site: Site | None, report: VerificationReport) -> Check:
    name = "Jira myself"
    if site is None:
        return Check(name, None, "no site chosen")
    path = f"/ex/jira/{site.id}/rest/api/3/myself"
    if not _satisfied(site.scopes, "GET", path):
        mismatch = explain_scope_mismatch("GET", path, report)
        if mismatch.cause == "product-not-on-site":
            return Check(name, None, mismatch.message)
        return Check(
            name,
            None,
            f"needs {_needs('GET', path)}, not granted on {site.name or site.id}",
        )
    try:
        me = api.jira_myself(site.id)
    except ScopeNotGranted:
        return explain_scope_mismatch("GET", path, report).check(name)
    who = me.get("displayName") or me.get("name") or "(no name)"
    return Check(name, True, f"{who} ({_short_id(me.get('accountId'))}) on {site.name}")


def _confluence_check(api: ApiClient, site: Site | None, report: VerificationReport) -> Check:
    name = "Confluence spaces"
    if site is None:
        return Check(name, None, "no site chosen")
    path = api.confluence_spaces_path(site.id, site.scopes)
    if not _satisfied(site.scopes, "GET", path):
        mismatch = explain_scope_mismatch("GET", path, report)
        if mismatch.cause == "product-not-on-site":
            return Check(name, None, mismatch.message)
        v1 = f"/ex/confluence/{site.id}/wiki/rest/api/space"
        v2 = f"/ex/confluence/{site.id}/wiki/api/v2/spaces"
        return Check(
            name,
            None,
            f"needs {_needs('GET', v1)} (v1) or {_needs('GET', v2)} (v2), not granted on "
            f"{site.name or site.id}",
        )
    try:
        body = api.confluence_spaces(site.id, scopes=site.scopes)
    except ScopeNotGranted:
        return explain_scope_mismatch("GET", path, report).check(name)
    results = body.get("results") if isinstance(body, dict) else None
    results = results if isinstance(results, list) else []
    api_version = "v2" if path.endswith("/api/v2/spaces") else "v1"
    keys = ", ".join(str(r.get("key") or r.get("name") or "?") for r in results[:5])
    detail = f"{len(results)} space(s) via {api_version}" + (f": {keys}" if keys else "")
    return Check(name, True, detail)
