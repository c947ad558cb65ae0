import json
import subprocess
import sys
from pathlib import Path

import pytest

from atlassian_playbook import scopes
from atlassian_playbook.config import DEFAULT_SCOPES, Settings, load_settings
from atlassian_playbook.errors import ConfigError, PlaybookError
from atlassian_playbook.presets import preset, preset_names
from atlassian_playbook.scopes import (
    CONSOLE_APIS,
    catalog,
    check_scopes,
    console_apis_for,
    is_satisfied,
    list_scopes,
    required_scopes,
    suggest,
    validate_scopes,
)

ROOT = Path(__file__).resolve().parents[1]
SOURCES = Path("/work/shared/atlassian/scopes")
DATA = ROOT / "src" / "atlassian_playbook" / "data" / "scopes.json"

# FACTS.md, "Partner profiles", Merge: the partner-credentials set, in the order it lists them.
MERGE_FACTS = (
    "read:confluence-space.summary read:confluence-content.summary search:confluence "
    "read:confluence-user read:confluence-groups readonly:content.attachment:confluence "
    "read:jira-work manage:jira-project manage:jira-configuration read:jira-user "
    "write:jira-work manage:jira-webhook "
    "read:space:confluence read:audit-log:confluence read:configuration:confluence "
    "report:personal-data"
).split()

needs_sources = pytest.mark.skipif(not SOURCES.is_dir(), reason="scope sources not mounted")


def _source_scopes() -> dict[str, dict]:
    found: dict[str, dict] = {}
    for path in sorted(SOURCES.glob("*.json")):
        for name, info in json.loads(path.read_text())["scopes"].items():
            found.setdefault(name, info)
    return found


# --- the catalog ---------------------------------------------------------------------------


@needs_sources
def test_catalog_has_every_scope_of_the_source_files_with_its_kind():
    known = catalog()
    source = _source_scopes()
    assert set(source) <= set(known)
    for name, info in source.items():
        assert known[name].kind == info["kind"], name


def test_catalog_has_the_classic_scopes_of_every_console_api():
    known = catalog()
    for name in (
        "read:jira-work", "write:jira-work", "read:jira-user", "manage:jira-project",
        "manage:jira-configuration", "manage:jira-webhook",
        "read:servicedesk-request", "write:servicedesk-request", "manage:servicedesk-customer",
        "read:confluence-space.summary", "write:confluence-content", "search:confluence",
        "readonly:content.attachment:confluence",
        "read:me", "read:account", "offline_access", "report:personal-data",
    ):  # fmt: skip
        assert known[name].kind == "classic", name


@pytest.mark.parametrize(
    ("name", "api", "console_api"),
    [
        ("read:me", "identity", "User identity API"),
        ("read:account", "identity", "User identity API"),
        ("read:jira-work", "jira", "Jira API"),
        ("read:sprint:jira-software", "jira", "Jira API"),
        ("read:servicedesk-request", "jsm", "Jira API"),
        ("read:confluence-space.summary", "confluence", "Confluence API"),
        ("read:space:confluence", "confluence", "Confluence API"),
        ("report:personal-data", "platform", "Personal data reporting API"),
        ("offline_access", "platform", None),
    ],
)
def test_each_scope_belongs_to_its_api_and_console_api(name, api, console_api):
    scope = catalog()[name]
    assert (scope.api, scope.console_api) == (api, console_api)


def test_descriptions_are_one_line_and_null_ones_are_generated():
    known = catalog()
    assert all(s.description and "\n" not in s.description for s in known.values())
    assert all(s.description.endswith((".", "?", "!")) for s in known.values())
    # The source gives no description for this one (confluence-v2.json).
    assert known["delete:attachment:confluence"].description == "Delete attachments in Confluence."
    # First sentence only: the source goes on with "Search for issues and ...".
    assert known["read:jira-work"].description == "Read project and issue data."


def test_scope_endpoints_are_gateway_paths_capped_with_a_full_count():
    known = catalog()
    jira_user = known["read:jira-user"]
    assert "GET /ex/jira/{cloudid}/rest/api/3/myself" in jira_user.endpoints
    assert len(jira_user.endpoints) <= 8 < jira_user.endpoint_count
    space = known["read:space:confluence"]
    assert "GET /ex/confluence/{cloudid}/wiki/api/v2/spaces" in space.endpoints
    assert known["read:me"].endpoints == ("GET /me",)


