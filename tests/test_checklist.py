import inspect
import json
import re

import pytest

from atlassian_playbook.checklist import (
    PERSONAL_DATA_CONFIRMATION,
    PROFILES,
    TABS,
    build_checklist,
    is_placeholder,
)
from atlassian_playbook.config import DEFAULT_REDIRECT_URI
from atlassian_playbook.errors import ConfigError
from atlassian_playbook.presets import preset
from atlassian_playbook.profiles import get_profile

# The developer console's checklists (a service account's has no console steps:
# tests/test_service_account_notebook.py checks it).
PROFILES = [p for p in PROFILES if get_profile(p).has_console_steps]

MERGE_CALLBACK_URL = get_profile("merge").callback.url
CLERK_URI = "https://clerk.acme.example/v1/oauth_callback"


def _values(checklist) -> dict[str, str]:
    """Every (step id / label) -> value, for assertions that do not care about order."""
    return {f"{s.id}/{k}": v for s in checklist.steps for k, v in s.values.items()}


def _all_text(checklist) -> str:
    return json.dumps(checklist.to_dict())


# --- every profile -------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_step_ids_are_unique_slugs_and_tabs_are_known(profile):
    steps = build_checklist(profile).steps
    ids = [s.id for s in steps]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i) for i in ids)
    assert {s.tab for s in steps} <= set(TABS)


@pytest.mark.parametrize("profile", PROFILES)
def test_step_ids_are_stable_for_persisted_progress(profile):
    first = [s.id for s in build_checklist(profile).steps]
    again = [s.id for s in build_checklist(profile, app_name="X", vendor_name="Y").steps]
    assert first == again


@pytest.mark.parametrize("profile", PROFILES)
def test_policy_note_says_one_shared_app_and_the_2026_rule(profile):
    note = build_checklist(profile).policy_note
    assert "ONE distributable" in note
    assert "consent" in note
    assert "organisation's own integration" in note
    assert "create their own individual 3LO apps" in note
    assert "2026-01-01" in note


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_states_the_console_traps(profile):
    checklist = build_checklist(profile)
    offline = checklist.step("offline-access")
    assert "authorization URL" in offline.title + offline.detail
    assert "Permissions tab" in offline.detail or "not on this tab" in offline.title
    assert "consent again" in checklist.step("permissions-" + _first_api_slug(checklist)).detail
    sharing = checklist.step("distribution-sharing")
    assert sharing.values["Distribution status"] == "Sharing"
    assert "Not sharing" in sharing.detail and "Something went wrong" in sharing.detail
    callback = checklist.step("authorization-callback").detail
    for part in ("scheme", "host", "port", "path", "trailing slash"):
        assert part in callback


def _first_api_slug(checklist) -> str:
    return checklist.console_apis[0].lower().replace(" ", "-")


@pytest.mark.parametrize("profile", PROFILES)
def test_no_secret_value_anywhere(profile):
    checklist = build_checklist(profile)
    secret_fields = {
        f"{s.id}/{k}": v
        for s in checklist.steps
        for k, v in s.values.items()
        if "secret" in k.lower()
    }
    assert secret_fields, "each profile says where the client secret goes"
    for where, value in secret_fields.items():
        # an instruction naming where to copy it from, not a token-shaped value
        assert "Settings tab" in value, where
        assert len(value.split()) >= 5, where
    settings = checklist.step("settings-credentials")
    assert ".env" in settings.values["ATLASSIAN_CLIENT_SECRET"]
    # nothing token-shaped (a long run of letters and digits) in any rendering
    text = _all_text(checklist) + checklist.to_text() + checklist.to_markdown()
    assert not re.search(r"(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{24,}", text)
    # and no way to pass one in
    assert not [p for p in inspect.signature(build_checklist).parameters if "secret" in p]


@pytest.mark.parametrize("profile", PROFILES)
def test_markdown_and_text_render_every_step_and_value(profile):
    checklist = build_checklist(profile, app_name="Acme Sync", vendor_name="Acme Ltd")
    markdown = checklist.to_markdown()
    text = checklist.to_text()
    assert markdown.count("- [ ] ") == len(checklist.steps)
    assert text.count("[ ] ") == len(checklist.steps)
    for step in checklist.steps:
        assert step.title in markdown and step.id in markdown
        assert step.title in text and step.id in text
        for value in step.values.values():
            assert f"`{value}`" in markdown
    assert checklist.policy_note in markdown
    assert "Acme Sync" in markdown and "Acme Ltd" in text


