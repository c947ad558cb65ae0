"""The scope picker as a person works it, and every widget's static snapshot, without a browser.

A click is simulated the way ipywidgets delivers it: setting a checkbox's value (which fires
its observers), opening an accordion section (``selected_index = 0``) or calling a button's
click handlers. The browser half is ``tests/test_picker_browser.py``.
"""

from __future__ import annotations

import html
import re

import pytest

from atlassian_playbook.checklist import build_checklist
from atlassian_playbook.presets import preset
from atlassian_playbook.redact import Secret
from atlassian_playbook.scopes import CONSOLE_APIS, OFFLINE_ACCESS, list_scopes
from atlassian_playbook.widgets import (
    ChecklistWidget,
    CredentialsForm,
    ScopePicker,
    SecretReveal,
    scope_groups,
)

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def nothing(*_):
    return None


def section(picker: ScopePicker, api: str, kind: str):
    """The picker's section of one console API and kind, opened as a person opens it."""
    (found,) = [s for s in picker.sections if (s.group.console_api, s.group.kind) == (api, kind)]
    found.accordion.selected_index = 0
    return found


def chip_names(picker: ScopePicker) -> list[str]:
    return [chip.tooltip.removeprefix("Remove ") for chip in picker.chips.children]


# --- grouping and laziness ----------------------------------------------------------------


def test_groups_follow_the_permissions_tab_and_leave_offline_access_apart():
    groups = scope_groups()
    apis = list(dict.fromkeys(g.console_api for g in groups))
    assert apis == list(CONSOLE_APIS)  # the console's order
    assert [g.kind for g in groups if g.console_api == "Jira API"] == ["classic", "granular"]
    grouped = [s.name for g in groups for s in g.scopes]
    assert sorted(grouped) == sorted(s.name for s in list_scopes() if s.name != OFFLINE_ACCESS)
    assert OFFLINE_ACCESS not in grouped
    picker = ScopePicker([], nothing)
    assert "authorization URL" in picker.offline_note.value
    assert [s.accordion.get_title(0) for s in picker.sections][:2] == [
        "User identity API · Classic scopes (2)",
        "Jira API · Classic scopes (10)",
    ]


def test_checkboxes_are_built_only_for_opened_sections():
    picker = ScopePicker(["read:me"], nothing)
    assert picker.boxes == {}  # nothing built until a section opens
    identity = section(picker, "User identity API", "classic")
    assert set(picker.boxes) == {"read:me", "read:account"}
    assert picker.boxes["read:me"].value is True and picker.boxes["read:account"].value is False
    assert [b.description.split("</code>")[0] for b in identity.body.children] == [
        "<code>read:account",
        "<code>read:me",
    ]
    me = next(s for s in list_scopes() if s.name == "read:me")
    assert html.escape(me.description) in picker.boxes["read:me"].description


# --- a plain click toggles one scope ------------------------------------------------------


def test_a_click_toggles_one_scope_and_keeps_the_others():
    picker = ScopePicker(["read:me", "read:jira-user", "write:jira-work", OFFLINE_ACCESS], nothing)
    section(picker, "Jira API", "classic")
    picker.boxes["read:jira-work"].value = True
    assert picker.selected == [
        "read:me",
        "read:jira-user",
        "write:jira-work",
        OFFLINE_ACCESS,
        "read:jira-work",
    ]
    picker.boxes["read:jira-user"].value = False
    assert picker.selected == ["read:me", "write:jira-work", OFFLINE_ACCESS, "read:jira-work"]
    assert picker.offline.value is True
    assert "unsaved" in picker.status.value


def test_filtering_never_deselects():
    picker = ScopePicker(["read:me", "read:jira-work", OFFLINE_ACCESS], nothing)
    section(picker, "Jira API", "classic")
    picker.search.value = "confluence"
    assert picker.visible and all("confluence" in n or "onfluence" in n for n in picker.visible)
    assert picker.selected == ["read:me", "read:jira-work", OFFLINE_ACCESS]
    jira = next(s for s in picker.sections if s.group.title.startswith("Jira API · Classic"))
    assert jira.accordion.layout.display == "none"  # hidden, not deselected
    picker.search.value = "jira-work"
    assert picker.boxes["read:jira-work"].value is True
    picker.search.value = ""
    assert picker.selected == ["read:me", "read:jira-work", OFFLINE_ACCESS]


