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
from urllib.parse import urlsplit

from . import advisor, scopes
from .api import ApiClient, Site, choose_site
from .errors import ApiError, PlaybookError, ScopeNotGranted
from .redact import redact

__all__ = [
    "Check",
    "VerificationReport",
    "verify_connection",
    "ACCOUNT_LEVEL_SCOPES",
    "ScopeMismatch",
    "explain_scope_mismatch",
    "check_calls",
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
        report.token_scopes = token_scopes
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

    where = (f"on {chosen.name or chosen.id}" if chosen else "on every site" if sites
             else "to the app for the user (no site listed)")
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


# --- "scope does not match", explained --------------------------------------------------------

_PRODUCT_NAMES = {"jira": "Jira", "confluence": "Confluence"}


@dataclass(frozen=True)
class ScopeMismatch:
    """Why a call answered (or would answer) 401 "scope does not match" on the chosen site.

    ``cause`` is stable: ``product-not-on-site`` (the site has no such product: no scope fixes
    it, another site does), ``granted-on-another-site`` (``elsewhere`` names the sites whose
    scopes cover the call), ``not-granted`` (no site has them: the Permissions tab and a new
    consent), ``granted-here`` (accessible-resources says the site has them: the grant changed
    since), ``no-documented-scope`` or ``unknown-endpoint`` (the catalog cannot say).
    ``needed`` are the call's alternatives (:func:`.scopes.required_scopes`), ``granted`` what
    the chosen site (or, for identity calls, the token) has.
    """

    endpoint: str
    cause: str
    needed: tuple[tuple[str, ...], ...]
    granted: tuple[str, ...]
    elsewhere: tuple[str, ...]
    message: str
    hint: str

    def check(self, name: str) -> Check:
        return Check(name, False, self.message, self.hint)

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "cause": self.cause,
            "needed": [list(alt) for alt in self.needed],
            "granted": list(self.granted),
            "elsewhere": list(self.elsewhere),
            "message": self.message,
            "hint": self.hint,
        }


def _product_of_path(path: str, operation: scopes.Operation | None) -> str | None:
    path = urlsplit(path).path if "://" in path else path
    if path.startswith("/ex/confluence/") or path.startswith("/wiki/"):
        return "confluence"
    if path.startswith("/ex/jira/") or path.startswith("/rest/"):
        return "jira"
    return operation.product if operation else None


def explain_scope_mismatch(method: str, path: str, report: VerificationReport) -> ScopeMismatch:
    """Why ``METHOD path`` is refused with the connection :func:`verify_connection` found.

    Uses the report's sites (accessible-resources lists scopes per site, and one entry per
    product per site), its chosen site and the token's scopes (``report.token_scopes``).
    """
    endpoint = f"{method.upper()} {path}"
    operation = scopes.find_operation(method, path)
    site, sites = report.chosen_site, report.sites
    product = _product_of_path(path, operation)
    label = (site.name or site.id) if site else "the chosen site"

    def result(cause: str, message: str, hint: str, needed=(), granted=(), elsewhere=()):
        return ScopeMismatch(endpoint, cause, tuple(needed), tuple(granted), tuple(elsewhere),
                             message, hint)

    if operation is None:
        error = scopes.unknown_operation_error(method, path)
        return result("unknown-endpoint", f"{endpoint} was refused; {error.message}", error.hint)
    needed = [alt.scopes for alt in operation.alternatives]
    if not needed:
        return result(
            "no-documented-scope",
            f"{endpoint} was refused: Atlassian's spec names no scope for it",
            "No scope can be ticked for this operation: 3LO apps often cannot call it. Check "
            "Atlassian's REST documentation for another way.",
        )
    needs = " or ".join(" + ".join(alt) for alt in needed if alt)
    product_name = _PRODUCT_NAMES.get(product or "")
    if product_name and site is not None:
        granted = site.scopes
        product_scopes = {s.name for s in scopes.list_scopes(api=product)}
        if product == "jira":
            product_scopes |= {s.name for s in scopes.list_scopes(api="jsm")}
        # accessible-resources lists a site once per product with granted scopes: a product
        # whose scopes the token has but this site does not list is not on this site.
        consented = set(report.token_scopes) | set(report.requested_scopes)
        if product not in site.products and consented & product_scopes:
            having = [s.name or s.id for s in sites if product in s.products]
            fix = (f"Choose a site that has {product_name}: ATLASSIAN_SITE={having[0]}"
                   f"{' (or ' + ', '.join(having[1:]) + ')' if having[1:] else ''}; no scope "
                   "fixes this." if having else
                   f"None of the sites this connection reaches has {product_name}: log in "
                   f"again and choose a site with {product_name} on the consent screen.")
            return result(
                "product-not-on-site",
                f"this site has no {product_name}: {label} lists no {product_name} in "
                f"accessible-resources, so {endpoint} cannot work there"
                + (f" ({product_name} is on {', '.join(having)})" if having else ""),
                fix, needed, granted, having,
            )
    elif product_name:
        granted = ()
    else:  # identity and platform calls: the grant's scopes, not a site's
        granted = tuple(report.token_scopes)
        if any(set(alt) <= set(granted) for alt in needed):
            return result("granted-here", f"{endpoint} was refused though the token has {needs}",
                          "The grant changed after this token was issued: log in again.",
                          needed, granted)
        smallest = advisor.advise([endpoint]).classic
        return result(
            "not-granted",
            f"{endpoint} needs {needs}, which the token was not granted",
            f"Add {' '.join(smallest.scopes)} on the console's Permissions tab "
            f"({', '.join(smallest.console_apis)}), put it in ATLASSIAN_SCOPES and log in "
            "again: scope changes need a new consent.",
            needed, granted,
        )
    if site is not None and any(set(alt) <= set(granted) for alt in needed):
        return result(
            "granted-here",
            f"{endpoint} was refused though accessible-resources lists {needs} on {label}",
            "The grant changed after this token was issued (a scope removed, the app removed "
            "from the site): log in again, choosing this site.",
            needed, granted,
        )
    elsewhere = [s.name or s.id for s in sites
                 if s is not site and any(set(alt) <= set(s.scopes) for alt in needed)]
    if elsewhere:
        return result(
            "granted-on-another-site",
            f"{endpoint} needs {needs}: granted on {', '.join(elsewhere)} but not on {label}",
            f"Scopes are granted per site. Use {elsewhere[0]} (ATLASSIAN_SITE={elsewhere[0]}), "
            f"or log in again and choose {label} on the consent screen, requesting these "
            "scopes: consenting for a site adds it to the same grant.",
            needed, granted, elsewhere,
        )
    advice = advisor.advise([endpoint])
    sets = " or ".join(
        f"{' '.join(s.scopes)} ({s.kind}, {', '.join(s.console_apis)})"
        for s in advice.sets if s.scopes
    )
    return result(
        "not-granted",
        f"{endpoint} needs {needs}, granted on no site this connection reaches"
        + (f" ({label} has: {' '.join(granted)})" if granted else ""),
        f"Tick {sets} on the console's Permissions tab, put the scopes in ATLASSIAN_SCOPES and "
        f"log in again choosing {label}: scope changes need a new consent.",
        needed, granted,
    )


