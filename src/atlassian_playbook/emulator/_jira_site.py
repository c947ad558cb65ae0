"""A site's Jira configuration as the emulator's world holds it: statuses, issue types and
issues by id or key. Shared by the API handlers and the JQL subset."""

from __future__ import annotations

import re

# Jira Cloud's default statuses and categories (ids as a new site has them).
STATUS_CATEGORIES = {
    "new": (2, "blue-gray", "To Do"),
    "indeterminate": (4, "yellow", "In Progress"),
    "done": (3, "green", "Done"),
}
DEFAULT_STATUSES = {  # name -> (id, category, icon)
    "To Do": ("10000", "new", "open"),
    "In Progress": ("3", "indeterminate", "inprogress"),
    "Done": ("10001", "done", "closed"),
}
# A team-managed project's default issue types: (id, name, hierarchy level, avatar id, text).
DEFAULT_ISSUE_TYPES = (
    ("10000", "Epic", 1, 10307, "Epics track collections of related bugs, stories, and tasks."),
    ("10001", "Task", 0, 10318, "Tasks track small, distinct pieces of work."),
    (
        "10002",
        "Story",
        0,
        10315,
        "Stories track functionality or features expressed as user goals.",
    ),
    ("10003", "Bug", 0, 10303, "Bugs track problems or errors."),
)
_ISSUE_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9]*)-([0-9]+)$")


def _issue_number(key: str) -> tuple[str, int]:
    project, _, number = key.rpartition("-")
    return project, int(number)


def site_statuses(site: dict) -> dict[str, tuple[str, str, str]]:
    """name -> (id, category, icon) for the defaults and every status the site's issues use."""
    statuses = dict(DEFAULT_STATUSES)
    extra = sorted({i["status"] for i in site["issues"]} - set(statuses))
    for index, name in enumerate(extra):
        statuses[name] = (str(10100 + index), "indeterminate", "generic")
    return statuses


def site_issue_types(site: dict) -> list[tuple[str, str, int, int, str]]:
    types = list(DEFAULT_ISSUE_TYPES)
    known = {t[1] for t in types}
    extra = sorted({i["issuetype"] for i in site["issues"]} - known)
    for index, name in enumerate(extra):
        types.append((str(10100 + index), name, 0, 10318, ""))
    return types


def _find(names, value: str) -> str | None:
    """The name among ``names`` equal to ``value`` ignoring case."""
    return next((name for name in names if name.lower() == value.lower()), None)


def find_issue(site: dict, id_or_key: str) -> dict | None:
    for issue in site["issues"]:
        if issue["id"] == id_or_key or issue["key"].lower() == id_or_key.lower():
            return issue
    return None
