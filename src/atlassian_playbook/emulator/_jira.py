"""Jira Cloud REST v2 and v3 behind the gateway, over the world's seeded projects and issues.

v2 and v3 are the same operations; they differ in rich text: ``description`` is a plain string
in v2 and an Atlassian Document Format (ADF) document in v3, both when read and when written
(a string sent to v3 gets Jira's 400 "Operation value must be an Atlassian Document"; an ADF
document sent to v2 gets "Operation value must be a string"). ``self`` URLs point through the
gateway, as Jira's do behind api.atlassian.com.

Created issues live in the emulator state (``world.sites[i].issues`` and the per-project counter
``next_issue_number``, the highest number used), so every process on a state file sees them.

JQL is a subset (:data:`JQL_SUPPORTED`); anything else is a 400 naming the unsupported part.
Where Jira's documentation is silent the emulator chooses: results without ORDER BY come newest
first (``created DESC, key DESC``); /search/jql pages hold at most 100 issues (5000 when only
``id``/``key`` are asked for); a ``nextPageToken`` is bound to its JQL.
"""

from __future__ import annotations

from functools import partial

from ._adf import adf_problem, adf_to_text, text_to_adf
from ._call import Call, Handler, iso, page_token, read_page_token
from ._http import Response, json_response
from ._jira_site import (
    STATUS_CATEGORIES,
    find_issue,
    site_issue_types,
    site_statuses,
)
from ._jql import JqlError, run_jql
from ._world import account_by_id

__all__ = ["JiraApi"]

REMOVED_SEARCH = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
NO_ISSUE = "Issue does not exist or you do not have permission to see it."
BAD_PAYLOAD = "Invalid request payload. Refer to the REST API documentation and try again."
NOT_ADF = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
NOT_STRING = "Operation value must be a string"
ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"

FIELDS = (
    "summary", "status", "issuetype", "project", "description", "created", "updated",
    "reporter", "creator", "assignee", "labels",
)
CREATABLE = {"project", "summary", "issuetype", "description", "labels"}
# GET field: (id, name, JQL clause names, schema type, orderable, searchable) of each system
# field the emulator's issues carry.
FIELD_DEFINITIONS = (
    ("issuekey", "Key", ("id", "issue", "issuekey", "key"), None, False, False),
    ("summary", "Summary", ("summary",), "string", True, True),
    ("status", "Status", ("status",), "status", False, True),
    ("issuetype", "Issue Type", ("issuetype", "type"), "issuetype", True, True),
    ("project", "Project", ("project",), "project", False, True),
    ("description", "Description", ("description",), "string", True, True),
    ("created", "Created", ("created", "createdDate"), "datetime", False, True),
    ("updated", "Updated", ("updated", "updatedDate"), "datetime", False, True),
    ("reporter", "Reporter", ("reporter",), "user", True, True),
    ("creator", "Creator", ("creator",), "user", False, True),
    ("assignee", "Assignee", ("assignee",), "user", True, True),
    ("labels", "Labels", ("labels",), "array", True, True),
)
DEFAULT_MAX_RESULTS = 50
MAX_RESULTS = 100
MAX_ID_RESULTS = 5000


def jira_error(status: int, *messages: str, errors: dict | None = None) -> Response:
    return json_response(status, {"errorMessages": list(messages), "errors": errors or {}})


def jira_time(ts: float) -> str:
    """Jira's timestamps: ``2025-03-01T10:00:00.000+0000``."""
    return iso(ts).replace("Z", "+0000")


# --- the API -------------------------------------------------------------------------------------


