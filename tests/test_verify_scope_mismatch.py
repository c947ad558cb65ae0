"""verify explains "scope does not match" against the emulator's world: acme has Jira and
Confluence, globex has Jira only; one grant per app and account holds both sites."""

from __future__ import annotations

import httpx
import pytest

from atlassian_playbook.api import ApiClient
from atlassian_playbook.emulator import Emulator
from atlassian_playbook.errors import PlaybookError
from atlassian_playbook.oauth import OAuthClient
from atlassian_playbook.target import emulator_settings
from atlassian_playbook.verify import check_calls, explain_scope_mismatch, verify_connection

MINIMAL = ("read:me", "read:jira-user", "read:confluence-space.summary", "offline_access")
WORK = (*MINIMAL, "read:jira-work")


class Source:
    def __init__(self, tokens) -> None:
        self.tokens = tokens

    def get(self):
        return self.tokens

    def refresh(self, stale):
        raise AssertionError("no refresh expected: a scope 401 is not an expired token")


@pytest.fixture
def emu():
    with Emulator(auto_consent=True) as emulator:
        yield emulator


@pytest.fixture
def connect(emu):
    """``connect((scopes, site), ...)``: consent once per pair (one grant), an ApiClient
    holding the last token, the scopes of the last consent."""
    opened: list = []

    def run(*consents: tuple[tuple[str, ...], str]) -> ApiClient:
        settings = emulator_settings(emu, scopes=consents[-1][0])
        oauth = OAuthClient(settings)
        opened.append(oauth)
        for scopes, site in consents:
            request = oauth.authorization_request(scopes)
            answer = httpx.get(f"{request.url}&emulator_site={site}")
            assert answer.status_code == 302, answer.text
            tokens = oauth.exchange_code(
                oauth.parse_callback(answer.headers["location"], request.state)
            )
        api = ApiClient(settings, Source(tokens), sleep=lambda s: None)
        opened.append(api)
        return api

    yield run
    for thing in opened:
        thing.close()


def test_a_scope_granted_on_another_site_is_named_with_both_fixes(connect):
    api = connect((WORK, "acme"), (MINIMAL, "globex"))
    report = verify_connection(api, requested_scopes=MINIMAL, site="globex")
    (call,) = check_calls(api, report, ["GET /rest/api/3/issue/GLX-1"])
    # The emulator answered 401 "scope does not match"; verify says why.
    assert call.ok is False and call.name == "call GET /rest/api/3/issue/GLX-1"
    assert "read:jira-work" in call.detail
    assert "granted on acme but not on globex" in call.detail
    assert "ATLASSIAN_SITE=acme" in call.hint and "choose globex" in call.hint
    assert call in report.checks and not report.ok


def test_a_scope_granted_nowhere_points_at_the_permissions_tab_and_a_new_consent(connect):
    api = connect((MINIMAL, "acme"))
    report = verify_connection(api, requested_scopes=MINIMAL)
    assert report.ok, report.to_text()
    (call,) = check_calls(
        api, report, ["GET https://api.atlassian.com/ex/jira/x/rest/api/3/issue/ACME-1"]
    )
    assert call.ok is False
    assert "granted on no site" in call.detail and "read:jira-work" in call.detail
    assert "read:jira-user" in call.detail  # what acme has
    assert "read:jira-work (classic, Jira API)" in call.hint
    assert "Permissions tab" in call.hint and "log in again" in call.hint
    mismatch = explain_scope_mismatch(
        "GET", f"/ex/jira/{report.chosen_site.id}/rest/api/3/issue/ACME-1", report
    )
    assert mismatch.cause == "not-granted"
    assert mismatch.needed[0] == ("read:jira-work",)


def test_a_jira_only_site_has_no_confluence_and_no_scope_fixes_it(connect):
    api = connect((MINIMAL, "acme"), (MINIMAL, "globex"))
    report = verify_connection(api, requested_scopes=MINIMAL, site="globex")
    spaces = report.check("Confluence spaces")
    assert spaces.ok is None
    assert spaces.detail.startswith("this site has no Confluence")
    assert "(Confluence is on acme)" in spaces.detail
    (call,) = check_calls(api, report, ["GET /wiki/api/v2/pages"])
    assert call.ok is False and "this site has no Confluence" in call.detail
    assert "ATLASSIAN_SITE=acme" in call.hint and "no scope fixes this" in call.hint


def test_with_no_site_that_has_the_product_the_hint_says_so(connect):
    api = connect((MINIMAL, "globex"))
    report = verify_connection(api, requested_scopes=MINIMAL)
    mismatch = explain_scope_mismatch(
        "GET", f"/ex/confluence/{report.chosen_site.id}/wiki/rest/api/space", report
    )
    assert mismatch.cause == "product-not-on-site" and mismatch.elsewhere == ()
    assert "None of the sites this connection reaches has Confluence" in mismatch.hint


def test_calls_that_are_not_gets_or_have_placeholders_are_judged_from_the_site(connect):
    api = connect((MINIMAL, "acme"))
    report = verify_connection(api, requested_scopes=MINIMAL)
    create, read = check_calls(
        api, report, ["POST /rest/api/3/issue", "GET /rest/api/3/issue/{issueIdOrKey}"]
    )
    assert create.ok is False and "write:jira-work" in create.detail
    assert read.ok is False and "read:jira-work" in read.detail
    (myself,) = check_calls(api, report, ["GET /rest/api/3/myself"])
    assert myself.ok is True and myself.detail == "answered on acme"


def test_identity_calls_are_judged_by_the_token_not_a_site(connect):
    api = connect((("read:jira-user", "offline_access"), "acme"))
    report = verify_connection(api, requested_scopes=("read:jira-user", "offline_access"))
    (me,) = check_calls(api, report, ["GET /me"])
    assert me.ok is False and "read:me" in me.detail and "token was not granted" in me.detail
    assert "User identity API" in me.hint


def test_a_malformed_call_is_an_error_with_the_fix(connect):
    api = connect((MINIMAL, "acme"))
    report = verify_connection(api, requested_scopes=MINIMAL)
    with pytest.raises(PlaybookError, match="no HTTP method"):
        check_calls(api, report, ["/rest/api/3/myself"])


def test_an_identity_only_grant_claims_nothing_about_what_atlassian_lists(connect):
    api = connect((("read:me", "offline_access"), "acme"))
    report = verify_connection(api, requested_scopes=("read:me", "offline_access"))
    resources = report.check("accessible resources")
    assert resources.ok is None and "not documented" in resources.detail
    assert "Atlassian lists no site" not in resources.detail
    scopes = report.check("scopes")
    assert scopes.ok is True and "every site" not in scopes.detail
    assert "no site listed" in scopes.detail