@pytest.mark.parametrize("profile", PROFILES)
def test_to_dict_is_json_and_round_trips_the_steps(profile):
    data = json.loads(_all_text(build_checklist(profile)))
    assert data["profile"] == profile
    assert [s["id"] for s in data["steps"]] == [s.id for s in build_checklist(profile).steps]
    assert all(
        set(s) == {"id", "tab", "title", "values", "detail", "required", "copyable"}
        for s in data["steps"]
    )


def test_unknown_profile_suggests_the_right_one():
    with pytest.raises(ConfigError) as info:
        build_checklist("merj")
    assert "merge" in info.value.hint


def test_unknown_scope_is_refused():
    with pytest.raises(ConfigError) as info:
        build_checklist("custom", scopes=["read:me", "read:jira-usr"])
    assert "read:jira-user" in info.value.hint


def test_relative_callback_is_refused():
    with pytest.raises(ConfigError):
        build_checklist("custom", callback_url="/callback")


# --- Merge ---------------------------------------------------------------------------------


def test_merge_checklist_values():
    checklist = build_checklist(
        "merge",
        app_name="Acme Sync",
        vendor_name="Acme Ltd",
        privacy_policy_url="https://acme.example/privacy",
    )
    assert checklist.callback_url == MERGE_CALLBACK_URL
    assert checklist.scopes == preset("merge")
    assert checklist.console_apis == ("Jira API", "Confluence API", "Personal data reporting API")
    values = _values(checklist)
    assert values["authorization-callback/Callback URL"] == MERGE_CALLBACK_URL
    assert values["create-app/Name"] == "Acme Sync"
    assert values["permissions-jira-api/Classic scopes"].split() == [
        "read:jira-work", "manage:jira-project", "manage:jira-configuration", "read:jira-user",
        "write:jira-work", "manage:jira-webhook",
    ]  # fmt: skip
    assert values["permissions-confluence-api/Granular scopes"].split() == [
        "read:space:confluence", "read:audit-log:confluence", "read:configuration:confluence",
    ]  # fmt: skip
    assert (
        "readonly:content.attachment:confluence"
        in values["permissions-confluence-api/Classic scopes"]
    )
    assert (
        values["permissions-personal-data-reporting-api/Classic scopes"] == "report:personal-data"
    )
    assert values["distribution-sharing/Vendor name"] == "Acme Ltd"
    assert values["distribution-sharing/Privacy policy URL"] == "https://acme.example/privacy"
    # Merge's guide: Yes only when Users and Groups are needed
    assert values["distribution-personal-data/Personal data declaration"] == (
        "Yes, if you sync Users and Groups through Merge; otherwise No"
    )
    assert values["distribution-personal-data/Confirmation (with Yes)"] == (
        PERSONAL_DATA_CONFIRMATION
    )
    assert "offline_access" not in " ".join(
        v for k, v in values.items() if k.startswith("permissions-")
    )
    assert checklist.placeholders == []
    # Merge's own documented set mixes classic and granular Confluence scopes: no nagging.
    assert checklist.warnings == ()


def test_merge_ends_with_the_partner_fields():
    last = build_checklist("merge").steps[-1]
    assert last.tab == "Partner"
    assert set(last.values) == {"OAuth Client Id", "OAuth Client Secret", "OAuth Redirect URI"}
    assert last.values["OAuth Redirect URI"] == MERGE_CALLBACK_URL


def test_merge_without_vendor_details_lists_placeholders():
    checklist = build_checklist("merge")
    assert ("distribution-sharing", "Vendor name") in checklist.placeholders
    assert ("distribution-sharing", "Privacy policy URL") in checklist.placeholders
    assert ("create-app", "Name") in checklist.placeholders
    assert "<REPLACE:" in checklist.to_text()


# --- Clerk ---------------------------------------------------------------------------------


