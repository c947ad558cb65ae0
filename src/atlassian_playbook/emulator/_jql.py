"""The emulator's JQL: a subset (:data:`JQL_SUPPORTED`); anything else is a 400 naming the
unsupported part. Without ORDER BY results come newest first (``created DESC, key DESC``),
where Jira's documentation is silent."""

from __future__ import annotations

import re

from ._adf import adf_to_text
from ._jira_site import (
    _ISSUE_KEY,
    _find,
    _issue_number,
    find_issue,
    site_issue_types,
    site_statuses,
)
from ._query import Clause, QuerySyntaxError, Unsupported, parse, text_matches

JQL_SUPPORTED = (
    "project, key, status and issuetype with = or IN; text and summary with ~; clauses joined "
    "by AND; ORDER BY key or created, ASC or DESC"
)

UNBOUNDED = (
    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
)


class JqlError(ValueError):
    """A JQL query Jira (or the emulator's subset) refuses: a 400 with this message."""


_FIELD_NAMES = {
    "project": "project",
    "key": "key",
    "issuekey": "key",
    "status": "status",
    "issuetype": "issuetype",
    "type": "issuetype",
    "text": "text",
    "summary": "summary",
}
_ORDER_FIELDS = {"key": "key", "issuekey": "key", "created": "created"}


def _unsupported(part: str) -> JqlError:
    return JqlError(f"The emulator does not support '{part}' in JQL. It supports {JQL_SUPPORTED}.")


def run_jql(site: dict, jql: str) -> list[dict]:
    """The site's issues matching ``jql``, in order; raises :class:`JqlError`."""
    try:
        query = parse(jql)
    except QuerySyntaxError as error:
        raise JqlError(f"Error in the JQL Query: {error}.") from None
    except Unsupported as error:
        raise _unsupported(error.part) from None
    if not query.clauses:
        raise JqlError(UNBOUNDED)
    issues = list(site["issues"])
    for clause in query.clauses:
        issues = [i for i in issues if _clause_test(site, clause)(i)]
    keys = []
    for order in query.order:
        field = _ORDER_FIELDS.get(order.field.lower())
        if field is None:
            raise _unsupported(f"ORDER BY {order.text}")
        keys.append((field, order.descending))
    if not keys:
        keys = [("created", True), ("key", True)]
    for field, descending in reversed(keys):  # stable sorts, last key first
        if field == "key":
            issues.sort(key=lambda i: _issue_number(i["key"]), reverse=descending)
        else:
            issues.sort(key=lambda i: i["created"], reverse=descending)
    return issues


def _clause_test(site: dict, clause: Clause):
    field = _FIELD_NAMES.get(clause.field.lower())
    if field is None:
        raise _unsupported(clause.text)
    if any(v.kind == "function" for v in clause.values):
        raise _unsupported(clause.text)
    values = [v.text for v in clause.values]
    if field in ("text", "summary"):
        if clause.op != "~":
            raise _unsupported(clause.text)
        if not re.search(r"[A-Za-z0-9]", values[0]):
            raise JqlError(
                f"The field '{clause.field}' does not support searching for an empty string."
            )
        if field == "summary":
            return lambda issue: text_matches(values[0], issue["summary"])
        return lambda issue: text_matches(
            values[0], issue["summary"], _description_text(issue.get("description"))
        )
    if clause.op not in ("=", "IN"):
        raise _unsupported(clause.text)
    if field == "project":
        keys = set()
        for value in values:
            project = next(
                (
                    p
                    for p in site["projects"]
                    if value.lower() in (p["key"].lower(), p["id"], p["name"].lower())
                ),
                None,
            )
            if project is None:
                raise JqlError(
                    f"The value '{value}' does not exist for the field '{clause.field}'."
                )
            keys.add(project["key"])
        return lambda issue: issue["project"] in keys
    if field == "key":
        wanted = set()
        for value in values:
            if not _ISSUE_KEY.match(value) and not value.isdigit():
                raise JqlError(f"The issue key '{value}' for field '{clause.field}' is invalid.")
            issue = find_issue(site, value)
            if issue is None:
                raise JqlError(
                    f"An issue with key '{value}' does not exist for field '{clause.field}'."
                )
            wanted.add(issue["key"])
        return lambda issue: issue["key"] in wanted
    names = site_statuses(site) if field == "status" else [t[1] for t in site_issue_types(site)]
    chosen = set()
    for value in values:
        name = _find(names, value)
        if name is None:
            raise JqlError(f"The value '{value}' does not exist for the field '{clause.field}'.")
        chosen.add(name)
    return lambda issue: issue[field] in chosen


def _description_text(description) -> str:
    if isinstance(description, dict):
        return adf_to_text(description)
    return description or ""
