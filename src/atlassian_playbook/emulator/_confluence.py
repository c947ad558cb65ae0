"""Confluence Cloud REST v1 and v2 behind the gateway, over the world's spaces and pages.

v1 (``/wiki/rest/api``): spaces, the current user, CQL search (``content/search`` returns
content, ``search`` returns search results wrapping it) and one content item, with ``expand``
of ``space``, ``version``, ``history``, ``body.storage`` and ``body.atlas_doc_format``. Its
``_links.next`` is relative to ``_links.base`` (``/rest/api/...``), as Confluence writes it.

v2 (``/wiki/api/v2``): spaces, pages (filters ``space-id``, ``id``, ``title``, ``status``;
``sort``; ``body-format``), one page, a space's pages. Cursor pagination: ``_links.next`` and a
``Link`` header carry a relative URL starting ``/wiki/api/v2/`` (append it to the site or
gateway root, not to ``_links.base``, which already ends in ``/wiki``).

A page's body in the world is plain text; ``storage`` renders it as one ``<p>``. Every page
was created by the site's first member at 2024-03-01T10:00:00.000Z and has version 1 (the
world holds no history). CQL is a subset (:data:`CQL_SUPPORTED`); anything else is a 400
naming the unsupported part. ``_links.self`` and ``base`` name the site (``https://NAME
.atlassian.net/wiki``), as Confluence does behind the gateway.
"""

from __future__ import annotations

import json
from html import escape
from urllib.parse import quote_plus, urlencode

from ._adf import text_to_adf
from ._call import Call, Handler, page_token, read_page_token
from ._cql import CqlError, run_cql
from ._http import Response, json_response
from ._world import user_by_ref

__all__ = ["ConfluenceApi"]

CREATED = "2024-03-01T10:00:00.000Z"
FRIENDLY_CREATED = "Mar 01, 2024"
V1_DEFAULT_LIMIT = 25
V1_MAX_LIMIT = 100
V2_DEFAULT_LIMIT = 25
V2_MAX_LIMIT = 250
PAGE_SORTS = ("id", "-id", "created-date", "-created-date", "modified-date", "-modified-date",
              "title", "-title")
BODY_FORMATS = ("storage", "atlas_doc_format")
SINGLE_BODY_FORMATS = ("storage", "atlas_doc_format", "view")



def v1_error(status: int, message: str) -> Response:
    return json_response(status, {"statusCode": status, "message": message})


def v2_error(status: int, code: str, title: str) -> Response:
    return json_response(
        status, {"errors": [{"status": status, "code": code, "title": title, "detail": None}]}
    )


def bad_parameter(title: str) -> Response:
    return v2_error(400, "INVALID_REQUEST_PARAMETER", title)


def storage_body(page: dict) -> str:
    return f"<p>{escape(page['body'])}</p>" if page["body"] else ""


def adf_body(page: dict) -> str:
    return json.dumps(text_to_adf(page["body"]), separators=(",", ":"))


def _multi(request, name: str) -> list[str]:
    """A parameter given as ``a,b`` or repeated."""
    return [part.strip() for value in request.query.get(name, []) for part in value.split(",")
            if part.strip()]


def _integers(values: list[str]) -> list[int] | None:
    return [int(v) for v in values] if all(v.isdigit() for v in values) else None


