"""The partner content of issue 11: the checklists agree with the profiles and FACTS.md, the
values print as a plain block for a ticket, and notebooks 02 and 07 tell the profile's story
(02 follows the scopes chosen in 03; 07 on ``custom`` says there is no partner)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from atlassian_playbook.checklist import PROFILES, build_checklist, is_placeholder
from atlassian_playbook.config import Settings
from atlassian_playbook.errors import ProfileError
from atlassian_playbook.playbook import partners
from atlassian_playbook.presets import preset
from atlassian_playbook.profiles import get_profile, load_profile

from .conftest import assert_no_secrets
from .notebook_helpers import CLERK_CALLBACK, cell_source, cell_text, new_workspace, run
from .test_cli import cli_env, run_cli

# The developer console's checklists (a service account's has no console steps:
# tests/test_service_account_notebook.py checks it).
PROFILES = [p for p in PROFILES if get_profile(p).has_console_steps]

REPORTING_API = "Personal data reporting API"


def _declaration(checklist):
    return checklist.step("distribution-personal-data")


# --- the declaration confirms only an API the checklist adds ---------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_a_confirmed_reporting_api_is_one_the_checklist_adds(profile):
    checklist = build_checklist(profile)
    if "Confirmation" in _declaration(checklist).values:
        assert REPORTING_API in checklist.console_apis
        assert "report:personal-data" in checklist.scopes
        assert checklist.step("permissions-personal-data-reporting-api")


def test_clerk_preset_checklist_and_clerk_scopes_agree():
    checklist = build_checklist("clerk", callback_url=CLERK_CALLBACK)
    # Clerk's guide: read:me at minimum, and declare that the app stores personal data, which
    # confirms the Personal Data Reporting API: so the app asks for report:personal-data too.
    assert checklist.scopes == preset("clerk") == ("read:me", "report:personal-data")
    assert checklist.console_apis == ("User identity API", REPORTING_API)
    assert _declaration(checklist).values["Personal data declaration"] == "Yes"
    # Clerk requests only what is entered in it: the reporting scope too, never offline_access
    # unless the profile asks for it.
    assert checklist.step("clerk-credentials").values["Scopes"] == "report:personal-data"
    assert "offline_access" not in preset("clerk")
    offline = checklist.step("offline-access")
    assert not offline.required and "refresh token" in offline.title


def test_clerk_extra_scopes_leave_offline_access_out_unless_the_profile_asks():
    clerk = get_profile("clerk")
    chosen = ("read:me", "report:personal-data", "offline_access")  # 03's default for clerk
    assert clerk.scopes.for_partner(chosen) == ("report:personal-data",)
    page = partners.handoff(clerk, Settings(scopes=chosen, redirect_uri=CLERK_CALLBACK), None, None)
    assert page.extra_scopes == ["report:personal-data"]
    merge = get_profile("merge")  # documents offline_access: it is handed over
    assert "offline_access" in merge.scopes.for_partner(preset("merge"))


def test_a_profile_that_stores_personal_data_must_request_the_reporting_scope(tmp_path):
    path = tmp_path / "acme.toml"
    text = (
        Path(__file__).parents[1] / "src/atlassian_playbook/data/profiles/clerk.toml"
    ).read_text()
    path.write_text(text.replace('documented = ["read:me", "report:personal-data"]',
                                 'documented = ["read:me"]'))  # fmt: skip
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert "report:personal-data" in info.value.message
    assert info.value.key == "scopes.documented"


@pytest.mark.parametrize("profile", PROFILES)
def test_the_optional_support_contact_is_a_listed_field(profile):
    sharing = build_checklist(profile).step("distribution-sharing")
    (label,) = [k for k in sharing.values if "contact" in k.lower()]
    assert "optional" in label.lower()
    assert not is_placeholder(sharing.values[label])  # optional: nothing to replace
    given = build_checklist(profile, support_contact="https://acme.example/support")
    assert given.step("distribution-sharing").values[label] == "https://acme.example/support"


# --- Merge ---------------------------------------------------------------------------------


def test_merge_starts_with_an_atlassian_account_and_names_its_navigation():
    checklist = build_checklist("merge")
    first = checklist.steps[0]
    assert first.id == "merge-atlassian-account"
    assert "Atlassian account" in first.title
    credentials = checklist.step("merge-credentials")
    said = credentials.title + " " + credentials.detail
    for part in ("Integrations page", "Jira", "Jira Service Management", "Confluence", "Edit"):
        assert part in said, part


def test_merge_personal_data_declaration_is_conditional_on_users_and_groups():
    assert "Users and Groups" in get_profile("merge").personal_data_when
    declaration = _declaration(build_checklist("merge"))
    assert not declaration.required
    assert "Users and Groups" in declaration.title
    assert declaration.values["Personal data declaration"].startswith("Yes, if ")
    assert "otherwise No" in declaration.values["Personal data declaration"]
    # the reporting API stays on Merge's Permissions list, as its guide lists it
    assert REPORTING_API in build_checklist("merge").console_apis


# --- the plain block for a ticket ------------------------------------------------------------


def _secret_like(text: str) -> list[str]:
    """Token-shaped runs (letters and digits, 24 or more), as test_checklist scans for."""
    return re.findall(r"(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{24,}", text)


@pytest.mark.parametrize("profile", PROFILES)
def test_plain_block_holds_every_value_unwrapped(profile):
    checklist = build_checklist(profile, app_name="Acme Sync", vendor_name="Acme Ltd")
    plain = checklist.to_plain()
    lines = [line.strip() for line in plain.splitlines()]
    for step in checklist.steps:
        for label, value in step.values.items():
            assert f"{label}: {value}" in lines, (step.id, label)
    assert "`" not in plain and "[ ]" not in plain and "Why:" not in plain
    assert _secret_like(plain) == []


def test_plain_block_says_why_its_numbers_skip():
    checklist = build_checklist("merge")
    plain = checklist.to_plain()
    numbers = [int(n) for n in re.findall(r"^(\d+)\. ", plain, re.M)]
    assert numbers != list(range(1, len(numbers) + 1))  # a step without values is left out
    assert "the numbers are the checklist's" in plain


def test_copyable_values_are_the_literal_ones():
    checklist = build_checklist("merge", app_name="Acme Sync")
    assert checklist.step("create-app").copyable == ("Console", "Name")
    assert checklist.step("authorization-callback").copyable == ("Callback URL",)
    # where to copy the Client ID and Secret from is an instruction, not a value to paste
    settings = checklist.step("settings-credentials")
    assert settings.copyable == ()
    for step in checklist.steps:
        assert set(step.copyable) <= set(step.values)
        assert not [label for label in step.copyable if is_placeholder(step.values[label])]
    assert json.loads(json.dumps(checklist.to_dict()))["steps"][0]["copyable"] == list(
        checklist.steps[0].copyable
    )


def test_cli_checklist_plain_prints_the_values_and_no_secret(tmp_path):
    secret = "ATOAcliPlainSecret0123456789abcdefXYZ"
    env = cli_env(tmp_path, ATLASSIAN_CLIENT_ID="cli-plain-client", ATLASSIAN_CLIENT_SECRET=secret)
    result = run_cli(["checklist", "--profile", "merge", "--app-name", "Acme Sync", "--plain"],
                     env, tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    expected = build_checklist("merge", app_name="Acme Sync").to_plain()
    assert result.stdout.strip() == expected.strip()
    assert "OAuth Redirect URI: https://app.merge.dev/oauth/callback" in result.stdout
    assert_no_secrets([result.stdout, result.stderr], [secret])


# --- notebooks 02 and 07 (papermill) ---------------------------------------------------------


def _shown(outcome) -> str:
    """What a person reads in the executed notebook: its Markdown and every cell's output."""
    cells = json.loads(outcome.output_path.read_text())["cells"]
    return "\n".join(
        (cell_source(c) if c["cell_type"] == "markdown" else "") + cell_text(c) for c in cells
    )