class JiraApi:
    """The Jira operations the gateway serves, keyed by (method, path) as in operations.json."""

    def __init__(self, emulator) -> None:
        self.emu = emulator

    def handlers(self) -> dict[tuple[str, str], Handler]:
        table: dict[tuple[str, str], Handler] = {}
        for version in ("2", "3"):
            api = f"/rest/api/{version}"
            routes = {
                ("GET", f"{api}/myself"): self.myself,
                ("GET", f"{api}/serverInfo"): self.server_info,
                ("GET", f"{api}/project"): self.all_projects,
                ("GET", f"{api}/project/search"): self.project_search,
                ("GET", f"{api}/project/{{projectIdOrKey}}"): self.get_project,
                ("GET", f"{api}/field"): self.fields,
                ("GET", f"{api}/search/jql"): self.search_jql,
                ("POST", f"{api}/search/jql"): self.search_jql,
                ("GET", f"{api}/search"): self.removed_search,
                ("POST", f"{api}/search"): self.removed_search,
                ("GET", f"{api}/issue/{{issueIdOrKey}}"): self.get_issue,
                ("POST", f"{api}/issue"): self.create_issue,
                ("PUT", f"{api}/issue/{{issueIdOrKey}}"): self.edit_issue,
                **self.emu._webhooks.handlers(api),
            }
            for key, handler in routes.items():
                table[key] = partial(handler, version=version)
        return table

    def base(self, site: dict, version: str) -> str:
        return f"{self.emu.api_base_url}/ex/jira/{site['id']}/rest/api/{version}"

    # --- identity and the site ----------------------------------------------------------------

    def user_details(self, site: dict, version: str, account_id: str, world: dict) -> dict:
        user = account_by_id(world, account_id) or {}
        avatar = user.get("picture", "")
        return {
            "self": f"{self.base(site, version)}/user?accountId={account_id}",
            "accountId": account_id,
            "emailAddress": user.get("email", ""),
            "avatarUrls": {size: avatar for size in ("48x48", "24x24", "16x16", "32x32")},
            "displayName": user.get("name", ""),
            "active": bool(user),
            "timeZone": user.get("zoneinfo", "UTC"),
            "accountType": user.get("account_type", "atlassian"),  # "app": a service account
        }

    def myself(self, call: Call, site: dict, params: dict, *, version: str) -> Response:
        user = call.user
        body = self.user_details(site, version, user["account_id"], call.data["world"])
        body.update(
            {
                "locale": user["locale"].replace("-", "_"),
                "groups": {"size": 1, "items": []},
                "applicationRoles": {"size": 1, "items": []},
                "expand": "groups,applicationRoles",
            }
        )
        return json_response(200, body)

    def server_info(self, call: Call, site: dict, params: dict, *, version: str) -> Response:
        return json_response(
            200,
            {
                "baseUrl": site["url"],
                "displayUrl": site["url"],
                "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud",
                "buildNumber": 100275,
                "buildDate": "2025-01-01T00:00:00.000+0000",
                "serverTime": jira_time(call.now),
                "scmInfo": "emulator",
                "serverTitle": "Jira",
                "defaultLocale": {"locale": "en_US"},
            },
        )

    def project_json(self, site: dict, version: str, project: dict, *, full: bool) -> dict:
        base = self.base(site, version)
        avatar = f"{base}/universal_avatar/view/type/project/avatar/10011"
        body = {
            "self": f"{base}/project/{project['id']}",
            "id": project["id"],
            "key": project["key"],
            "name": project["name"],
            "projectTypeKey": project["projectTypeKey"],
            "simplified": False,
            "avatarUrls": {
                "48x48": avatar,
                "24x24": f"{avatar}?size=small",
                "16x16": f"{avatar}?size=xsmall",
                "32x32": f"{avatar}?size=medium",
            },
        }
        if full:
            body.update({"style": "classic", "isPrivate": False, "properties": {}})
        return body

    def issue_type_json(self, site: dict, version: str, kind: tuple) -> dict:
        type_id, name, level, avatar, description = kind
        return {
            "self": f"{self.base(site, version)}/issuetype/{type_id}",
            "id": type_id,
            "description": description,
            "iconUrl": f"{self.base(site, '2')}/universal_avatar/view/type/issuetype/avatar/"
            f"{avatar}?size=medium",
            "name": name,
            "subtask": False,
            "avatarId": avatar,
            "hierarchyLevel": level,
        }

    def get_project(self, call: Call, site: dict, params: dict, *, version: str) -> Response:
        ref = params["projectIdOrKey"]
        project = next((p for p in site["projects"] if ref in (p["id"], p["key"])), None)
        if project is None:
            kind = "id" if ref.isdigit() else "key"
            return jira_error(404, f"No project could be found with {kind} '{ref}'.")
        body = self.project_json(site, version, project, full=True)
        body["issueTypes"] = [self.issue_type_json(site, version, t)
                              for t in site_issue_types(site)]
        return json_response(200, body)

    def all_projects(self, call: Call, site: dict, params: dict, *, version: str) -> Response:
        return json_response(
            200, [self.project_json(site, version, p, full=True) for p in site["projects"]]
        )

    def project_search(self, call: Call, site: dict, params: dict, *, version: str) -> Response:
        request = call.request
        try:
            start = int(request.param("startAt") or 0)
            limit = int(request.param("maxResults") or 50)
            if start < 0 or limit < 0:
                raise ValueError
        except ValueError:
            return jira_error(400, "startAt and maxResults must be non-negative integers.")
        projects = site["projects"]
        page = projects[start : start + min(limit, 100)]
        return json_response(
            200,
            {
                "self": f"{self.base(site, version)}/project/search?startAt={start}"
                f"&maxResults={limit}",
                "maxResults": limit,
                "startAt": start,
                "total": len(projects),
                "isLast": start + len(page) >= len(projects),
                "values": [self.project_json(site, version, p, full=True) for p in page],
            },
        )

    def fields(self, call: Call, site: dict, params: dict, *, version: str) -> Response:
        definitions = []
        for field_id, name, clauses, kind, orderable, searchable in FIELD_DEFINITIONS:
            definition = {
                "id": field_id,
                "key": field_id,
                "name": name,
                "custom": False,
                "orderable": orderable,
                "navigable": True,
                "searchable": searchable,
                "clauseNames": list(clauses),
            }
            if kind == "array":
                definition["schema"] = {"type": "array", "items": "string", "system": field_id}
            elif kind is not None:
                definition["schema"] = {"type": kind, "system": field_id}
            definitions.append(definition)
        return json_response(200, definitions)

    # --- issues -----------------------------------------------------------------------------------

    def issue_json(
        self, call: Call, site: dict, issue: dict, version: str, fields: set[str]
    ) -> dict:
        base = self.base(site, version)
        world = call.data["world"]
        values: dict = {}
        if "summary" in fields:
            values["summary"] = issue["summary"]
        if "status" in fields:
            status_id, category, icon = site_statuses(site)[issue["status"]]
            category_id, color, category_name = STATUS_CATEGORIES[category]
            values["status"] = {
                "self": f"{base}/status/{status_id}",
                "description": "",
                "iconUrl": f"{site['url']}/images/icons/statuses/{icon}.png",
                "name": issue["status"],
                "id": status_id,
                "statusCategory": {
                    "self": f"{base}/statuscategory/{category_id}",
                    "id": category_id,
                    "key": category,
                    "colorName": color,
                    "name": category_name,
                },
            }
        if "issuetype" in fields:
            kind = next(t for t in site_issue_types(site) if t[1] == issue["issuetype"])
            values["issuetype"] = self.issue_type_json(site, version, kind)
        if "project" in fields:
            project = next(p for p in site["projects"] if p["key"] == issue["project"])
            values["project"] = self.project_json(site, version, project, full=False)
        if "description" in fields:
            description = issue.get("description")
            if version == "3" and isinstance(description, str):
                description = text_to_adf(description)
            elif version == "2" and isinstance(description, dict):
                description = adf_to_text(description)
            values["description"] = description
        if "created" in fields:
            values["created"] = issue["created"]
        if "updated" in fields:
            values["updated"] = issue.get("updated", issue["created"])
        for role in ("reporter", "creator"):
            if role in fields:
                values[role] = self.user_details(site, version, issue["reporter"], world)
        if "assignee" in fields:
            values["assignee"] = None
        if "labels" in fields:
            values["labels"] = list(issue.get("labels", []))
        return {
            "expand": ISSUE_EXPAND,
            "id": issue["id"],
            "self": f"{base}/issue/{issue['id']}",
            "key": issue["key"],
            "fields": values,
        }

    def get_issue(self, call: Call, site: dict, params: dict, *, version: str) -> Response:
        issue = find_issue(site, params["issueIdOrKey"])
        if issue is None:
            return jira_error(404, NO_ISSUE)
        fields, _ = select_fields(call.request.query.get("fields") or ["*all"])
        return json_response(200, self.issue_json(call, site, issue, version, fields))

    def removed_search(self, call: Call, site: dict, params: dict, *, version: str) -> Response:
        # Removed from Jira Cloud in 2025 (CHANGE-2046): every client meets this 410 there.
        return jira_error(410, REMOVED_SEARCH)

    def search_jql(self, call: Call, site: dict, params: dict, *, version: str) -> Response:
        request = call.request
        if request.method == "POST":
            if request.content_type != "application/json":
                return jira_error(415, "Unsupported Media Type")
            try:
                body = request.json()
            except ValueError:
                return jira_error(400, BAD_PAYLOAD)
            if not isinstance(body, dict):
                return jira_error(400, BAD_PAYLOAD)
            jql, limit, token = body.get("jql"), body.get("maxResults"), body.get("nextPageToken")
            fields = body.get("fields")
            if (
                not isinstance(jql, str | type(None))
                or not isinstance(token, str | type(None))
                or (limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)))
                or (fields is not None and (not isinstance(fields, list)
                                            or not all(isinstance(f, str) for f in fields)))
            ):
                return jira_error(400, BAD_PAYLOAD)
        else:
            jql, token = request.param("jql"), request.param("nextPageToken")
            fields = request.query.get("fields")
            limit = request.param("maxResults")
            if limit is not None:
                try:
                    limit = int(limit)
                except ValueError:
                    return jira_error(400, f"The value '{limit}' is not valid for maxResults.")
        jql = jql or ""
        selected, ids_only = select_fields(fields or ["id"])
        cap = MAX_ID_RESULTS if ids_only or not selected else MAX_RESULTS
        limit = DEFAULT_MAX_RESULTS if limit is None else limit
        if not 1 <= limit <= MAX_ID_RESULTS:
            return jira_error(400, f"maxResults must be between 1 and {MAX_ID_RESULTS}.")
        try:
            matches = run_jql(site, jql)
        except JqlError as error:
            return jira_error(400, str(error))
        offset = 0
        if token:
            offset = read_page_token(token, jql)
            if offset is None:
                return jira_error(400, "The nextPageToken is not valid for this query.")
        page = matches[offset : offset + min(limit, cap)]
        if ids_only:
            issues = [{"id": issue["id"]} for issue in page]
        else:
            issues = [self.issue_json(call, site, i, version, selected) for i in page]
        body: dict = {"issues": issues}
        end = offset + len(page)
        if end < len(matches):
            body["nextPageToken"] = page_token(jql, end)
        body["isLast"] = end >= len(matches)
        return json_response(200, body)

    def edit_issue(self, call: Call, site: dict, params: dict, *, version: str) -> Response:
        """``PUT /issue/{key}`` with ``fields`` (summary, description, labels): 204, and a
        ``jira:issue_updated`` event whose changelog lists the fields that changed."""
        issue = find_issue(site, params["issueIdOrKey"])
        if issue is None:
            return jira_error(404, NO_ISSUE)
        request = call.request
        if request.content_type != "application/json":
            return jira_error(415, "Unsupported Media Type")
        try:
            body = request.json()
        except ValueError:
            return jira_error(400, BAD_PAYLOAD)
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict) or body.get("update"):
            return jira_error(400, "The emulator edits issues through 'fields' only "
                              "(summary, description, labels).")
        errors = edit_problems(fields, version)
        if errors:
            return jira_error(400, errors=errors)
        items = []
        for name in EDITABLE:
            if name in fields and fields[name] != issue.get(name):
                before = issue.get(name)
                items.append({"field": name, "fieldtype": "jira", "fieldId": name,
                              "from": None, "fromString": _change_text(before),
                              "to": None, "toString": _change_text(fields[name])})
                issue[name] = fields[name]
        if items:
            issue["updated"] = jira_time(call.now)
            self.emu._webhooks.issue_event(
                call, site, issue, "jira:issue_updated",
                self.issue_json(call, site, issue, "2", set(FIELDS)),
                changelog={"id": str(int(call.now * 1000)), "items": items},
            )
        return Response(204)

    def create_issue(self, call: Call, site: dict, params: dict, *, version: str) -> Response:
        request = call.request
        if request.content_type != "application/json":
            return jira_error(415, "Unsupported Media Type")
        try:
            body = request.json()
        except ValueError:
            return jira_error(400, BAD_PAYLOAD)
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return jira_error(400, BAD_PAYLOAD)
        if body.get("update"):
            return jira_error(400, "The emulator does not support 'update' when creating an "
                              "issue; set the values in 'fields'.")
        errors: dict[str, str] = {}
        for name in sorted(set(fields) - CREATABLE):
            errors[name] = (
                f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
            )
        project = _reference(fields.get("project"), site["projects"], "key")
        if project is None:
            errors["project"] = "Specify a valid project ID or key"
        summary = fields.get("summary")
        if summary is None or (isinstance(summary, str) and not summary.strip()):
            errors["summary"] = "You must specify a summary of the issue."
        elif not isinstance(summary, str):
            errors["summary"] = NOT_STRING
        types = [{"id": t[0], "name": t[1]} for t in site_issue_types(site)]
        issue_type = None
        if fields.get("issuetype") is None:
            errors["issuetype"] = "Specify an issue type"
        else:
            issue_type = _reference(fields["issuetype"], types, "name")
            if issue_type is None:
                errors["issuetype"] = "The issue type selected is invalid."
        description = fields.get("description")
        if description is not None:
            if version == "3" and adf_problem(description):
                errors["description"] = NOT_ADF
            elif version == "2" and not isinstance(description, str):
                errors["description"] = NOT_STRING
        labels = fields.get("labels", [])
        if not isinstance(labels, list) or not all(
            isinstance(label, str) and label and " " not in label for label in labels
        ):
            errors["labels"] = "Labels must be a list of words without spaces."
        if errors:
            return jira_error(400, errors=errors)
        counters = site.setdefault("next_issue_number", {})
        number = counters.get(project["key"], 0) + 1
        existing = {i["key"] for i in site["issues"]}
        while f"{project['key']}-{number}" in existing:
            number += 1
        counters[project["key"]] = number
        ids = [int(i["id"]) for i in site["issues"] if str(i["id"]).isdigit()]
        now = jira_time(call.now)
        issue = {
            "id": str(max(ids, default=10099) + 1),
            "key": f"{project['key']}-{number}",
            "project": project["key"],
            "summary": summary,
            "description": description,
            "status": "To Do",
            "issuetype": issue_type["name"],
            "reporter": call.user["account_id"],
            "created": now,
            "updated": now,
            "labels": labels,
        }
        site["issues"].append(issue)
        self.emu._webhooks.issue_event(call, site, issue, "jira:issue_created",
                                       self.issue_json(call, site, issue, "2", set(FIELDS)))
        return json_response(
            201,
            {
                "id": issue["id"],
                "key": issue["key"],
                "self": f"{self.base(site, version)}/issue/{issue['id']}",
            },
        )


