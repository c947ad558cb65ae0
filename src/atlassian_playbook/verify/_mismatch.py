"""The calls an integration makes, checked against a connection, and "scope does not match"
explained.

A 401 "scope does not match" is the answer users get wrong most often: the scope may be
missing from the grant, granted on another site only, or asked of a site without the product.
:func:`explain_scope_mismatch` tells these apart from a :class:`VerificationReport`
(accessible-resources lists scopes per site), and :func:`check_calls` runs it for each call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .. import advisor, scopes
from ..api import ApiClient, Site
from ..errors import ApiError, PlaybookError, ScopeNotGranted
from ._report import Check, VerificationReport, failed_check

__all__ = ["ScopeMismatch", "explain_scope_mismatch", "check_calls"]

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
        return ScopeMismatch(
            endpoint, cause, tuple(needed), tuple(granted), tuple(elsewhere), message, hint
        )

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
            fix = (
                f"Choose a site that has {product_name}: ATLASSIAN_SITE={having[0]}"
                f"{' (or ' + ', '.join(having[1:]) + ')' if having[1:] else ''}; no scope "
                "fixes this."
                if having
                else f"None of the sites this connection reaches has {product_name}: log in "
                f"again and choose a site with {product_name} on the consent screen."
            )
            return result(
                "product-not-on-site",
                f"this site has no {product_name}: {label} lists no {product_name} in "
                f"accessible-resources, so {endpoint} cannot work there"
                + (f" ({product_name} is on {', '.join(having)})" if having else ""),
                fix,
                needed,
                granted,
                having,
            )
    elif product_name:
        granted = ()
    else:  # identity and platform calls: the grant's scopes, not a site's
        granted = tuple(report.token_scopes)
        if any(set(alt) <= set(granted) for alt in needed):
            return result(
                "granted-here",
                f"{endpoint} was refused though the token has {needs}",
                "The grant changed after this token was issued: log in again.",
                needed,
                granted,
            )
        smallest = advisor.advise([endpoint]).classic
        return result(
            "not-granted",
            f"{endpoint} needs {needs}, which the token was not granted",
            f"Add {' '.join(smallest.scopes)} on the console's Permissions tab "
            f"({', '.join(smallest.console_apis)}), put it in ATLASSIAN_SCOPES and log in "
            "again: scope changes need a new consent.",
            needed,
            granted,
        )
    if site is not None and any(set(alt) <= set(granted) for alt in needed):
        return result(
            "granted-here",
            f"{endpoint} was refused though accessible-resources lists {needs} on {label}",
            "The grant changed after this token was issued (a scope removed, the app removed "
            "from the site): log in again, choosing this site.",
            needed,
            granted,
        )
    elsewhere = [
        s.name or s.id
        for s in sites
        if s is not site and any(set(alt) <= set(s.scopes) for alt in needed)
    ]
    if elsewhere:
        return result(
            "granted-on-another-site",
            f"{endpoint} needs {needs}: granted on {', '.join(elsewhere)} but not on {label}",
            f"Scopes are granted per site. Use {elsewhere[0]} (ATLASSIAN_SITE={elsewhere[0]}), "
            f"or log in again and choose {label} on the consent screen, requesting these "
            "scopes: consenting for a site adds it to the same grant.",
            needed,
            granted,
            elsewhere,
        )
    advice = advisor.advise([endpoint])
    sets = " or ".join(
        f"{' '.join(s.scopes)} ({s.kind}, {', '.join(s.console_apis)})"
        for s in advice.sets
        if s.scopes
    )
    return result(
        "not-granted",
        f"{endpoint} needs {needs}, granted on no site this connection reaches"
        + (f" ({label} has: {' '.join(granted)})" if granted else ""),
        f"Tick {sets} on the console's Permissions tab, put the scopes in ATLASSIAN_SCOPES and "
        f"log in again choosing {label}: scope changes need a new consent.",
        needed,
        granted,
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


def check_calls(api: ApiClient, report: VerificationReport, calls: Sequence[str]) -> list[Check]:
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
                added.append(
                    mismatch.check(name)
                    if mismatch.cause == "product-not-on-site"
                    else failed_check(name, error)
                )
            continue
        granted = site.scopes if site and path.startswith("/ex/") else report.token_scopes
        if any(set(alt) <= set(granted) for alt in alternatives):
            added.append(
                Check(
                    name,
                    None,
                    "not sent (verify sends only GETs with real ids); "
                    "its scopes are granted" + (f" on {site.name}" if site else ""),
                )
            )
        else:
            added.append(explain_scope_mismatch(endpoint.method, path, report).check(name))
    report.checks.extend(added)
    return added
