"""verify_connection() against the emulator: checks, the scope table, failures as checks."""

from __future__ import annotations

import json

import httpx
import pytest

from atlassian_playbook.api import ApiClient
from atlassian_playbook.config import Settings
from atlassian_playbook.emulator import Emulator
from atlassian_playbook.oauth import OAuthClient
from atlassian_playbook.target import emulator_settings
from atlassian_playbook.tokens import TokenSet
from atlassian_playbook.verify import Check, VerificationReport, verify_connection

MINIMAL = ("read:me", "read:jira-user", "read:confluence-space.summary", "offline_access")
CHECKS = [
    "accessible resources",
    "site chosen",
    "scopes",
    "/me",
    "Jira myself",
    "Confluence spaces",
]


@pytest.fixture
def emu():
    with Emulator(auto_consent=True) as emulator:
        yield emulator
        while OPEN_CLIENTS:
            OPEN_CLIENTS.pop().close()


# The clients client() made, closed by the emu fixture before the emulator stops.
OPEN_CLIENTS: list[ApiClient] = []


def consent(emu, scopes, site="acme") -> tuple[Settings, TokenSet]:
    settings = emulator_settings(emu, scopes=tuple(scopes))
    with OAuthClient(settings) as oauth:
        request = oauth.authorization_request(scopes)
        answer = httpx.get(f"{request.url}&emulator_site={site}")
        assert answer.status_code == 302, answer.text
        return settings, oauth.exchange_code(
            oauth.parse_callback(answer.headers["location"], request.state)
        )


class Source:
    def __init__(self, settings: Settings, tokens: TokenSet) -> None:
        self.tokens, self.oauth, self.refreshes = tokens, OAuthClient(settings), 0

    def get(self) -> TokenSet:
        return self.tokens

    def refresh(self, stale: TokenSet) -> TokenSet:
        self.refreshes += 1
        self.tokens = self.oauth.refresh(self.tokens.refresh_token)
        return self.tokens


def client(emu, scopes=MINIMAL, site="acme") -> tuple[ApiClient, Source]:
    settings, tokens = consent(emu, scopes, site)
    source = Source(settings, tokens)
    api = ApiClient(settings, source, sleep=lambda seconds: None, owns=[source.oauth])
    OPEN_CLIENTS.append(api)
    return api, source


def rows(report: VerificationReport) -> dict[str, dict]:
    return {row["scope"]: row for row in report.scope_table}


def test_minimal_scopes_verify_with_every_check_ok(emu):
    api, _ = client(emu)
    report = verify_connection(api, requested_scopes=MINIMAL)
    assert [c.name for c in report.checks] == CHECKS
    assert [c.ok for c in report.checks] == [True] * 6, report.to_text()
    assert report.ok
    assert report.chosen_site.name == "acme"
    assert report.missing_scopes == ()

    table = rows(report)
    assert list(table) == list(MINIMAL)
    assert table["read:jira-user"] == {
        "scope": "read:jira-user",
        "requested": True,
        "granted (token)": None,
        "granted on acme": True,
        "note": "",
    }
    # Identity and offline_access are not site scopes: no per-site answer.
    assert table["read:me"]["granted on acme"] is None
    assert table["read:me"]["granted (token)"] is True
    assert table["offline_access"]["granted on acme"] is None
    assert table["offline_access"]["granted (token)"] is True
    assert "refresh token was issued" in table["offline_access"]["note"]

    text = report.to_text().splitlines()
    assert text[0] == ("Connection: Ada Lovelace <ada.lovelace@example.com> "
                       "(5b10ac8d82e05b22cc7d4ef5) on acme (https://acme.atlassian.net)")
    assert text[4] == "ok  /me  Ada Lovelace (5b10...)"
    assert text[5].startswith("ok  Jira myself  Ada Lovelace")
    assert "ENG, HR" in text[6] and "v1" in text[6]
    assert text[-1] == "verified"