EDITABLE = ("summary", "description", "labels")


def edit_problems(fields: dict, version: str) -> dict[str, str]:
    """Jira's per-field errors for an edit of ``fields`` (those the emulator can edit)."""
    errors: dict[str, str] = {}
    for name in sorted(set(fields) - set(EDITABLE)):
        errors[name] = (
            f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
        )
    if "summary" in fields:
        summary = fields["summary"]
        if not isinstance(summary, str):
            errors["summary"] = NOT_STRING
        elif not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
    if fields.get("description") is not None:
        if version == "3" and adf_problem(fields["description"]):
            errors["description"] = NOT_ADF
        elif version == "2" and not isinstance(fields["description"], str):
            errors["description"] = NOT_STRING
    labels = fields.get("labels", [])
    if not isinstance(labels, list) or not all(
        isinstance(label, str) and label and " " not in label for label in labels
    ):
        errors["labels"] = "Labels must be a list of words without spaces."
    return errors


def _reference(value, records: list[dict], name_key: str) -> dict | None:
    """The record ``{"id": ...}`` or ``{name_key: ...}`` points at (names ignore case)."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("id"), str | int) and not isinstance(value.get("id"), bool):
        return next((r for r in records if str(r["id"]) == str(value["id"])), None)
    name = value.get(name_key)
    if isinstance(name, str):
        return next((r for r in records if r[name_key].lower() == name.lower()), None)
    return None


def _change_text(value) -> str | None:
    if isinstance(value, dict):
        return adf_to_text(value)
    if isinstance(value, list):
        return " ".join(value)
    return value


def select_fields(values: list[str]) -> tuple[set[str], bool]:
    """The fields a ``fields`` parameter asks for (``*all``, ``*navigable``, names, ``-name``;
    unknown names are ignored as Jira does), and whether it asks for ``id`` only."""
    tokens = [t.strip() for value in values for t in value.split(",") if t.strip()]
    if tokens == ["id"]:
        return set(), True
    positive = [t for t in tokens if not t.startswith("-")]
    selected: set[str] = set() if positive else set(FIELDS)
    for token in positive:
        if token in ("*all", "*navigable"):
            selected |= set(FIELDS)
        elif token in FIELDS:
            selected.add(token)
    selected -= {t[1:] for t in tokens if t.startswith("-")}
    return selected, False