def test_clerk_without_redirect_uri_uses_a_clearly_marked_placeholder():
    checklist = build_checklist("clerk")
    assert is_placeholder(checklist.callback_url)
    assert "Clerk" in checklist.callback_url
    assert ("authorization-callback", "Callback URL") in checklist.placeholders
    assert checklist.steps[0].id == "clerk-redirect-uri"  # needed before the Authorization tab


def test_clerk_checklist_values():
    checklist = build_checklist(
        "clerk",
        callback_url=CLERK_URI,
        vendor_name="Acme Ltd",
        privacy_policy_url="https://acme.example/privacy",
        terms_url="https://acme.example/terms",
    )
    assert checklist.scopes == ("read:me", "report:personal-data")
    assert checklist.console_apis == ("User identity API", "Personal data reporting API")
    values = _values(checklist)
    assert values["authorization-callback/Callback URL"] == CLERK_URI
    assert values["clerk-redirect-uri/Authorized redirect URI"] == CLERK_URI
    assert values["permissions-user-identity-api/Classic scopes"] == "read:me"
    assert values["distribution-sharing/Terms of service URL"] == "https://acme.example/terms"
    assert values["distribution-personal-data/Personal data declaration"] == "Yes"
    # the declaration confirms the reporting API, so Clerk requests its scope too
    assert checklist.step("clerk-credentials").values["Scopes"] == "report:personal-data"
    assert "shared credentials" in checklist.step("clerk-redirect-uri").detail
    sign_in = checklist.step("clerk-test-sign-in").detail
    assert "at least one" in sign_in and "one site at a time" in sign_in
    # Clerk asks for offline_access only when told, so its absence is not a warning here.
    assert checklist.warnings == ()
    assert checklist.placeholders == [("create-app", "Name")]


def test_clerk_extra_scopes_must_also_be_entered_in_clerk():
    checklist = build_checklist(
        "clerk", scopes=["read:jira-work", "report:personal-data", "offline_access"]
    )
    assert checklist.scopes[0] == "read:me"  # the minimum, added when left out
    credentials = checklist.step("clerk-credentials")
    # offline_access is optional for Clerk: named in the offline-access step, not handed over
    assert credentials.values["Scopes"] == "read:jira-work report:personal-data"
    assert "entered in Clerk" in credentials.detail
    assert "only if" in checklist.step("offline-access").values["Requested through"]
    assert checklist.console_apis == (
        "User identity API", "Jira API", "Personal data reporting API",
    )  # fmt: skip


def test_clerk_scopes_without_the_reporting_scope_get_a_warning():
    checklist = build_checklist("clerk", scopes=["read:me", "offline_access"])
    assert [w.code for w in checklist.warnings] == ["missing-report-personal-data"]


# --- custom --------------------------------------------------------------------------------


def test_custom_checklist_defaults_to_loopback_and_minimal_scopes():
    checklist = build_checklist("custom")
    assert checklist.callback_url == DEFAULT_REDIRECT_URI
    assert checklist.scopes == preset("minimal")
    values = _values(checklist)
    assert values["settings-credentials/ATLASSIAN_REDIRECT_URI"] == DEFAULT_REDIRECT_URI
    assert values["settings-credentials/ATLASSIAN_SCOPES"] == " ".join(preset("minimal"))
    assert values["distribution-personal-data/Personal data declaration"] == "No"
    assert not checklist.step("distribution-sharing").required
    assert all(s.tab != "Partner" for s in checklist.steps)


def test_custom_with_personal_data_adds_the_reporting_scope():
    checklist = build_checklist("custom", stores_personal_data=True)
    assert "report:personal-data" in checklist.scopes
    assert "Personal data reporting API" in checklist.console_apis
    assert checklist.step("distribution-personal-data").values["Confirmation"] == (
        PERSONAL_DATA_CONFIRMATION
    )


def test_custom_scopes_get_the_scope_warnings():
    checklist = build_checklist(
        "custom",
        scopes=["read:me"],
        stores_personal_data=True,
        callback_url="http://example.com/cb",
    )
    codes = [w.code for w in checklist.warnings]
    assert codes == ["missing-offline-access", "missing-report-personal-data", "callback-not-https"]
    assert "warning:" in checklist.to_text()
    offline = checklist.step("offline-access")
    assert "no refresh token" in offline.title.lower()