@pytest.mark.notebook
def test_notebook_07_on_custom_says_there_is_no_partner(tmp_path):
    workspace = new_workspace(tmp_path / "ws")
    outcome = run("07-partner-handoff", workspace, profile="custom")
    assert outcome.ok, outcome.failure
    handoff = outcome.records["handoff"]
    assert handoff["partner"] is None and handoff["fields"] == []
    shown = _shown(outcome)
    assert "has no partner" in shown and "nothing to hand off" in shown
    outputs = "\n".join(cell_text(c) for c in json.loads(outcome.output_path.read_text())["cells"])
    assert "Reveal to copy" not in outputs and "Paste these into" not in outputs
    assert "You now have" in shown


def test_checklist_follows_env_scopes_only_when_env_has_them(tmp_path):
    from atlassian_playbook.config import load_workspace_settings

    merge = get_profile("merge")
    new_workspace(tmp_path / "fresh", register=False)
    fresh = load_workspace_settings(tmp_path / "fresh")
    assert partners.chosen_scopes(fresh) is None  # 03 has not run: Merge's set
    assert partners.checklist_inputs(merge, fresh, None)[1] is None
    new_workspace(tmp_path / "chosen", register=False, ATLASSIAN_SCOPES="read:me offline_access")
    chosen = load_workspace_settings(tmp_path / "chosen")
    assert partners.checklist_inputs(merge, chosen, None)[1] == ("read:me", "offline_access")


@pytest.mark.notebook
def test_notebook_02_lists_the_scopes_chosen_in_03(tmp_path):
    chosen = "read:me read:jira-work offline_access"
    workspace = new_workspace(tmp_path / "ws", ATLASSIAN_SCOPES=chosen)
    outcome = run("02-create-app", workspace, profile="merge")
    assert outcome.ok, outcome.failure
    checklist = outcome.records["checklist"]
    assert checklist["scopes"] == chosen.split()
    assert checklist["scopes_from"] == "ATLASSIAN_SCOPES"
    shown = _shown(outcome)
    assert "`read:jira-work`" in shown
    assert "differ from Merge's" in shown
    assert "Classic scopes: read:jira-work" in shown  # the plain block for a ticket
    assert "You now have" in shown
