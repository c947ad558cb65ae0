"""The playbook's widgets without a browser: their state and their callbacks.

A person's click is simulated the way ipywidgets delivers it: by setting the control's value
(which fires its observers) or calling the button's click handlers.
"""

from __future__ import annotations

import pytest

from atlassian_playbook.checklist import build_checklist
from atlassian_playbook.presets import preset
from atlassian_playbook.redact import Secret
from atlassian_playbook.scopes import OFFLINE_ACCESS
from atlassian_playbook.widgets import (
    ChecklistWidget,
    CredentialsForm,
    ScopePicker,
    SecretReveal,
)


class Saved:
    """An on_save callback that remembers what it was given."""

    def __init__(self, result=None, error: Exception | None = None) -> None:
        self.calls: list = []
        self.result, self.error = result, error

    def __call__(self, *args):
        self.calls.append(args)
        if self.error is not None:
            raise self.error
        return self.result


# --- ScopePicker ------------------------------------------------------------------------------


def test_scope_picker_searches_names_and_descriptions():
    picker = ScopePicker(["read:me"], Saved())
    everything = len(picker.visible)
    assert everything > 200
    picker.search.value = "jira-user"
    assert "read:jira-user" in picker.visible and len(picker.visible) < 10
    picker.search.value = "personal data"  # in the description only
    assert "report:personal-data" in picker.visible
    picker.search.value = ""
    assert len(picker.visible) == everything
    assert picker.selected == ["read:me"]


def test_scope_picker_preset_and_offline_access_checkbox():
    picker = ScopePicker(["read:me"], Saved())
    assert picker.offline.value is False
    assert "missing-offline-access" in picker.warning_codes
    picker.preset.value = "merge"
    assert picker.selected == list(preset("merge"))
    assert picker.offline.value is True
    picker.offline.value = False
    assert OFFLINE_ACCESS not in picker.selected
    picker.offline.value = True
    assert picker.selected[-1] == OFFLINE_ACCESS
    assert "missing-offline-access" not in picker.warning_codes


def test_scope_picker_live_validation_names_the_api_to_add():
    picker = ScopePicker(["read:me", OFFLINE_ACCESS], Saved(), console_apis=["identity"])
    assert picker.warning_codes == []
    picker.select(["read:me", "read:jira-user", OFFLINE_ACCESS])
    assert picker.warning_codes == ["api-not-added"]
    assert "Jira API" in picker.warnings.value


def test_scope_picker_save_calls_back_with_the_selection():
    saved = Saved(result=("read:me", OFFLINE_ACCESS))
    picker = ScopePicker(["read:me"], saved)
    picker.offline.value = True
    picker.save.click()
    assert saved.calls == [(("read:me", OFFLINE_ACCESS),)]
    assert picker.selected == ["read:me", OFFLINE_ACCESS]
    assert picker.status.value.startswith("saved to .env")


def test_scope_picker_shows_a_refused_save_instead_of_raising():
    picker = ScopePicker(["read:me"], Saved(error=ValueError("unknown scope read:jira-usr")))
    assert picker.save_now() is None
    assert "not saved" in picker.status.value and "read:jira-usr" in picker.status.value


# --- CredentialsForm --------------------------------------------------------------------------


def test_credentials_form_saves_a_secret_and_clears_the_password():
    saved = Saved()
    form = CredentialsForm(None, saved)
    form.client_id.value = "client-123"
    form.secret.value = "  the-secret-value-0123  "
    form.save.click()
    ((client_id, secret),) = saved.calls
    assert client_id == "client-123"
    assert isinstance(secret, Secret) and secret.reveal() == "the-secret-value-0123"
    assert form.secret.value == ""  # nothing left in widget state
    assert "the-secret-value-0123" not in form.status.value
    assert secret.fingerprint in form.status.value


def test_credentials_form_clears_the_password_even_when_saving_fails():
    form = CredentialsForm("client-123", Saved(error=OSError("disk full")))
    form.secret.value = "the-secret-value-0123"
    assert form.save_now() is False
    assert form.secret.value == "" and "disk full" in form.status.value
    empty = CredentialsForm(None, Saved())
    empty.secret.value = "the-secret-value-0123"
    assert empty.save_now() is False and empty.secret.value == ""
    assert "Both fields" in empty.status.value


# --- SecretReveal -----------------------------------------------------------------------------


def test_secret_reveal_shows_the_value_only_while_pressed():
    secret = Secret("partner-secret-0123456789")
    reveal = SecretReveal("OAuth Client Secret", secret)
    assert "partner-secret-0123456789" not in reveal.masked.value
    assert secret.fingerprint in reveal.masked.value
    assert reveal.field.value == "" and reveal.field.layout.display == "none"
    reveal.toggle.value = True
    assert reveal.field.value == "partner-secret-0123456789"
    assert reveal.field.layout.display is None
    reveal.toggle.value = False
    assert reveal.field.value == "" and reveal.field.layout.display == "none"


def test_secret_reveal_without_a_secret_is_disabled():
    reveal = SecretReveal("Client Secret", None)
    assert reveal.toggle.disabled and "«none»" in reveal.masked.value
    reveal.toggle.value = True
    assert reveal.field.value == ""


# --- ChecklistWidget --------------------------------------------------------------------------


def test_checklist_widget_ticks_call_back_with_the_step_id():
    checklist = build_checklist("merge")
    ticks: list[tuple[str, bool]] = []
    widget = ChecklistWidget(
        checklist, {"create-app"}, lambda sid, value: ticks.append((sid, value))
    )
    assert list(widget.boxes) == [step.id for step in checklist.steps]
    assert widget.boxes["create-app"].value is True
    assert widget.boxes["merge-credentials"].value is False
    widget.boxes["merge-credentials"].value = True
    widget.boxes["create-app"].value = False
    assert ticks == [("merge-credentials", True), ("create-app", False)]
    assert checklist.step("merge-credentials").values["OAuth Redirect URI"] in str(
        widget.widget.children
    )


@pytest.mark.parametrize("profile", ["merge", "clerk", "custom"])
def test_no_widget_of_a_checklist_carries_a_secret(profile):
    widget = ChecklistWidget(build_checklist(profile), (), lambda *_: None)
    text = str(widget.widget.children)
    assert "ATLASSIAN_CLIENT_SECRET" in text  # the step says where it goes...
    assert "«secret:" not in text  # ...and never holds one