def test_a_narrow_search_opens_the_sections_that_match():
    picker = ScopePicker([], nothing)
    picker.search.value = "jira-work"
    assert picker.visible == ["read:jira-work", "write:jira-work"]
    opened = [s for s in picker.sections if s.accordion.selected_index == 0]
    assert [s.group.title for s in opened] == ["Jira API · Classic scopes"]
    assert [b.description.split("</code>")[0] for b in opened[0].body.children] == [
        "<code>read:jira-work",
        "<code>write:jira-work",
    ]
    assert "2 scopes match" in picker.shown.value


def test_a_wide_search_builds_no_checkbox():
    picker = ScopePicker([], nothing)
    picker.search.value = "read"
    assert len(picker.visible) > 60  # more than OPEN_MATCHES_AT_MOST
    assert picker.boxes == {} and not any(s.is_open for s in picker.sections)
    title = picker.sections[2].accordion.get_title(0)  # the titles count the matches
    assert re.fullmatch(r"Jira API · Granular scopes \(\d+ of 208 match\)", title), title


def test_a_typo_in_the_search_offers_did_you_mean():
    picker = ScopePicker([], nothing)
    picker.search.value = "read:jira-wrok"
    assert picker.visible == []
    assert "No scope matches" in picker.shown.value
    assert picker.suggestions[0] == "read:jira-work"
    button = next(
        b for b in picker.did_you_mean.children if getattr(b, "description", "") == "read:jira-work"
    )
    button.click()  # a suggestion searches for it
    assert picker.search.value == "read:jira-work" and picker.visible == ["read:jira-work"]
    assert picker.suggestions == [] and picker.did_you_mean.children == ()
    assert picker.selected == []  # a suggestion shows, it does not select


def test_a_search_for_offline_access_points_to_it_apart():
    picker = ScopePicker([], nothing)
    picker.search.value = "offline"
    assert picker.suggestions == [] and "offline_access" in picker.shown.value


# --- the paste box ------------------------------------------------------------------------


def test_the_paste_box_adds_known_scopes_and_names_the_unknown_with_suggestions():
    picker = ScopePicker(["read:me"], nothing)
    added, unknown = picker.add_scopes("read:jira-work,  read:me offline_access read:jira-wrok")
    assert added == ["read:jira-work", OFFLINE_ACCESS] and unknown == ["read:jira-wrok"]
    assert picker.selected == ["read:me", "read:jira-work", OFFLINE_ACCESS]
    text = picker.paste_status.value
    assert "Added read:jira-work, offline_access" in text
    assert "Already selected: read:me" in text
    assert "read:jira-wrok" in text and "did you mean read:jira-work" in text
    assert picker.offline.value is True


def test_the_paste_box_adds_on_enter_and_empties_itself():
    picker = ScopePicker([], nothing)
    picker.paste.value = "read:me write:jira-work"  # what Enter (or leaving the box) sends
    assert picker.selected == ["read:me", "write:jira-work"]
    assert picker.paste.value == ""
    assert "Added read:me, write:jira-work" in picker.paste_status.value
    picker.add.click()  # the Add button with the box already emptied changes nothing
    assert "Added read:me, write:jira-work" in picker.paste_status.value


# --- chips and warnings -------------------------------------------------------------------


def test_chips_show_the_selection_and_remove_their_scope():
    picker = ScopePicker(["read:me", "read:jira-work", OFFLINE_ACCESS], nothing)
    section(picker, "Jira API", "classic")
    assert chip_names(picker) == ["read:me", "read:jira-work", OFFLINE_ACCESS]
    chip = picker.chips.children[1]
    chip.click()
    assert picker.selected == ["read:me", OFFLINE_ACCESS]
    assert chip_names(picker) == ["read:me", OFFLINE_ACCESS]
    assert picker.boxes["read:jira-work"].value is False  # the open section follows
    picker.chips.children[1].click()
    assert picker.offline.value is False
    assert "missing-offline-access" in picker.warning_codes
    assert "refresh token" in picker.warnings.value


def test_live_warnings_name_the_api_to_add():
    picker = ScopePicker(["read:me", OFFLINE_ACCESS], nothing, console_apis=["identity"])
    assert picker.warning_codes == [] and picker.warnings.value == ""
    picker.add_scopes("read:jira-user")
    assert picker.warning_codes == ["api-not-added"]
    assert "Jira API" in picker.warnings.value


def test_presets_replace_the_selection_and_the_menu_follows_a_manual_change():
    picker = ScopePicker(["read:me"], nothing)
    picker.preset.value = "merge"
    assert picker.selected == list(preset("merge"))
    assert picker.preset.value == "merge"  # the menu shows what was applied
    picker.chips.children[0].click()
    assert picker.preset.value == ""  # no longer the preset: choosing it again re-applies it
    picker.preset.value = "merge"
    assert picker.selected == list(preset("merge"))


