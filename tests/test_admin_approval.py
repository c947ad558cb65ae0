"""The admin-approval path (issue 12): "Your site admin must authorize this app".

FACTS.md: shown at consent when the site's Connected apps setting "User installed apps" is not
Allowed (it is by default); there is no pending-approval screen; an admin changes the setting or
completes the consent. The checklist and notebook 04 say so, and a member's headless login to
the default world's restricted site fails with that fix.
"""

import json
from pathlib import Path

import pytest

from atlassian_playbook.checklist import build_checklist
from atlassian_playbook.connection import visit_headless
from atlassian_playbook.emulator import Emulator
from atlassian_playbook.errors import CallbackError
from atlassian_playbook.oauth import OAuthClient
from atlassian_playbook.profiles import get_profile, profile_names
from atlassian_playbook.target import emulator_settings

NOTEBOOK_04 = Path(__file__).resolve().parents[1] / "notebooks" / "04-token-exchange.ipynb"


# A service account has no consent, so no consent error: only the console profiles.
CONSENTING = [name for name in profile_names() if get_profile(name).has_console_steps]


@pytest.mark.parametrize("profile", CONSENTING)
def test_the_checklist_tells_what_a_site_admin_changes(profile):
    step = build_checklist(profile).step("distribution-site-admin")
    assert not step.required  # only sites whose admins restrict apps need it
    assert "Your site admin must authorize this app" in step.title
    assert step.values["Site admin allows it"] == (
        "Atlassian Administration > Apps > Sites > the site > Connected apps: "
        "User installed apps: Allowed"
    )
    assert "consents to the app once" in step.values["Or a site admin"]
    assert "no pending-approval screen" in step.detail
    assert step.copyable == ()  # instructions to pass on, nothing to paste


def test_a_service_account_checklist_has_no_consent_step():
    with pytest.raises(KeyError):
        build_checklist("service-account").step("distribution-site-admin")


def test_notebook_04_explains_the_admin_side_fix():
    text = "\n".join(
        "".join(cell["source"])
        for cell in json.loads(NOTEBOOK_04.read_text())["cells"]
        if cell["cell_type"] == "markdown"
    )
    section = text[text.index("## If consent says"):]
    for needed in ("Your site admin must authorize this app", "User installed apps",
                   "Connected apps", "Allowed", "consents once", "no pending-approval screen"):
        assert needed in section, needed


def test_a_member_of_the_restricted_site_is_told_what_the_admin_changes():
    # The default world's initech: ada (the default consent user) is a member, grace its admin.
    with Emulator(auto_consent=True, consent_user="ada") as emu:
        restricted = next(s for s in emu.sites if not s["user_installed_apps"])
        settings = emulator_settings(emu, scopes=("read:me", "read:jira-work"))
        request = OAuthClient(settings).authorization_request()
        with pytest.raises(CallbackError) as info:
            visit_headless(request.url, site=restricted["name"])
    assert "Your site admin must authorize this app" in info.value.message
    assert "User installed apps" in info.value.hint