def test_list_scopes_filters_by_api_and_kind():
    jsm = list_scopes(api="jsm")
    assert {s.name for s in jsm} >= {"read:servicedesk-request", "write:servicedesk-request"}
    assert all(s.api == "jsm" for s in jsm)
    granular_confluence = list_scopes(api="confluence", kind="granular")
    assert "read:space:confluence" in {s.name for s in granular_confluence}
    assert all(s.kind == "granular" for s in granular_confluence)
    assert len(list_scopes()) == len(catalog())
    with pytest.raises(ConfigError):
        list_scopes(api="bitbucket")


@needs_sources
def test_data_file_is_up_to_date_with_the_build_script():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_scope_catalog.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_data_file_stays_small_and_the_partner_presets_come_from_the_profiles():
    # The partners' sets moved to data/profiles/*.toml; the catalog keeps its own preset only.
    assert DATA.stat().st_size < 400 * 1024
    assert tuple(json.loads(DATA.read_text())["presets"]) == ("minimal",)
    assert preset_names()[-1] == "minimal" and {"merge", "clerk"} <= set(preset_names())


def test_importing_the_module_does_not_parse_the_catalog():
    code = (
        "import sys, atlassian_playbook.scopes as s; "
        "assert s._data.cache_info().currsize == 0; "
        "s.validate_scopes(['read:me']); assert s._data.cache_info().currsize == 1"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- presets -------------------------------------------------------------------------------


def test_merge_preset_is_exactly_the_partner_set_plus_offline_access():
    assert preset("merge") == (*MERGE_FACTS, "offline_access")
    assert preset("merge", offline_access=False) == tuple(MERGE_FACTS)


def test_clerk_preset_asks_offline_access_only_when_told():
    # Clerk's personal data declaration confirms the reporting API, so it asks for its scope.
    assert preset("clerk") == ("read:me", "report:personal-data")
    assert preset("clerk", offline_access=True) == (
        "read:me",
        "report:personal-data",
        "offline_access",
    )
    assert preset("clerk", offline_access=False) == ("read:me", "report:personal-data")


def test_minimal_preset_is_the_configs_default():
    assert preset("minimal") == tuple(DEFAULT_SCOPES.split()) == Settings().scopes


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ConfigError) as info:
        preset("merj")
    assert "merge" in info.value.hint and "clerk" in info.value.hint


# --- validation ----------------------------------------------------------------------------


def test_validate_returns_the_scopes_deduplicated_in_order():
    assert validate_scopes(["read:me", "offline_access", "read:me"]) == (
        "read:me",
        "offline_access",
    )
    assert validate_scopes("read:me  offline_access") == ("read:me", "offline_access")


def test_unknown_scope_names_it_and_suggests_the_right_one():
    with pytest.raises(ConfigError) as info:
        validate_scopes(["read:me", "read:jira-usr"], setting="SCOPES_UNDER_TEST")
    assert info.value.setting == "SCOPES_UNDER_TEST"
    assert "read:jira-usr" in info.value.message
    assert "did you mean read:jira-user" in info.value.hint
    assert suggest("read:jira-usr")[0] == "read:jira-user"


def test_suggestions_cover_truncation_and_case():
    assert suggest("read:confluence-space")[0] == "read:confluence-space.summary"
    assert suggest("READ:ME") == ["read:me"]
    assert suggest("zzzz") == []


def test_comma_separated_scope_is_refused_telling_to_use_spaces():
    with pytest.raises(ConfigError) as info:
        validate_scopes(["read:me,offline_access"])
    assert info.value.setting == "ATLASSIAN_SCOPES"
    assert "spaces" in info.value.hint
    assert "'read:me offline_access'" in info.value.hint


def test_no_scope_at_all_is_refused():
    with pytest.raises(ConfigError):
        validate_scopes([])