class ConfluenceApi:
    """The Confluence operations the gateway serves, keyed by (method, path)."""

    def __init__(self, emulator) -> None:
        self.emu = emulator

    def handlers(self) -> dict[tuple[str, str], Handler]:
        return {
            ("GET", "/wiki/rest/api/space"): self.spaces_v1,
            ("GET", "/wiki/rest/api/user/current"): self.current_user,
            ("GET", "/wiki/rest/api/content/search"): self.content_search,
            ("GET", "/wiki/rest/api/search"): self.search,
            ("GET", "/wiki/rest/api/content/{id}"): self.content,
            ("GET", "/wiki/api/v2/spaces"): self.spaces_v2,
            ("GET", "/wiki/api/v2/pages"): self.pages,
            ("GET", "/wiki/api/v2/pages/{id}"): self.page,
            ("GET", "/wiki/api/v2/spaces/{id}/pages"): self.space_pages,
        }

    # --- v1 -------------------------------------------------------------------------------------

    def spaces_v1(self, call: Call, site: dict, params: dict) -> Response:
        base = f"{site['url']}/wiki"
        results = [self.space_v1(site, s) for s in site["spaces"]]
        return json_response(
            200,
            {
                "results": results,
                "start": 0,
                "limit": 25,
                "size": len(results),
                "_links": {"base": base, "context": "/wiki", "self": f"{base}/rest/api/space"},
            },
        )

    def space_v1(self, site: dict, space: dict) -> dict:
        return {
            "id": space["id"],
            "key": space["key"],
            "name": space["name"],
            "type": "global",
            "status": "current",
            "_links": {
                "webui": f"/spaces/{space['key']}",
                "self": f"{site['url']}/wiki/rest/api/space/{space['key']}",
            },
        }

    def user_v1(self, site: dict, user: dict) -> dict:
        return {
            "type": "known",
            "accountId": user["account_id"],
            "accountType": user.get("account_type", "atlassian"),
            "email": user["email"],
            "publicName": user["name"],
            "displayName": user["name"],
            "profilePicture": {
                "path": user["picture"],
                "width": 48,
                "height": 48,
                "isDefault": False,
            },
            "isExternalCollaborator": False,
            "_links": {
                "self": f"{site['url']}/wiki/rest/api/user?accountId={user['account_id']}"
            },
        }

    def current_user(self, call: Call, site: dict, params: dict) -> Response:
        body = self.user_v1(site, call.user)
        body["_links"] = {"base": f"{site['url']}/wiki", "context": "/wiki"}
        return json_response(200, body)

    def content_v1(self, call: Call, site: dict, page: dict, expand: set[str]) -> dict:
        """A page as v1 content, with the expansions asked for (others stay ``_expandable``)."""
        wiki = f"{site['url']}/wiki"
        space = next(s for s in site["spaces"] if s["key"] == page["space"])
        author = user_by_ref(call.data["world"], site["members"][0])
        page_id = page["id"]
        expandable = {
            "container": f"/rest/api/space/{space['key']}",
            "metadata": "",
            "restrictions": f"/rest/api/content/{page_id}/restriction/byOperation",
            "history": f"/rest/api/content/{page_id}/history",
            "body": "",
            "version": "",
            "descendants": f"/rest/api/content/{page_id}/descendant",
            "space": f"/rest/api/space/{space['key']}",
            "childTypes": "",
            "operations": "",
            "children": f"/rest/api/content/{page_id}/child",
            "ancestors": "",
        }
        content: dict = {"id": page_id, "type": "page", "status": "current",
                         "title": page["title"]}
        if "space" in expand:
            content["space"] = self.space_v1(site, space)
            expandable.pop("space")
        if "history" in expand:
            content["history"] = {
                "latest": True,
                "createdBy": self.user_v1(site, author),
                "createdDate": CREATED,
            }
            expandable.pop("history")
        if "version" in expand:
            content["version"] = {
                "by": self.user_v1(site, author),
                "when": CREATED,
                "friendlyWhen": FRIENDLY_CREATED,
                "message": "",
                "number": 1,
                "minorEdit": False,
            }
            expandable.pop("version")
        bodies = {}
        if "body.storage" in expand:
            bodies["storage"] = {"value": storage_body(page), "representation": "storage"}
        if "body.atlas_doc_format" in expand:
            bodies["atlas_doc_format"] = {"value": adf_body(page),
                                          "representation": "atlas_doc_format"}
        if bodies:
            content["body"] = bodies
            expandable.pop("body")
        content["_expandable"] = expandable
        content["_links"] = {
            "webui": f"/spaces/{space['key']}/pages/{page_id}/{quote_plus(page['title'])}",
            "editui": f"/pages/resumedraft.action?draftId={page_id}",
            "self": f"{wiki}/rest/api/content/{page_id}",
        }
        return content

    def content(self, call: Call, site: dict, params: dict) -> Response:
        page = next((p for p in site["pages"] if p["id"] == params["id"]), None)
        if page is None:
            return v1_error(404, f"No content found with id : ContentId{{id={params['id']}}}")
        body = self.content_v1(call, site, page, set(_multi(call.request, "expand")))
        body["_links"].update({"base": f"{site['url']}/wiki", "context": "/wiki",
                               "collection": "/rest/api/content"})
        return json_response(200, body)

    def _cql_page(self, call: Call, site: dict, endpoint: str):
        """The CQL, the matching pages, offset and limit, or an error response."""
        request = call.request
        cql = request.param("cql")
        if not cql or not cql.strip():
            return v1_error(400, "The cql parameter is required.")
        try:
            limit = int(request.param("limit") or V1_DEFAULT_LIMIT)
            start = int(request.param("start") or 0)
            if limit < 0 or start < 0:
                raise ValueError
        except ValueError:
            return v1_error(400, "limit and start must be non-negative integers.")
        limit = min(limit, V1_MAX_LIMIT)
        cursor = request.param("cursor")
        if cursor:
            start = read_page_token(cursor, f"{endpoint}:{cql}")
            if start is None:
                return v1_error(400, "The cursor is not valid for this query.")
        try:
            pages = run_cql(site, cql)
        except CqlError as error:
            return v1_error(400, str(error))
        return cql, pages, start, limit

    def _v1_links(self, site: dict, endpoint: str, cql: str, start: int, limit: int,
                  total: int, expand: list[str]) -> dict:
        wiki = f"{site['url']}/wiki"
        query = {"cql": cql}
        if expand:
            query["expand"] = ",".join(expand)
        links = {"base": wiki, "context": "/wiki",
                 "self": f"{wiki}/rest/api/{endpoint}?{urlencode(query)}"}
        if start + limit < total and limit:
            following = {"next": "true", "cursor": page_token(f"{endpoint}:{cql}", start + limit),
                         "limit": limit, "start": start + limit, **query}
            links["next"] = f"/rest/api/{endpoint}?{urlencode(following)}"
        return links

    def content_search(self, call: Call, site: dict, params: dict) -> Response:
        found = self._cql_page(call, site, "content/search")
        if isinstance(found, Response):
            return found
        cql, pages, start, limit = found
        expand = _multi(call.request, "expand")
        chosen = pages[start : start + limit]
        return json_response(
            200,
            {
                "results": [self.content_v1(call, site, p, set(expand)) for p in chosen],
                "start": start,
                "limit": limit,
                "size": len(chosen),
                "_links": self._v1_links(site, "content/search", cql, start, limit, len(pages),
                                         expand),
            },
        )

    def search(self, call: Call, site: dict, params: dict) -> Response:
        found = self._cql_page(call, site, "search")
        if isinstance(found, Response):
            return found
        cql, pages, start, limit = found
        expand = _multi(call.request, "expand")
        chosen = pages[start : start + limit]
        results = []
        for page in chosen:
            content = self.content_v1(call, site, page, set(expand))
            space = next(s for s in site["spaces"] if s["key"] == page["space"])
            results.append(
                {
                    "content": content,
                    "title": page["title"],
                    "excerpt": page["body"][:200],
                    "url": content["_links"]["webui"],
                    "resultGlobalContainer": {"title": space["name"],
                                              "displayUrl": f"/spaces/{space['key']}"},
                    "breadcrumbs": [],
                    "entityType": "content",
                    "iconCssClass": "aui-icon content-type-page",
                    "lastModified": CREATED,
                    "friendlyLastModified": FRIENDLY_CREATED,
                    "score": 1.0,
                }
            )
        return json_response(
            200,
            {
                "results": results,
                "start": start,
                "limit": limit,
                "size": len(results),
                "totalSize": len(pages),
                "cqlQuery": cql,
                "searchDuration": 1,
                "archivedResultCount": 0,
                "_links": self._v1_links(site, "search", cql, start, limit, len(pages), expand),
            },
        )

    # --- v2 -------------------------------------------------------------------------------------

    def _v2_page(self, request, items: list, path: str, kept: dict[str, str]):
        """One page of ``items`` and the response's ``_links``/``Link``, or an error."""
        try:
            limit = int(request.param("limit") or V2_DEFAULT_LIMIT)
        except ValueError:
            return bad_parameter("limit must be an integer.")
        if not 1 <= limit <= V2_MAX_LIMIT:
            return bad_parameter(f"limit must be between 1 and {V2_MAX_LIMIT}.")
        signature = f"{path}?{urlencode(sorted(kept.items()))}"
        offset = 0
        cursor = request.param("cursor")
        if cursor:
            offset = read_page_token(cursor, signature)
            if offset is None:
                return bad_parameter("The cursor is not valid for this request.")
        chosen = items[offset : offset + limit]
        next_url = None
        if offset + limit < len(items):
            query = {**kept, "cursor": page_token(signature, offset + limit), "limit": limit}
            next_url = f"{path}?{urlencode(query)}"
        return chosen, next_url

    def _v2_response(self, site: dict, results: list, next_url: str | None) -> Response:
        base = f"{site['url']}/wiki"
        links = {"base": base}
        headers = {}
        if next_url:
            links = {"next": next_url, "base": base}
            headers["Link"] = f'<{next_url}>; rel="next", <{base}>; rel="base"'
        return json_response(200, {"results": results, "_links": links}, headers)

    def spaces_v2(self, call: Call, site: dict, params: dict) -> Response:
        user = call.user
        results = [
            {
                "id": str(s["id"]),
                "key": s["key"],
                "name": s["name"],
                "type": "global",
                "status": "current",
                "authorId": user["account_id"],
                "createdAt": CREATED,
                "homepageId": str(s["id"] + 1000),
                "_links": {"webui": f"/spaces/{s['key']}"},
            }
            for s in site["spaces"]
        ]
        found = self._v2_page(call.request, results, "/wiki/api/v2/spaces", {})
        if isinstance(found, Response):
            return found
        return self._v2_response(site, *found)

    def page_v2(self, site: dict, page: dict, body_format: str | None, *,
                single: bool = False, version: bool = True) -> dict:
        space = next(s for s in site["spaces"] if s["key"] == page["space"])
        author = site["members"][0]
        body: dict = {}
        if body_format in ("storage", "view"):
            body[body_format] = {"representation": body_format, "value": storage_body(page)}
        elif body_format == "atlas_doc_format":
            body["atlas_doc_format"] = {"representation": "atlas_doc_format",
                                        "value": adf_body(page)}
        result = {
            "id": page["id"],
            "status": "current",
            "title": page["title"],
            "spaceId": str(space["id"]),
            "parentId": None,
            "parentType": None,
            "position": None,
            "authorId": author,
            "ownerId": author,
            "lastOwnerId": None,
            "createdAt": CREATED,
        }
        if version:
            result["version"] = {"createdAt": CREATED, "message": "", "number": 1,
                                 "minorEdit": False, "authorId": author}
        result["body"] = body
        links = {
            "webui": f"/spaces/{space['key']}/pages/{page['id']}/{quote_plus(page['title'])}",
            "editui": f"/pages/resumedraft.action?draftId={page['id']}",
        }
        if single:
            links["base"] = f"{site['url']}/wiki"
        result["_links"] = links
        return result

    def _list_pages(self, call: Call, site: dict, pages: list[dict], path: str,
                    kept: dict[str, str]) -> Response:
        request = call.request
        title = request.param("title")
        if title is not None:
            pages = [p for p in pages if p["title"] == title]
            kept["title"] = title
        statuses = _multi(request, "status")
        if statuses:
            unknown = [s for s in statuses if s not in ("current", "archived", "deleted",
                                                        "trashed")]
            if unknown:
                return bad_parameter(f"Invalid status: {unknown[0]}.")
            if "current" not in statuses:
                pages = []
            kept["status"] = ",".join(statuses)
        sort = request.param("sort")
        if sort is not None:
            if sort not in PAGE_SORTS:
                return bad_parameter(f"Invalid sort: {sort}. Use one of {', '.join(PAGE_SORTS)}.")
            kept["sort"] = sort
        field = (sort or "id").lstrip("-")
        if field == "title":
            pages = sorted(pages, key=lambda p: (p["title"], int(p["id"])))
        else:  # created and modified are the same for every page of the world
            pages = sorted(pages, key=lambda p: int(p["id"]))
        if sort and sort.startswith("-"):
            pages.reverse()
        body_format = request.param("body-format")
        if body_format is not None:
            if body_format not in BODY_FORMATS:
                return bad_parameter(f"Invalid body-format: {body_format}.")
            kept["body-format"] = body_format
        found = self._v2_page(request, pages, path, kept)
        if isinstance(found, Response):
            return found
        chosen, next_url = found
        return self._v2_response(site, [self.page_v2(site, p, body_format) for p in chosen],
                                 next_url)

    def pages(self, call: Call, site: dict, params: dict) -> Response:
        request = call.request
        pages = list(site["pages"])
        kept: dict[str, str] = {}
        space_ids = _integers(_multi(request, "space-id"))
        if space_ids is None:
            return bad_parameter("space-id must be a list of integers.")
        if space_ids:
            keys = {s["key"] for s in site["spaces"] if s["id"] in space_ids}
            pages = [p for p in pages if p["space"] in keys]
            kept["space-id"] = ",".join(map(str, space_ids))
        page_ids = _integers(_multi(request, "id"))
        if page_ids is None:
            return bad_parameter("id must be a list of integers.")
        if page_ids:
            pages = [p for p in pages if int(p["id"]) in page_ids]
            kept["id"] = ",".join(map(str, page_ids))
        return self._list_pages(call, site, pages, "/wiki/api/v2/pages", kept)

    def space_pages(self, call: Call, site: dict, params: dict) -> Response:
        if not params["id"].isdigit():
            return bad_parameter("The space id must be an integer.")
        space = next((s for s in site["spaces"] if s["id"] == int(params["id"])), None)
        if space is None:
            return v2_error(404, "NOT_FOUND", "Not Found")
        depth = call.request.param("depth")
        kept: dict[str, str] = {}
        if depth is not None:
            if depth not in ("all", "root"):
                return bad_parameter(f"Invalid depth: {depth}. Use all or root.")
            kept["depth"] = depth  # every page of the world is at the root of its space
        pages = [p for p in site["pages"] if p["space"] == space["key"]]
        return self._list_pages(call, site, pages, f"/wiki/api/v2/spaces/{params['id']}/pages",
                                kept)

    def page(self, call: Call, site: dict, params: dict) -> Response:
        if not params["id"].isdigit():
            return bad_parameter("The page id must be an integer.")
        page = next((p for p in site["pages"] if int(p["id"]) == int(params["id"])), None)
        if page is None:
            return v2_error(404, "NOT_FOUND", "Not Found")
        body_format = call.request.param("body-format")
        if body_format is not None and body_format not in SINGLE_BODY_FORMATS:
            return bad_parameter(f"Invalid body-format: {body_format}.")
        version = (call.request.param("include-version") or "true").lower() != "false"
        return json_response(
            200, self.page_v2(site, page, body_format, single=True, version=version)
        )