def test_scope_requested_after_consent_is_flagged_missing_with_the_fix(emu):
    api, _ = client(emu)
    requested = (*MINIMAL, "read:jira-work")
    report = verify_connection(api, requested_scopes=requested)
    scopes = report.check("scopes")
    assert scopes.ok is False
    assert "read:jira-work" in scopes.detail
    assert "Permissions tab" in scopes.hint and "choosing this site" in scopes.hint
    assert report.missing_scopes == ("read:jira-work",)
    assert rows(report)["read:jira-work"]["granted on acme"] is False
    assert rows(report)["read:jira-work"]["note"] == "MISSING"
    assert not report.ok
    line = next(line for line in report.to_text().splitlines() if "  scopes  " in line)
    assert line.startswith("FAILED  scopes") and "hint:" in line
    # The other checks still ran.
    assert report.check("/me").ok is True and report.check("Jira myself").ok is True


def test_two_sites_without_a_choice_fail_site_chosen_and_show_both_columns(emu):
    consent(emu, ("read:jira-user", "offline_access"), site="acme")
    api, _ = client(emu, ("read:me", "read:jira-work", "offline_access"), site="globex")
    requested = ("read:me", "read:jira-user", "read:jira-work", "offline_access")
    report = verify_connection(api, requested_scopes=requested)

    assert report.check("accessible resources").ok is True
    chosen = report.check("site chosen")
    assert chosen.ok is False and "ATLASSIAN_SITE" in chosen.hint
    assert "acme" in chosen.detail and "globex" in chosen.detail
    assert report.chosen_site is None
    assert report.check("Jira myself").ok is None
    assert report.check("Confluence spaces").ok is None

    table = rows(report)
    assert table["read:jira-user"]["granted on acme"] is True
    assert table["read:jira-user"]["granted on globex"] is False
    assert table["read:jira-work"]["granted on acme"] is False
    assert table["read:jira-work"]["granted on globex"] is True
    scopes = report.check("scopes")
    assert scopes.ok is False
    assert "read:jira-user is granted on acme but not on globex" in scopes.detail


def test_choosing_the_site_where_the_scope_is_missing_skips_jira_with_the_scope(emu):
    consent(emu, ("read:jira-user", "offline_access"), site="acme")
    api, _ = client(emu, ("read:me", "read:jira-work", "offline_access"), site="globex")
    report = verify_connection(
        api, requested_scopes=("read:me", "read:jira-user", "offline_access"), site="globex"
    )
    assert report.chosen_site.name == "globex"
    assert report.check("scopes").ok is False
    assert report.missing_scopes == ("read:jira-user",)
    jira = report.check("Jira myself")
    assert jira.ok is None and "read:jira-user" in jira.detail and "globex" in jira.detail
    # globex has no Confluence: nothing granted for it there.
    assert report.check("Confluence spaces").ok is None


def test_choosing_a_site_by_url_verifies_it(emu):
    consent(emu, ("read:jira-user", "offline_access"), site="acme")
    api, _ = client(emu, ("read:me", "read:jira-work", "offline_access"), site="globex")
    report = verify_connection(
        api, requested_scopes=("read:jira-user",), site="https://acme.atlassian.net"
    )
    assert report.chosen_site.name == "acme"
    assert report.check("scopes").ok is True
    # read:jira-work is globex's, not acme's: not reported as granted here.
    assert "read:jira-work" not in report.check("scopes").detail
    assert report.check("Jira myself").ok is True


def test_no_refresh_token_flags_offline_access(emu):
    api, _ = client(emu, ("read:me", "read:jira-user"))
    report = verify_connection(
        api, requested_scopes=("read:me", "read:jira-user", "offline_access")
    )
    assert report.missing_scopes == ("offline_access",)
    scopes = report.check("scopes")
    assert scopes.ok is False and "offline_access" in scopes.hint
    assert "Add the missing scopes" not in scopes.hint  # only offline_access is missing
    assert "no refresh token" in rows(report)["offline_access"]["note"]