def test_load_settings_refuses_commas_in_atlassian_scopes():
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={"ATLASSIAN_SCOPES": "read:me,offline_access"})
    assert info.value.setting == "ATLASSIAN_SCOPES"


def test_load_settings_validates_scopes_against_the_catalog():
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={"ATLASSIAN_SCOPES": "read:me read:jira-usr"})
    assert info.value.setting == "ATLASSIAN_SCOPES"
    assert "read:jira-user" in info.value.hint
    settings = load_settings(None, environ={"ATLASSIAN_SCOPES": " ".join(preset("merge"))})
    assert settings.scopes == preset("merge")


def test_settings_built_in_code_with_a_comma_scope_fail_validation():
    with pytest.raises(ConfigError) as info:
        Settings(scopes=("read:me,offline_access",)).validate()
    assert info.value.setting == "ATLASSIAN_SCOPES"


# --- warnings ------------------------------------------------------------------------------


def _codes(warnings):
    return [w.code for w in warnings]


def test_no_warning_for_the_minimal_preset():
    assert check_scopes(preset("minimal")) == []


def test_missing_offline_access_warns_that_no_refresh_token_will_come():
    warnings = check_scopes(["read:me"])
    assert _codes(warnings) == ["missing-offline-access"]
    assert "refresh token" in warnings[0].message
    assert "authorization URL" in warnings[0].hint


def test_scope_whose_api_is_not_added_warns_naming_the_api():
    warnings = check_scopes(preset("minimal"), console_apis=["User identity API", "Jira API"])
    assert _codes(warnings) == ["api-not-added"]
    assert "Confluence API" in warnings[0].message
    assert "read:confluence-space.summary" in warnings[0].message
    # offline_access needs no API; short names are accepted
    assert check_scopes(preset("minimal"), console_apis=["identity", "jira", "confluence"]) == []


def test_unknown_console_api_name_is_an_error():
    with pytest.raises(ConfigError):
        check_scopes(["read:me"], console_apis=["Bitbucket API"])


def test_mixing_classic_and_granular_of_one_api_warns():
    warnings = check_scopes(
        ["read:confluence-space.summary", "read:space:confluence", "offline_access"]
    )
    assert _codes(warnings) == ["mixed-classic-granular"]
    assert "Confluence API" in warnings[0].message
    # classic Jira with granular Confluence is not a mix
    assert check_scopes(["read:jira-work", "read:space:confluence", "offline_access"]) == []


def test_unknown_scope_is_a_warning_not_an_error_in_check_scopes():
    warnings = check_scopes(["read:jira-usr", "offline_access"])
    assert _codes(warnings) == ["unknown-scope"]
    assert "read:jira-user" in warnings[0].hint


# --- console APIs --------------------------------------------------------------------------


def test_console_apis_for_merge_in_console_order():
    # Merge asks nothing of the User identity API, so three of the console's four APIs.
    assert console_apis_for(preset("merge")) == [
        "Jira API",
        "Confluence API",
        "Personal data reporting API",
    ]


def test_console_apis_for_minimal_and_clerk():
    assert console_apis_for(preset("minimal")) == [
        "User identity API",
        "Jira API",
        "Confluence API",
    ]
    assert console_apis_for(preset("clerk", offline_access=True)) == [
        "User identity API",
        "Personal data reporting API",
    ]
    assert console_apis_for(["offline_access"]) == []
    everything = ["read:me", "read:jira-user", "read:space:confluence", "report:personal-data"]
    assert console_apis_for(everything) == list(CONSOLE_APIS)


def test_console_apis_for_refuses_unknown_scopes():
    with pytest.raises(ConfigError):
        console_apis_for(["read:jira-usr"])


# --- endpoint requirements -----------------------------------------------------------------


def test_jira_myself_needs_read_jira_user_or_the_granular_set():
    alternatives = required_scopes("GET", "/rest/api/3/myself")
    assert ("read:jira-user",) in alternatives
    assert alternatives[0] == ("read:jira-user",)  # classic first
    assert any("read:user:jira" in alt for alt in alternatives[1:])


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/rest/api/3/project/search", "read:jira-work"),
        ("GET", "/wiki/rest/api/space", "read:confluence-space.summary"),
        ("GET", "/wiki/rest/api/user/current", "read:confluence-user"),
        ("GET", "/wiki/api/v2/spaces", "read:space:confluence"),
        ("GET", "/me", "read:me"),
        ("POST", "/app/report-accounts/", "report:personal-data"),
    ],
)
def test_playbook_endpoints_have_their_scope(method, path, scope):
    assert (scope,) in required_scopes(method, path)


