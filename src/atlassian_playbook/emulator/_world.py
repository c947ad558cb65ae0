"""The emulated world: one Atlassian account, its sites, their data, and what each scope is for.

Deliberately independent of :mod:`atlassian_playbook.scopes`: the emulator classifies a scope
by the *shape* of its name (the shapes of Atlassian's scope names, as in
``/work/shared/atlassian/scopes/*.json``), so it keeps working whatever the catalog says, and a
catalog bug cannot hide behind an emulator that shares it.
"""

from __future__ import annotations

import copy
import re

__all__ = [
    "IDENTITY",
    "JIRA",
    "CONFLUENCE",
    "REPORTING",
    "APIS",
    "UnknownScope",
    "api_of_scope",
    "USER",
    "USER_PROFILE_UPDATED_AT",
    "SITES",
    "site_by_ref",
    "ACTIVE_TEST_ACCOUNT",
    "CLOSED_TEST_ACCOUNT",
]

# The four APIs a developer can add on the console's Permissions tab.
IDENTITY = "identity"
JIRA = "jira"
CONFLUENCE = "confluence"
REPORTING = "personal-data-reporting"
APIS = (IDENTITY, JIRA, CONFLUENCE, REPORTING)


class UnknownScope(ValueError):
    """A scope name of no shape Atlassian uses."""


_EXACT: dict[str, str | None] = {
    "offline_access": None,  # asked for in the authorization URL; no API to add for it
    "read:me": IDENTITY,
    "read:account": IDENTITY,
    "report:personal-data": REPORTING,
    "search:confluence": CONFLUENCE,
}
_VERBS = "read|write|delete|manage|readonly|search|send|redact|validate"
# Granular scopes: verb:resource:product (read:user:jira, read:sprint:jira-software,
# read:space:confluence, read:request:jira-service-management).
_GRANULAR = re.compile(
    rf"^(?:{_VERBS}):[a-z0-9][a-z0-9.-]*:"
    r"(jira|jira-software|jira-service-management|confluence)$"
)
# Classic scopes: verb:product-thing (read:jira-work, read:confluence-space.summary,
# read:servicedesk-request, read:servicemanagement-insight-objects).
_CLASSIC = re.compile(
    rf"^(?:{_VERBS}):(jira|confluence|servicedesk|servicemanagement)-[a-z0-9][a-z0-9.-]*$"
)
# Jira Software and Jira Service Management scopes are configured under the Jira API.
_PRODUCT_API = {
    "jira": JIRA,
    "jira-software": JIRA,
    "jira-service-management": JIRA,
    "servicedesk": JIRA,
    "servicemanagement": JIRA,
    "confluence": CONFLUENCE,
}


def api_of_scope(scope: str) -> str | None:
    """The console API a scope belongs to (``identity``, ``jira``, ``confluence``,
    ``personal-data-reporting``), ``None`` for ``offline_access``.

    Raises :class:`UnknownScope` for a name of no known shape (a typo, a comma-joined list).
    """
    if scope in _EXACT:
        return _EXACT[scope]
    match = _GRANULAR.match(scope) or _CLASSIC.match(scope)
    if match is None:
        raise UnknownScope(scope)
    return _PRODUCT_API[match.group(1)]


def scopes_of_api(scopes, api: str) -> list[str]:
    """The scopes among ``scopes`` that belong to ``api`` (unknown names are skipped)."""
    out = []
    for scope in scopes:
        try:
            if api_of_scope(scope) == api:
                out.append(scope)
        except UnknownScope:
            pass
    return out


# --- the account ---------------------------------------------------------------------------

USER: dict = {
    "account_type": "atlassian",
    "account_id": "5b10ac8d82e05b22cc7d4ef5",
    "email": "ada.lovelace@example.com",
    "name": "Ada Lovelace",
    "picture": "https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/"
    "5b10ac8d82e05b22cc7d4ef5/0d2c6c2e-0c5e-4b4a-9d3a-2b2f1c1e0a11/128",
    "account_status": "active",
    "nickname": "ada",
    "zoneinfo": "Europe/London",
    "locale": "en-US",
    "extended_profile": {
        "job_title": "Integration Engineer",
        "organization": "Acme",
        "department": "Platform",
        "location": "London",
    },
}
# When the account's profile last changed: the reporting API answers "updated" for this account
# when the caller's copy (updatedAt) is older.
USER_PROFILE_UPDATED_AT = "2025-01-15T09:30:00.000Z"

# Atlassian's documented test accounts for the personal data reporting API.
ACTIVE_TEST_ACCOUNT = "5be24ad8b1653240376955d2"
CLOSED_TEST_ACCOUNT = "5be24ba3f91c106033269289"

# --- the sites -----------------------------------------------------------------------------

SITES: list[dict] = [
    {
        "id": "3f9c1a52-7d4e-4b8a-9e21-6c0d5b7a8e14",
        "name": "acme",
        "url": "https://acme.atlassian.net",
        "avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/rocket.png",
        "products": [JIRA, CONFLUENCE],
        "projects": [
            {"id": "10000", "key": "ACME", "name": "Acme Platform", "projectTypeKey": "software"},
            {"id": "10001", "key": "OPS", "name": "Operations", "projectTypeKey": "service_desk"},
        ],
        "spaces": [
            {"id": 98306, "key": "ENG", "name": "Engineering"},
            {"id": 98307, "key": "HR", "name": "People"},
        ],
    },
    {
        "id": "8b2e6d14-0c3f-4e7a-b5d9-1a4f7c2e9b63",
        "name": "globex",
        "url": "https://globex.atlassian.net",
        "avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/site.png",
        "products": [JIRA],
        "projects": [
            {"id": "10000", "key": "GLX", "name": "Globex Core", "projectTypeKey": "software"},
        ],
        "spaces": [],
    },
]
_SITE_BY_ID = {site["id"]: site for site in SITES}


def site_by_ref(ref: str) -> dict | None:
    """A site by cloud id, name (``acme``), host (``acme.atlassian.net``) or URL."""
    if not ref:
        return None
    if ref in _SITE_BY_ID:
        return _SITE_BY_ID[ref]
    name = ref.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
    name = name.removesuffix(".atlassian.net")
    for site in SITES:
        if site["name"] == name:
            return site
    return None


def public_site(site: dict) -> dict:
    """What :attr:`Emulator.sites` shows of a site."""
    return copy.deepcopy({k: site[k] for k in ("id", "name", "url", "avatarUrl", "products")})