def _gateway_path(endpoint: advisor.Endpoint, site: Site) -> str:
    path = urlsplit(endpoint.path).path if "://" in endpoint.path else endpoint.path
    query = urlsplit(endpoint.path).query if "://" in endpoint.path else ""
    if path.startswith("/ex/"):
        # The user's own cloud id may be another site's: send it to the chosen one.
        _, _, product, _, rest = (path.split("/", 4) + [""])[:5]
        path = f"/ex/{product}/{site.id}/{rest}"
    elif path.startswith("/wiki/"):
        path = f"/ex/confluence/{site.id}{path}"
    elif path.startswith("/rest/"):
        path = f"/ex/jira/{site.id}{path}"
    return path + (f"?{query}" if query else "")


def check_calls(
    api: ApiClient, report: VerificationReport, calls: Sequence[str]
) -> list[Check]:
    """Check the calls an integration makes (``"METHOD path"``, as :func:`.advisor.advise`
    reads them) against the connection in ``report``; the checks are appended to it.

    A GET with real ids (no ``{placeholder}``) is sent to the chosen site through the gateway;
    anything else is judged from the site's scopes, never sent (verify writes nothing). A call
    refused with "scope does not match", or whose scopes the site lacks, fails with
    :func:`explain_scope_mismatch`'s cause and fix. Raises :class:`PlaybookError` for a
    malformed call (no method, an unknown method).
    """
    endpoints = [advisor.parse_endpoint(text) for text in calls if text.strip()]
    site = report.chosen_site
    added: list[Check] = []
    for endpoint in endpoints:
        name = f"call {endpoint.text}"
        path = _gateway_path(endpoint, site) if site else endpoint.path
        sendable = endpoint.method == "GET" and "{" not in endpoint.path
        try:
            alternatives = scopes.required_scopes(endpoint.method, path)
        except PlaybookError as error:
            added.append(Check(name, None, f"not in the scope catalog: {error.message}"))
            continue
        if sendable and (site is not None or not path.startswith("/ex/")):
            try:
                api.get_json(path)
                where = site.name if site else "the gateway"
                added.append(Check(name, True, f"answered on {where}"))
            except ScopeNotGranted:
                added.append(explain_scope_mismatch(endpoint.method, path, report).check(name))
            except ApiError as error:
                mismatch = explain_scope_mismatch(endpoint.method, path, report)
                added.append(mismatch.check(name) if mismatch.cause == "product-not-on-site"
                             else _failed(name, error))
            continue
        granted = site.scopes if site and path.startswith("/ex/") else report.token_scopes
        if any(set(alt) <= set(granted) for alt in alternatives):
            added.append(Check(name, None, "not sent (verify sends only GETs with real ids); "
                               "its scopes are granted"
                               + (f" on {site.name}" if site else "")))
        else:
            added.append(explain_scope_mismatch(endpoint.method, path, report).check(name))
    report.checks.extend(added)
    return added