def test_server_info_needs_no_scope():
    assert required_scopes("GET", "/rest/api/3/serverInfo") == [()]
    assert is_satisfied([], "GET", "/rest/api/3/serverInfo")


def test_gateway_paths_urls_and_concrete_ids_are_accepted():
    plain = required_scopes("GET", "/rest/api/3/myself")
    cloud = "1324a887-45db-1bf4-1e99-ef0ff456d421"
    assert required_scopes("get", f"/ex/jira/{cloud}/rest/api/3/myself") == plain
    assert required_scopes("GET", "/ex/jira/{cloudid}/rest/api/3/myself") == plain
    assert (
        required_scopes("GET", f"https://api.atlassian.com/ex/jira/{cloud}/rest/api/3/myself?x=1")
        == plain
    )
    space = required_scopes("GET", f"/ex/confluence/{cloud}/wiki/api/v2/spaces/98304")
    assert ("read:space:confluence",) in space
    assert required_scopes("POST", "/app/report-accounts") == [("report:personal-data",)]


def test_literal_path_segment_wins_over_a_placeholder():
    # /board/filter/{filterId} and /board/{boardId}/sprint both match these shapes
    assert required_scopes("GET", "/rest/agile/1.0/board/filter/42") == [
        ("read:board-scope.admin:jira-software",)
    ]
    assert required_scopes("GET", "/rest/agile/1.0/board/42/sprint") == [
        ("read:sprint:jira-software",)
    ]
    # an exact operation beats a template: /wiki/rest/api/content/search vs .../content/{id}
    assert required_scopes("GET", "/wiki/rest/api/content/search") == [("search:confluence",)]
    assert ("search:confluence",) not in required_scopes("GET", "/wiki/rest/api/content/12345")


def test_unknown_operation_is_an_error():
    with pytest.raises(PlaybookError):
        required_scopes("GET", "/rest/api/3/no-such-thing")
    with pytest.raises(PlaybookError):
        required_scopes("PATCH", "/rest/api/3/myself")


def test_is_satisfied_needs_one_whole_alternative():
    assert is_satisfied(["read:jira-user"], "GET", "/rest/api/3/myself")
    assert is_satisfied("read:jira-user offline_access", "GET", "/rest/api/3/myself")
    granular = [
        "read:application-role:jira",
        "read:avatar:jira",
        "read:group:jira",
        "read:user:jira",
    ]
    assert is_satisfied(granular, "GET", "/rest/api/3/myself")
    assert not is_satisfied(granular[:-1], "GET", "/rest/api/3/myself")
    assert not is_satisfied(["read:jira-work"], "GET", "/rest/api/3/myself")
    assert not is_satisfied(preset("minimal"), "GET", "/wiki/api/v2/spaces")


def test_minimal_preset_covers_the_verify_endpoints():
    granted = preset("minimal")
    for method, path in [
        ("GET", "/me"),
        ("GET", "/rest/api/3/myself"),
        ("GET", "/rest/api/3/serverInfo"),
        ("GET", "/wiki/rest/api/space"),
    ]:
        assert is_satisfied(granted, method, path), path


def test_operations_without_a_documented_scope_are_never_satisfied():
    # The Jira Software spec names no scope for GET /rest/agile/1.0/board.
    assert required_scopes("GET", "/rest/agile/1.0/board") == []
    assert not is_satisfied(preset("merge"), "GET", "/rest/agile/1.0/board")


def test_module_surface():
    assert set(scopes.__all__) >= {
        "Scope", "ScopeWarning", "catalog", "catalog_presets", "list_scopes", "suggest",
        "validate_scopes", "check_scopes", "console_apis_for", "required_scopes", "is_satisfied",
    }  # fmt: skip
