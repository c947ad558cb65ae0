"""The scope advisor (endpoints to the smallest scope sets) and the `scopes` CLI commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from atlassian_playbook import advisor
from atlassian_playbook.advisor import advise, parse_endpoint, split_endpoints
from atlassian_playbook.errors import PlaybookError
from atlassian_playbook.scopes import required_scopes

ISSUE = "GET /rest/api/3/issue/{issueIdOrKey}"
CLOUD_ID = "3f9c1a52-7d4e-4b8a-9e21-6c0d5b7a8e14"
# GET issue's granular alternative, as Atlassian's Jira platform spec lists it.
ISSUE_GRANULAR = (
    "read:avatar:jira", "read:field-configuration:jira", "read:issue-meta:jira",
    "read:issue-security-level:jira", "read:issue.changelog:jira", "read:issue.vote:jira",
    "read:issue:jira", "read:status:jira", "read:user:jira",
)
MYSELF_GRANULAR = ("read:application-role:jira", "read:avatar:jira", "read:group:jira",
                   "read:user:jira")


def test_the_catalog_data_the_expectations_below_rest_on():
    assert required_scopes("GET", "/rest/api/3/issue/{issueIdOrKey}") == [
        ("read:jira-work",), ISSUE_GRANULAR]
    assert required_scopes("GET", "/rest/api/3/myself") == [("read:jira-user",), MYSELF_GRANULAR]
    assert required_scopes("POST", "/wiki/api/v2/pages") == [("write:page:confluence",)]


def test_smallest_sets_for_a_jira_and_a_confluence_v2_call():
    advice = advise([ISSUE, "POST /wiki/api/v2/pages"])
    assert advice.classic.scopes == ("read:jira-work", "write:page:confluence")
    assert advice.classic.exact and advice.granular.exact
    # Confluence v2 has granular scopes only: the classic set borrows one and says so.
    assert advice.classic.borrowed == ("POST /wiki/api/v2/pages",)
    assert advice.granular.scopes == (*ISSUE_GRANULAR, "write:page:confluence")
    assert advice.granular.borrowed == ()
    assert advice.classic.by_console_api() == [
        ("Jira API", {"classic": ["read:jira-work"]}),
        ("Confluence API", {"granular": ["write:page:confluence"]}),
    ]
    assert advice.granular.console_apis == ["Jira API", "Confluence API"]


def test_shared_scopes_count_once_and_identity_comes_first_on_the_console():
    advice = advise(["GET /rest/api/3/myself", ISSUE, "GET /me"])
    assert set(advice.classic.scopes) == {"read:jira-user", "read:jira-work", "read:me"}
    # read:avatar:jira and read:user:jira serve both Jira calls: 9 + 4 - 2.
    granular = set(advice.granular.scopes) - {"read:me"}
    assert granular == set(ISSUE_GRANULAR) | set(MYSELF_GRANULAR) and len(granular) == 11
    assert advice.granular.borrowed == ("GET /me",)  # /me has a classic scope only
    assert advice.granular.console_apis == ["User identity API", "Jira API"]


@pytest.mark.parametrize("endpoint", [
    "GET /rest/api/3/issue/ABC-1",
    "get /rest/api/3/issue/10001/",
    f"GET /ex/jira/{CLOUD_ID}/rest/api/3/issue/ABC-1",
    f"GET https://api.atlassian.com/ex/jira/{CLOUD_ID}/rest/api/3/issue/ABC-1?expand=names",
])
def test_real_ids_gateway_paths_and_full_urls_match_the_template(endpoint):
    advice = advise([endpoint])
    (one,) = advice.endpoints
    assert one.status == "covered" and one.operation == ISSUE
    assert advice.classic.scopes == ("read:jira-work",)
    assert advice.granular.scopes == ISSUE_GRANULAR


def test_unknown_any_token_and_undocumented_endpoints_are_reported_not_dropped():
    advice = advise([ISSUE, "GET /rest/api/3/serverInfo", "POST /builds/0.1/bulk",
                     "GET /rest/api/3/no-such-thing"])
    assert [e.status for e in advice.endpoints] == ["covered", "any-token", "no-scope", "unknown"]
    assert [e.endpoint.text for e in advice.any_token] == ["GET /rest/api/3/serverInfo"]
    assert [e.endpoint.text for e in advice.no_scope] == ["POST /builds/0.1/bulk"]
    (unknown,) = advice.unknown
    assert "/rest/api/3/" in unknown.hint and "/ex/{product}/{cloudid}" in unknown.hint
    # Only the covered endpoint shapes the sets.
    assert advice.classic.scopes == ("read:jira-work",)
    text = advice.to_text()
    for line in ("GET /rest/api/3/serverInfo", "POST /builds/0.1/bulk",
                 "GET /rest/api/3/no-such-thing  hint: Use the path"):
        assert line in text


def test_the_search_is_exact_and_greedy_only_beyond_the_cap(monkeypatch):
    # Greedy, one endpoint at a time, takes x, y, z (one new scope each); the optimum is a+b.
    candidates = [[("x",), ("a", "b")], [("y",), ("a", "b")], [("z",), ("a", "b")]]
    assert advisor._smallest_union(candidates) == (frozenset({"a", "b"}), True)
    monkeypatch.setattr(advisor, "MAX_COMBINATIONS", 4)  # 2 * 2 * 2 = 8 combinations
    assert advisor._smallest_union(candidates) == (frozenset({"x", "y", "z"}), False)
    # A choice already inside the forced scopes costs nothing, whatever the cap.
    assert advisor._smallest_union([[("a", "b")], [("x",), ("a",)]]) == (
        frozenset({"a", "b"}), True)


@pytest.mark.parametrize("text, message, hint", [
    ("/rest/api/3/myself", "has no HTTP method", "'GET /rest/api/3/myself'"),
    ("GTE /rest/api/3/myself", "no HTTP method", "Did you mean GET?"),
    ("GET", "has no API path", "GET /rest/api/3/issue/{issueIdOrKey}"),
    ("GET rest api", "has no API path", "no spaces"),
])
def test_malformed_endpoints_are_errors_with_the_fix(text, message, hint):
    with pytest.raises(PlaybookError) as caught:
        advise([ISSUE, text])
    assert message in caught.value.message and hint in caught.value.hint


def test_pasted_blocks_split_on_lines_and_semicolons():
    text = f"{ISSUE}\n\n# what the sync job calls\nGET /me; POST /wiki/api/v2/pages ;\n"
    assert split_endpoints(text) == [ISSUE, "GET /me", "POST /wiki/api/v2/pages"]
    assert parse_endpoint("  post   /wiki/api/v2/pages ").text == "POST /wiki/api/v2/pages"


def test_advice_to_dict_is_json_with_the_console_grouping():
    data = json.loads(json.dumps(advise([ISSUE, "POST /wiki/api/v2/pages"]).to_dict()))
    assert data["classic"]["console_apis"] == {
        "Jira API": {"classic": ["read:jira-work"]},
        "Confluence API": {"granular": ["write:page:confluence"]},
    }
    assert data["endpoints"][0]["alternatives"][0] == {"kind": "classic",
                                                       "scopes": ["read:jira-work"]}
    assert "authorization URL" in data["offline_access"]


# --- the CLI ------------------------------------------------------------------------------


def cli(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "atlassian_playbook", "--env-file", str(tmp_path / ".env"), *args],
        cwd=tmp_path, input=stdin, capture_output=True, text=True, timeout=60,
    )


def test_scopes_for_prints_each_set_grouped_as_the_permissions_tab(tmp_path):
    result = cli(tmp_path, "scopes", "for", ISSUE, "POST /wiki/api/v2/pages")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index("Smallest classic set: 2 scopes")
    assert lines[start + 1:start + 7] == [
        '  in .env: ATLASSIAN_SCOPES="read:jira-work write:page:confluence offline_access"',
        "  Permissions tab, Jira API:",
        "    Classic scopes: read:jira-work",
        "  Permissions tab, Confluence API:",
        "    Granular scopes: write:page:confluence",
        "  No classic scope covers these, so granular ones are in the set: "
        "POST /wiki/api/v2/pages",
    ]
    assert "Smallest granular set: 10 scopes" in lines
    assert "offline_access" in lines[-1] and "authorization URL" in lines[-1]
    assert "{'" not in result.stdout  # no dict dump


def test_scopes_for_json_and_stdin(tmp_path):
    piped = cli(tmp_path, "scopes", "for", "--json", "GET /me", "-",
                stdin=f"{ISSUE}\n# comment\nGET /rest/api/3/serverInfo\n")
    assert piped.returncode == 0, piped.stderr
    data = json.loads(piped.stdout)
    assert [e["endpoint"] for e in data["endpoints"]] == [
        "GET /me", ISSUE, "GET /rest/api/3/serverInfo"]
    assert data["classic"]["scopes"] == ["read:me", "read:jira-work"]
    assert data["endpoints"][2]["status"] == "any-token"


def test_scopes_for_malformed_or_empty_input_says_how_to_write_it(tmp_path):
    bad = cli(tmp_path, "scopes", "for", "/rest/api/3/myself")
    assert bad.returncode == 1 and bad.stdout == ""
    assert "has no HTTP method" in bad.stderr and "hint: Put the method first" in bad.stderr
    empty = cli(tmp_path, "scopes", "for", "-", stdin="\n# nothing\n")
    assert empty.returncode == 1 and "No endpoint given" in empty.stderr


def test_scopes_check_names_the_argument_and_a_cli_command(tmp_path):
    result = cli(tmp_path, "scopes", "check", "read:jira-wrk", "read:me")
    assert result.returncode == 1
    assert "The scope read:jira-wrk you gave is not a known Atlassian scope" in result.stderr
    assert "did you mean read:jira-work" in result.stderr.lower()
    assert "`atlassian-playbook scopes list`" in result.stderr
    assert "`atlassian-playbook scopes for" in result.stderr
    assert "ATLASSIAN_SCOPES" not in result.stderr
    assert "atlassian_playbook." not in result.stderr and "()" not in result.stderr


def test_scopes_list_groups_by_api_and_kind_classic_first(tmp_path):
    result = cli(tmp_path, "scopes", "list", "--api", "jira")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    headers = [line for line in lines if line and not line.startswith(" ")]
    assert headers == [
        "jira · classic · 6 scopes (console: Jira API, Classic scopes tab)",
        "jira · granular · 208 scopes (console: Jira API, Granular scopes tab)",
        "214 scopes",
    ]
    classic = lines[1:lines.index("") ]
    assert [line.split()[0] for line in classic] == [
        "manage:jira-configuration", "manage:jira-project", "manage:jira-webhook",
        "read:jira-user", "read:jira-work", "write:jira-work"]