def test_select_and_save_keep_the_headless_api():
    calls = []
    picker = ScopePicker(["read:me"], lambda scopes: calls.append(scopes) or scopes)
    picker.select(["read:jira-work", OFFLINE_ACCESS])
    assert chip_names(picker) == ["read:jira-work", OFFLINE_ACCESS]
    assert picker.save_now() == ("read:jira-work", OFFLINE_ACCESS)
    assert calls == [("read:jira-work", OFFLINE_ACCESS)]
    assert picker.status.value.startswith("saved to .env")


# --- static snapshots ---------------------------------------------------------------------

SECRET = "sn4pshot-secret-value-0123456789"


def bundles():
    """Every widget class of the widgets package, displayed, as (name, mimebundle, widget)."""
    checklist = ChecklistWidget(build_checklist("merge"), {"create-app"}, nothing)
    picker = ScopePicker(["read:me", "read:jira-work", OFFLINE_ACCESS], nothing)
    form = CredentialsForm("client-123", nothing)
    form.secret.value = SECRET  # typed, not yet saved: the snapshot still shows it empty
    reveal = SecretReveal("OAuth Client Secret", Secret(SECRET))
    reveal.toggle.value = True  # even while revealed, the snapshot is masked
    return {
        "checklist": (checklist._repr_mimebundle_(), checklist),
        "picker": (picker._repr_mimebundle_(), picker),
        "form": (form._repr_mimebundle_(), form),
        "reveal": (reveal._repr_mimebundle_(), reveal),
    }


def test_every_widget_offers_a_live_view_and_a_static_html_snapshot():
    for name, (bundle, _) in bundles().items():
        assert bundle.get("text/html"), name
        assert "children=(" not in str(bundle), name
        assert bundle[WIDGET_VIEW]["model_id"], name
        assert "children=(" not in bundle["text/plain"]


def test_no_snapshot_holds_a_secret():
    found = bundles()
    for name, (bundle, _) in found.items():
        assert SECRET not in str(bundle), name
    assert Secret(SECRET).fingerprint in found["reveal"][0]["text/html"]


def test_snapshots_show_what_the_widget_shows_now():
    found = bundles()
    checklist_html = found["checklist"][0]["text/html"]
    assert re.search(r"☐\s*1\. \[Create\] Create an Atlassian account", checklist_html)
    assert re.search(r"☑\s*2\. \[Create\] Create an OAuth 2.0 integration", checklist_html)
    assert "https://app.merge.dev/oauth/callback" in checklist_html
    picker_html = found["picker"][0]["text/html"]
    assert "Selected (3)" in picker_html
    assert picker_html.index("User identity API") < picker_html.index("Jira API")
    assert "read:jira-work" in picker_html and "offline_access" in picker_html
    assert "missing" not in picker_html  # offline_access is selected: no such warning
    form_html = found["form"][0]["text/html"]
    assert "client-123" not in form_html and "value=" not in form_html


def test_displaying_a_widget_goes_through_the_mimebundle(monkeypatch):
    from IPython.core.formatters import DisplayFormatter

    picker = ScopePicker(["read:me"], nothing)
    data, _ = DisplayFormatter().format(picker)
    assert set(data) >= {"text/plain", "text/html", WIDGET_VIEW}


# --- copy buttons -------------------------------------------------------------------------


def test_the_checklist_offers_a_copy_button_beside_each_value():
    checklist = build_checklist("merge")
    widget = ChecklistWidget(checklist, (), nothing)
    html_text = "".join(c.value for c in widget.widget.children if isinstance(c.value, str))
    uri = checklist.step("merge-credentials").values["OAuth Redirect URI"]
    assert f"data-copy='{uri}'" in html_text and "navigator.clipboard.writeText" in html_text
    assert "data-copy='&lt;REPLACE" not in html_text  # a placeholder is not for pasting...
    assert "data-copy='the Client ID" not in html_text  # ...nor a pointer to the value
    assert "data-copy='Sharing'" in html_text


@pytest.mark.parametrize("reveal", [False, True])
def test_secret_reveal_copy_button_reads_the_field_and_holds_no_secret(reveal):
    widget = SecretReveal("Client Secret", Secret(SECRET))
    widget.toggle.value = reveal
    assert SECRET not in widget.copy.value
    assert (widget.copy.layout.display is None) is reveal
    assert ("navigator.clipboard.writeText" in widget.copy.value) is reveal