def test_has_refresh_token_passed_in_wins(emu):
    api, _ = client(emu)
    report = verify_connection(api, requested_scopes=MINIMAL, has_refresh_token=False)
    assert report.missing_scopes == ("offline_access",)


def test_me_is_skipped_when_read_me_was_not_requested(emu):
    api, _ = client(emu, ("read:jira-user", "offline_access"))
    report = verify_connection(api, requested_scopes=("read:jira-user", "offline_access"))
    me = report.check("/me")
    assert me.ok is None and "read:me" in me.detail
    assert report.ok


def test_confluence_is_skipped_naming_both_scopes_when_neither_is_granted(emu):
    api, _ = client(emu, ("read:me", "read:jira-user", "offline_access"))
    report = verify_connection(api, requested_scopes=("read:me", "read:jira-user"))
    confluence = report.check("Confluence spaces")
    assert confluence.ok is None
    assert "read:confluence-space.summary" in confluence.detail
    assert "read:space:confluence" in confluence.detail


def test_a_failing_call_becomes_a_failed_check_and_the_rest_still_run(emu):
    api, _ = client(emu)
    emu.inject_fault("/me", status=503, times=10)
    report = verify_connection(api, requested_scopes=MINIMAL)
    me = report.check("/me")
    assert me.ok is False and "503" in me.detail and me.hint
    assert report.check("Jira myself").ok is True
    assert not report.ok


def test_expired_token_is_refreshed_once_during_verification(emu):
    api, source = client(emu)
    emu.advance_clock(3601)
    report = verify_connection(api, requested_scopes=MINIMAL)
    assert report.ok, report.to_text()
    assert source.refreshes == 1


def test_accessible_resources_failing_skips_the_rest(emu):
    api, _ = client(emu)
    emu.inject_fault("/oauth/token/accessible-resources", status=500, times=10, server="api")
    report = verify_connection(api, requested_scopes=MINIMAL)
    assert report.check("accessible resources").ok is False
    assert [c.ok for c in report.checks[1:]] == [None] * 5
    assert not report.ok


def test_no_site_at_all_fails_with_the_consent_hint(emu):
    # The consent gave identity scopes only, yet Jira scopes are asked for: no site reached.
    api, _ = client(emu, ("read:me", "offline_access"))
    requested = ("read:me", "read:jira-user", "offline_access")
    report = verify_connection(api, requested_scopes=requested)
    resources = report.check("accessible resources")
    assert resources.ok is False
    assert "at least one" in resources.hint and "choose a site" in resources.hint
    assert report.check("/me").ok is True
    assert not report.ok


def test_identity_only_grant_reaching_no_site_is_expected_not_a_failure(emu):
    # A Clerk sign-in (read:me, offline_access): Atlassian lists no site for such a grant.
    api, _ = client(emu, ("read:me", "offline_access"))
    report = verify_connection(api, requested_scopes=("read:me", "offline_access"))
    assert report.check("accessible resources").ok is None
    assert report.check("/me").ok is True
    assert report.ok, report.to_text()


def test_report_is_json_safe_and_holds_no_secret(emu):
    api, source = client(emu)
    emu.advance_clock(3601)  # force a rotation so both generations of tokens exist
    first = source.tokens
    report = verify_connection(api, requested_scopes=(*MINIMAL, "read:jira-work"))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["chosen_site"]["name"] == "acme"
    assert [c["name"] for c in data["checks"]] == CHECKS
    blob = json.dumps(data) + report.to_text()
    for token in (first, source.tokens):
        assert token.access_token.reveal() not in blob
        assert token.refresh_token.reveal() not in blob
    assert emu.default_client.client_secret.reveal() not in blob


def test_check_text():
    assert Check("x", None, "why").to_text() == "skipped x  why"
    assert Check("x", False, "bad", "fix it").to_text() == "FAILED  x  bad  hint: fix it"
    assert Check("x", True, "fine", "unused").to_text() == "ok      x  fine"
