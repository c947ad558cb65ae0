"""The emulated gateway serves what integrations call: Jira REST v2 and v3 (myself, serverInfo,
JQL search, issues), Confluence v1 (CQL, content) and v2 (pages), each with the scopes Atlassian's
OpenAPI documents list for it. Over real loopback HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from atlassian_playbook.emulator import Emulator
from tests.test_emulator import ACME, GLOBEX, login, site_id

ROOT = Path(__file__).resolve().parents[1]
OPERATIONS = ROOT / "src" / "atlassian_playbook" / "emulator" / "operations.json"
SOURCES = Path("/work/shared/atlassian/scopes")
SCOPE_MISMATCH = {"code": 401, "message": "Unauthorized; scope does not match"}
ADF = {
    "type": "doc",
    "version": 1,
    "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Written in ADF."}]}],
}
JIRA_READ = "read:jira-user read:jira-work"
CONFLUENCE_READ = (
    "search:confluence read:confluence-content.summary read:page:confluence "
    "read:space:confluence"
)


class Gateway:
    """Calls ``/ex/{product}/{site}/...`` with one token."""

    def __init__(self, emu: Emulator, http: httpx.Client, token: str) -> None:
        self.emu, self.http, self.token = emu, http, token

    def url(self, product: str, site: str, path: str) -> str:
        return f"{self.emu.api_base_url}/ex/{product}/{site_id(self.emu, site)}{path}"

    def get(self, product: str, site: str, path: str, **params) -> httpx.Response:
        return self.http.get(
            self.url(product, site, path),
            params=params,
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def post(self, product: str, site: str, path: str, body) -> httpx.Response:
        return self.http.post(
            self.url(product, site, path),
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def jira(self, path: str, site: str = ACME, **params) -> httpx.Response:
        return self.get("jira", site, path, **params)

    def wiki(self, path: str, site: str = ACME, **params) -> httpx.Response:
        return self.get("confluence", site, path, **params)


def gateway(emu, http, scopes: str, site: str = ACME) -> Gateway:
    return Gateway(emu, http, login(emu, http, scopes, site=site)["access_token"])


def search(gw: Gateway, jql: str, site: str = ACME, version: str = "3", **params) -> dict:
    response = gw.jira(f"/rest/api/{version}/search/jql", site, jql=jql, **params)
    assert response.status_code == 200, response.text
    return response.json()


def keys(found: dict) -> list[str]:
    return [issue["key"] for issue in found["issues"]]


def assert_scope_mismatch(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == SCOPE_MISMATCH
    assert response.headers["x-failure-category"] == "FAILURE_CLIENT_SCOPE_CHECK"


def jira_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"errorMessages", "errors"}
    return body


# --- Jira REST v2 beside v3 ----------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2", "3"])
def test_myself_and_server_info_on_v2_and_v3(emu, http, version):
    gw = gateway(emu, http, "read:jira-user")
    me = gw.jira(f"/rest/api/{version}/myself")
    assert me.status_code == 200
    assert me.json()["accountId"] == emu.user["account_id"]
    assert me.json()["self"].startswith(
        f"{emu.api_base_url}/ex/jira/{site_id(emu, ACME)}/rest/api/{version}/user?"
    )
    info = gw.jira(f"/rest/api/{version}/serverInfo")
    assert info.status_code == 200
    assert info.json()["deploymentType"] == "Cloud"
    assert info.json()["baseUrl"] == "https://acme.atlassian.net"


@pytest.mark.parametrize("version", ["2", "3"])
def test_v2_and_v3_have_the_same_scope_mismatch(emu, http, version):
    gw = gateway(emu, http, "read:jira-work read:me")
    assert_scope_mismatch(gw.jira(f"/rest/api/{version}/myself"))
    identity_only = gateway(emu, http, "read:me")
    assert_scope_mismatch(identity_only.jira(f"/rest/api/{version}/serverInfo"))
    granular = gateway(
        emu, http, "read:user:jira read:application-role:jira read:group:jira read:avatar:jira"
    )
    assert granular.jira(f"/rest/api/{version}/myself").status_code == 200


def test_projects_and_fields_as_jira_clients_read_them(emu, http):
    login(emu, http, JIRA_READ, site=GLOBEX)
    gw = gateway(emu, http, JIRA_READ)
    assert [p["key"] for p in gw.jira("/rest/api/2/project").json()] == ["ACME", "OPS"]
    assert [p["key"] for p in gw.jira("/rest/api/2/project", site=GLOBEX).json()] == ["GLX"]
    project = gw.jira("/rest/api/3/project/ACME").json()
    assert project["id"] == "10000" and project["name"] == "Acme Platform"
    assert {"Task", "Bug", "Story"} <= {t["name"] for t in project["issueTypes"]}
    assert gw.jira("/rest/api/2/project/10001").json()["key"] == "OPS"
    missing = jira_error(gw.jira("/rest/api/3/project/GLX"), 404)
    assert missing["errorMessages"] == ["No project could be found with key 'GLX'."]
    fields = {f["id"]: f for f in gw.jira("/rest/api/2/field").json()}
    assert {"summary", "status", "issuetype", "project", "description"} <= set(fields)
    assert fields["issuetype"]["clauseNames"] == ["issuetype", "type"]
    assert fields["summary"]["schema"] == {"type": "string", "system": "summary"}


# --- JQL search ----------------------------------------------------------------------------------


def test_jql_search_finds_the_seeded_issues_of_the_site_only(emu, http):
    login(emu, http, JIRA_READ, site=GLOBEX)
    gw = gateway(emu, http, JIRA_READ, site=ACME)  # one grant, both sites
    acme = search(gw, "project = ACME ORDER BY key ASC", fields="summary,status")
    assert keys(acme) == ["ACME-1", "ACME-2", "ACME-3"]
    assert acme["isLast"] is True and "nextPageToken" not in acme
    first = acme["issues"][0]
    assert first["fields"]["summary"] == "Connect the platform to Jira"
    assert first["fields"]["status"]["name"] == "In Progress"
    assert first["self"] == (
        f"{emu.api_base_url}/ex/jira/{site_id(emu, ACME)}/rest/api/3/issue/{first['id']}"
    )
    assert keys(search(gw, "project in (ACME, OPS) ORDER BY key", fields="key")) == [
        "ACME-1", "ACME-2", "ACME-3", "OPS-1",
    ]
    assert keys(search(gw, "project = GLX", site=GLOBEX, fields="key")) == ["GLX-2", "GLX-1"]
    # A project of another site does not exist here.
    wrong_site = jira_error(gw.jira("/rest/api/3/search/jql", jql="project = GLX"), 400)
    assert wrong_site["errorMessages"] == [
        "The value 'GLX' does not exist for the field 'project'."
    ]


def test_jql_clauses_and_fields(emu, http):
    gw = gateway(emu, http, JIRA_READ)
    assert keys(search(gw, 'project = ACME AND status = "To Do"', fields="key")) == ["ACME-2"]
    assert keys(search(gw, "issuetype = Bug", fields="key")) == ["ACME-2"]
    assert keys(search(gw, 'summary ~ "refresh token"', fields="key")) == ["ACME-2"]
    assert keys(search(gw, 'text ~ "webhooks"', fields="key")) == ["ACME-3"]
    assert keys(search(gw, "key = ACME-3", fields="key")) == ["ACME-3"]
    assert keys(search(gw, "project = ACME ORDER BY key DESC", fields="key")) == [
        "ACME-3", "ACME-2", "ACME-1",
    ]
    # The default asks for ids only, as Jira's enhanced search does.
    only_ids = search(gw, "key = ACME-1")
    assert only_ids["issues"] == [{"id": only_ids["issues"][0]["id"]}]
    everything = search(gw, "key = ACME-1", fields="*all")["issues"][0]["fields"]
    assert {"summary", "status", "issuetype", "project", "description", "created",
            "reporter"} <= set(everything)
    assert everything["project"]["key"] == "ACME"
    assert everything["reporter"]["accountId"] == emu.user["account_id"]
    assert "description" not in search(gw, "key = ACME-1", fields="*all,-description")[
        "issues"][0]["fields"]


def test_jql_values_that_do_not_exist_are_400(emu, http):
    gw = gateway(emu, http, JIRA_READ)
    cases = {
        'status = "Waiting"': "The value 'Waiting' does not exist for the field 'status'.",
        "issuetype = Incident": "The value 'Incident' does not exist for the field 'issuetype'.",
        "key = ACME-99": "An issue with key 'ACME-99' does not exist for field 'key'.",
    }
    for jql, message in cases.items():
        body = jira_error(gw.jira("/rest/api/3/search/jql", jql=jql), 400)
        assert body["errorMessages"] == [message]


@pytest.mark.parametrize(
    ("jql", "part"),
    [
        ("assignee = currentUser()", "'assignee = currentUser()'"),
        ("project = ACME OR project = OPS", "'OR'"),
        ("project != ACME", "'project != ACME'"),
        ("project = ACME ORDER BY updated DESC", "'ORDER BY updated DESC'"),
        ("created >= -30d", "'created >= -30d'"),
    ],
)
def test_unsupported_jql_is_400_naming_the_part(emu, http, jql, part):
    gw = gateway(emu, http, JIRA_READ)
    body = jira_error(gw.jira("/rest/api/3/search/jql", jql=jql), 400)
    assert body["errors"] == {}
    (message,) = body["errorMessages"]
    assert part in message and "supports" in message


@pytest.mark.parametrize("jql", ["", "ORDER BY key"])
def test_unbounded_jql_is_refused(emu, http, jql):
    gw = gateway(emu, http, JIRA_READ)
    body = jira_error(gw.jira("/rest/api/3/search/jql", jql=jql), 400)
    assert body["errorMessages"] == [
        "Unbounded JQL queries are not allowed here. Please add a search restriction to your "
        "query."
    ]


def test_jql_pages_with_next_page_token_and_post(emu, http):
    gw = gateway(emu, http, JIRA_READ)
    jql = "project in (ACME, OPS) ORDER BY key"
    first = search(gw, jql, maxResults=3, fields="key")
    assert keys(first) == ["ACME-1", "ACME-2", "ACME-3"]
    assert first["isLast"] is False
    second = search(gw, jql, maxResults=3, fields="key", nextPageToken=first["nextPageToken"])
    assert keys(second) == ["OPS-1"] and second["isLast"] is True
    # A token belongs to its query.
    other = gw.jira("/rest/api/3/search/jql", jql="project = ACME",
                    nextPageToken=first["nextPageToken"])
    jira_error(other, 400)
    posted = gw.post("jira", ACME, "/rest/api/3/search/jql",
                     {"jql": jql, "maxResults": 3, "fields": ["key", "summary"]})
    assert posted.status_code == 200
    assert keys(posted.json()) == ["ACME-1", "ACME-2", "ACME-3"]
    assert posted.json()["issues"][0]["fields"] == {"summary": "Connect the platform to Jira"}
    bad = gw.post("jira", ACME, "/rest/api/3/search/jql", {"jql": jql, "fields": "key"})
    jira_error(bad, 400)


@pytest.mark.parametrize("version", ["2", "3"])
def test_the_removed_search_endpoint_is_410_as_on_jira_cloud(emu, http, version):
    gw = gateway(emu, http, JIRA_READ)
    for response in (
        gw.jira(f"/rest/api/{version}/search", jql="project = ACME"),
        gw.post("jira", ACME, f"/rest/api/{version}/search", {"jql": "project = ACME"}),
    ):
        body = jira_error(response, 410)
        assert "/rest/api/3/search/jql" in body["errorMessages"][0]
        assert "CHANGE-2046" in body["errorMessages"][0]


# --- issues --------------------------------------------------------------------------------------


def test_get_issue_by_key_or_id_on_v2_and_v3(emu, http):
    gw = gateway(emu, http, JIRA_READ)
    v3 = gw.jira("/rest/api/3/issue/ACME-2")
    assert v3.status_code == 200
    issue = v3.json()
    assert issue["key"] == "ACME-2"
    assert issue["fields"]["issuetype"]["name"] == "Bug"
    assert gw.jira(f"/rest/api/2/issue/{issue['id']}").json()["key"] == "ACME-2"
    assert gw.jira("/rest/api/3/issue/acme-2").json()["key"] == "ACME-2"
    assert gw.jira("/rest/api/3/issue/ACME-2", fields="summary").json()["fields"] == {
        "summary": "Rotate the refresh token safely"
    }
    missing = jira_error(gw.jira("/rest/api/3/issue/ACME-99"), 404)
    assert missing["errorMessages"] == [
        "Issue does not exist or you do not have permission to see it."
    ]
    # Another site's issue is not this site's.
    jira_error(gw.jira("/rest/api/3/issue/GLX-1"), 404)


def new_issue(description=None, **fields) -> dict:
    body = {
        "project": {"key": "ACME"},
        "summary": "Emulated issue",
        "issuetype": {"name": "Task"},
    }
    if description is not None:
        body["description"] = description
    body.update(fields)
    return {"fields": body}


def test_a_created_issue_shows_up_in_get_and_search(emu, http):
    gw = gateway(emu, http, "read:jira-work write:jira-work")
    created = gw.post("jira", ACME, "/rest/api/3/issue", new_issue(ADF))
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"id", "key", "self"}
    assert body["key"] == "ACME-4"
    assert body["self"] == (
        f"{emu.api_base_url}/ex/jira/{site_id(emu, ACME)}/rest/api/3/issue/{body['id']}"
    )
    fetched = gw.jira(f"/rest/api/3/issue/{body['key']}").json()
    assert fetched["id"] == body["id"]
    assert fetched["fields"]["description"] == ADF
    assert fetched["fields"]["status"]["name"] == "To Do"
    assert fetched["fields"]["reporter"]["accountId"] == emu.user["account_id"]
    assert "ACME-4" in keys(search(gw, "project = ACME", fields="key"))
    assert keys(search(gw, 'text ~ "ADF"', fields="key")) == ["ACME-4"]
    second = gw.post("jira", ACME, "/rest/api/3/issue",
                     new_issue(project={"id": "10001"}, issuetype={"id": "10003"}))
    assert second.json()["key"] == "OPS-2"
    assert gw.jira("/rest/api/3/issue/OPS-2").json()["fields"]["issuetype"]["name"] == "Bug"


def test_v3_refuses_a_string_description_and_v2_takes_it(emu, http):
    gw = gateway(emu, http, "read:jira-work write:jira-work")
    refused = jira_error(gw.post("jira", ACME, "/rest/api/3/issue", new_issue("plain")), 400)
    assert refused == {
        "errorMessages": [],
        "errors": {
            "description": "Operation value must be an Atlassian Document (see the Atlassian "
            "Document Format)"
        },
    }
    assert jira_error(gw.post("jira", ACME, "/rest/api/2/issue", new_issue(ADF)), 400)[
        "errors"] == {"description": "Operation value must be a string"}
    taken = gw.post("jira", ACME, "/rest/api/2/issue", new_issue("First line.\nSecond line."))
    assert taken.status_code == 201, taken.text
    key = taken.json()["key"]
    assert taken.json()["self"].endswith(f"/rest/api/2/issue/{taken.json()['id']}")
    assert gw.jira(f"/rest/api/2/issue/{key}").json()["fields"]["description"] == (
        "First line.\nSecond line."
    )
    as_adf = gw.jira(f"/rest/api/3/issue/{key}").json()["fields"]["description"]
    assert as_adf["type"] == "doc" and as_adf["version"] == 1
    assert as_adf["content"][0]["content"][0] == {"type": "text", "text": "First line."}


def test_create_issue_names_each_bad_field(emu, http):
    gw = gateway(emu, http, "write:jira-work")
    body = jira_error(
        gw.post("jira", ACME, "/rest/api/3/issue",
                {"fields": {"project": {"key": "NOPE"}, "issuetype": {"name": "Saga"},
                            "priority": {"name": "High"}}}),
        400,
    )
    assert body["errors"] == {
        "project": "Specify a valid project ID or key",
        "summary": "You must specify a summary of the issue.",
        "issuetype": "The issue type selected is invalid.",
        "priority": "Field 'priority' cannot be set. It is not on the appropriate screen, or "
        "unknown.",
    }
    jira_error(gw.post("jira", ACME, "/rest/api/3/issue", ["not", "an", "object"]), 400)
    # GLX is a project of globex, not of acme.
    other_site = gw.post("jira", ACME, "/rest/api/3/issue", new_issue(project={"key": "GLX"}))
    assert jira_error(other_site, 400)["errors"] == {"project": "Specify a valid project ID or key"}


def test_creating_needs_a_write_scope(emu, http):
    gw = gateway(emu, http, JIRA_READ)
    assert_scope_mismatch(gw.post("jira", ACME, "/rest/api/3/issue", new_issue(ADF)))
    assert_scope_mismatch(gw.post("jira", ACME, "/rest/api/2/issue", new_issue("text")))


def test_created_issues_are_shared_through_the_state_file(tmp_path, http):
    state = tmp_path / "emulator-state.json"
    with Emulator(state_path=state) as first, Emulator(state_path=state) as second:
        gw = gateway(first, http, "read:jira-work write:jira-work")
        created = gw.post("jira", ACME, "/rest/api/3/issue", new_issue(ADF))
        assert created.json()["key"] == "ACME-4"
        other = Gateway(second, http, gw.token)
        assert other.jira("/rest/api/3/issue/ACME-4").json()["fields"]["summary"] == (
            "Emulated issue"
        )
        again = other.post("jira", ACME, "/rest/api/3/issue", new_issue(ADF))
        assert again.json()["key"] == "ACME-5"


# --- scopes from the OpenAPI documents -----------------------------------------------------------


def test_granular_alternatives_are_accepted_and_must_be_complete(emu, http):
    search_granular = (
        "read:issue-details:jira read:audit-log:jira read:avatar:jira "
        "read:field-configuration:jira read:issue-meta:jira"
    )
    gw = gateway(emu, http, search_granular)
    assert keys(search(gw, "project = ACME", fields="key"))
    partial_scopes = search_granular.rsplit(" ", 1)[0]
    partial = gateway(emu, http, partial_scopes)
    assert_scope_mismatch(partial.jira("/rest/api/3/search/jql", jql="project = ACME"))
    create_granular = (
        "write:issue:jira write:comment:jira write:comment.property:jira write:attachment:jira "
        "read:issue:jira"
    )
    writer = gateway(emu, http, create_granular)
    assert writer.post("jira", ACME, "/rest/api/3/issue", new_issue(ADF)).status_code == 201


def test_a_wrong_method_is_405_and_an_unserved_path_404(emu, http):
    gw = gateway(emu, http, JIRA_READ)
    wrong = gw.http.delete(gw.url("jira", ACME, "/rest/api/3/issue/ACME-1"),
                           headers={"Authorization": f"Bearer {gw.token}"})
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, PUT"
    jira_error(gw.jira("/rest/api/2/nothing-here"), 404)


CONCRETE = {"{issueIdOrKey}": "ACME-1", "{projectIdOrKey}": "ACME", "{id}": "196609"}


def operations() -> list[dict]:
    return json.loads(OPERATIONS.read_text())["operations"]


def concrete(path: str) -> str:
    path = path.replace("/spaces/{id}/", "/spaces/98306/")
    for template, value in CONCRETE.items():
        path = path.replace(template, value)
    return path


def call(gw: Gateway, op: dict) -> httpx.Response:
    path = concrete(op["path"])
    if op["method"] in ("PUT", "DELETE"):
        body = {"webhookIds": [1]} if "/webhook" in path else {"fields": {"summary": "Edited"}}
        return gw.http.request(op["method"], gw.url(op["product"], ACME, path), json=body,
                               headers={"Authorization": f"Bearer {gw.token}"})
    if op["method"] == "POST" and path.endswith("/webhook"):
        return gw.post(op["product"], ACME, path, {"url": "http://127.0.0.1:9/hook", "webhooks": [
            {"jqlFilter": "project = ACME", "events": ["jira:issue_created"]}]})
    if op["method"] == "POST":
        body = new_issue(ADF) if path.endswith("/issue") else {"jql": "project = ACME"}
        if path.startswith("/rest/api/2/issue"):
            body = new_issue("text")
        return gw.post(op["product"], ACME, path, body)
    params = {"jql": "project = ACME"} if "/search" in path else {}
    if op["product"] == "confluence" and "search" in path:
        params = {"cql": "type = page"}
    return gw.get(op["product"], ACME, path, **params)


@pytest.mark.parametrize("op", operations(), ids=lambda op: f"{op['method']} {op['path']}")
def test_every_operation_takes_each_listed_alternative_and_no_less(emu, http, op):
    for alternative in op["alternatives"]:
        scopes = alternative["scopes"]
        allowed = call(gateway(emu, http, " ".join(scopes)), op)
        assert allowed.status_code != 401, (scopes, allowed.text)
        short = gateway(emu, http, " ".join(["read:me", *scopes[1:]]))
        assert_scope_mismatch(call(short, op))
    if op["any_product_scope"]:
        product_scope = "manage:jira-webhook" if op["product"] == "jira" else "search:confluence"
        assert call(gateway(emu, http, product_scope), op).status_code == 200
        assert_scope_mismatch(call(gateway(emu, http, "read:me"), op))


def test_operations_file_covers_v2_as_mirrors_of_v3():
    ops = {(op["method"], op["path"]): op for op in operations()}
    v2 = [op for op in ops.values() if op["path"].startswith("/rest/api/2/")]
    assert {("GET", "/rest/api/2/myself"), ("GET", "/rest/api/2/serverInfo")} <= set(ops)
    for op in v2:
        v3 = ops[(op["method"], op["path"].replace("/rest/api/2/", "/rest/api/3/"))]
        assert op["mirrors"] == f"{v3['method']} {v3['path']}"
        assert op["alternatives"] == v3["alternatives"]


@pytest.mark.skipif(not SOURCES.is_dir(), reason="scope sources not mounted")
def test_operations_file_is_up_to_date_with_the_build_script():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_gateway_operations.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


# --- Confluence ----------------------------------------------------------------------------------


def test_cql_content_search(emu, http):
    gw = gateway(emu, http, CONFLUENCE_READ)
    found = gw.wiki("/wiki/rest/api/content/search", cql="type = page AND space = ENG")
    assert found.status_code == 200, found.text
    body = found.json()
    assert [c["title"] for c in body["results"]] == [
        "OAuth 2.0 integration runbook", "Token rotation",
    ]
    assert body["size"] == 2 and body["_links"]["base"] == "https://acme.atlassian.net/wiki"
    page = body["results"][0]
    assert page["_links"]["self"] == "https://acme.atlassian.net/wiki/rest/api/content/196609"
    assert page["_links"]["webui"].startswith("/spaces/ENG/pages/196609/")
    titled = gw.wiki("/wiki/rest/api/content/search", cql='title ~ "rotation"').json()
    assert [c["id"] for c in titled["results"]] == ["196610"]
    text = gw.wiki("/wiki/rest/api/content/search", cql='text ~ "callback" AND type = page')
    assert [c["id"] for c in text.json()["results"]] == ["196609"]
    paged = gw.wiki("/wiki/rest/api/content/search", cql="type = page", limit=2).json()
    assert paged["size"] == 2 and paged["_links"]["next"].startswith("/rest/api/content/search?")


def test_cql_search_wraps_content_in_results(emu, http):
    gw = gateway(emu, http, CONFLUENCE_READ)
    response = gw.wiki("/wiki/rest/api/search", cql="space = HR")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["totalSize"] == 1 and body["cqlQuery"] == "space = HR"
    (result,) = body["results"]
    assert result["content"]["id"] == "196611"
    assert result["resultGlobalContainer"]["title"] == "People"


@pytest.mark.parametrize(
    ("cql", "part"),
    [
        ("creator = currentUser()", "'creator = currentUser()'"),
        ("space = ENG OR space = HR", "'OR'"),
        ("label = runbook", "'label = runbook'"),
    ],
)
def test_unsupported_cql_is_400_naming_the_part(emu, http, cql, part):
    gw = gateway(emu, http, CONFLUENCE_READ)
    response = gw.wiki("/wiki/rest/api/content/search", cql=cql)
    assert response.status_code == 400
    body = response.json()
    assert body["statusCode"] == 400 and part in body["message"]


def test_cql_search_needs_search_confluence(emu, http):
    gw = gateway(emu, http, "read:confluence-content.summary read:page:confluence")
    assert_scope_mismatch(gw.wiki("/wiki/rest/api/content/search", cql="type = page"))
    assert gw.wiki("/wiki/rest/api/content/196609").status_code == 200


def test_content_by_id_with_expansions(emu, http):
    gw = gateway(emu, http, CONFLUENCE_READ)
    response = gw.wiki("/wiki/rest/api/content/196610", expand="body.storage,space,version")
    assert response.status_code == 200
    content = response.json()
    assert content["body"]["storage"] == {
        "value": "<p>Persist every rotated refresh token before using it.</p>",
        "representation": "storage",
    }
    assert content["space"]["key"] == "ENG" and content["version"]["number"] == 1
    assert content["_links"]["base"] == "https://acme.atlassian.net/wiki"
    assert "body" not in gw.wiki("/wiki/rest/api/content/196610").json()
    missing = gw.wiki("/wiki/rest/api/content/999")
    assert missing.status_code == 404 and missing.json()["statusCode"] == 404


def test_v2_pages_filter_and_page_with_a_cursor(emu, http):
    gw = gateway(emu, http, CONFLUENCE_READ)
    eng = gw.wiki("/wiki/api/v2/pages", **{"space-id": "98306"}).json()
    assert [p["title"] for p in eng["results"]] == [
        "OAuth 2.0 integration runbook", "Token rotation",
    ]
    assert all(p["spaceId"] == "98306" for p in eng["results"])
    assert eng["_links"] == {"base": "https://acme.atlassian.net/wiki"}
    titled = gw.wiki("/wiki/api/v2/pages", title="Onboarding").json()["results"]
    assert [p["id"] for p in titled] == ["196611"]
    first = gw.wiki("/wiki/api/v2/pages", limit=2)
    assert first.status_code == 200
    next_url = first.json()["_links"]["next"]
    assert next_url.startswith("/wiki/api/v2/pages?") and "cursor=" in next_url
    assert f"<{next_url}>; rel=\"next\"" in first.headers["link"]
    rest = gw.http.get(
        f"{emu.api_base_url}/ex/confluence/{site_id(emu, ACME)}{next_url}",
        headers={"Authorization": f"Bearer {gw.token}"},
    ).json()
    seen = [p["id"] for p in first.json()["results"]] + [p["id"] for p in rest["results"]]
    assert seen == ["196609", "196610", "196611"] and "next" not in rest["_links"]
    bad = gw.wiki("/wiki/api/v2/pages", cursor="made-up")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["code"] == "INVALID_REQUEST_PARAMETER"


def test_v2_page_by_id_and_a_space_s_pages(emu, http):
    gw = gateway(emu, http, CONFLUENCE_READ)
    page = gw.wiki("/wiki/api/v2/pages/196611", **{"body-format": "storage"}).json()
    assert page["title"] == "Onboarding" and page["spaceId"] == "98307"
    assert page["body"]["storage"]["value"] == "<p>Welcome to Acme.</p>"
    assert page["version"]["number"] == 1
    assert page["_links"]["webui"].startswith("/spaces/HR/pages/196611/")
    missing = gw.wiki("/wiki/api/v2/pages/1")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["status"] == 404
    in_space = gw.wiki("/wiki/api/v2/spaces/98307/pages").json()["results"]
    assert [p["id"] for p in in_space] == ["196611"]
    assert gw.wiki("/wiki/api/v2/spaces/1/pages").status_code == 404
    narrow = gateway(emu, http, "read:space:confluence")
    assert_scope_mismatch(narrow.wiki("/wiki/api/v2/pages"))
    assert narrow.wiki("/wiki/api/v2/spaces").status_code == 200
