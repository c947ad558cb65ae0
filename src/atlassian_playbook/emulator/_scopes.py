"""What each scope is for: the console API a scope name belongs to, told by its shape.

Deliberately independent of :mod:`atlassian_playbook.scopes`: the emulator classifies a scope
by the *shape* of its name (the shapes of Atlassian's scope names, as in
``/work/shared/atlassian/scopes/*.json``), so it keeps working whatever the catalog says, and a
catalog bug cannot hide behind an emulator that shares it.
"""

from __future__ import annotations

import re

__all__ = [
    "IDENTITY",
    "JIRA",
    "CONFLUENCE",
    "REPORTING",
    "APIS",
    "UnknownScope",
    "api_of_scope",
    "scopes_of_api",
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
