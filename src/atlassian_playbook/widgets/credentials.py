"""The client credentials form: the secret goes to .env and leaves the widget at once."""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as w

from ..redact import Secret, redact
from ._display import Displayable


class CredentialsForm(Displayable):
    """Client id and a masked secret field; ``on_save(client_id, Secret)`` writes .env.

    The password field is emptied as soon as the secret is saved, so no widget state (which
    JupyterLab can save into the notebook) keeps it. Its snapshot is the form, empty.
    """

    def __init__(self, client_id: str | None, on_save: Callable[[str, Secret], object]) -> None:
        self._on_save = on_save
        self.client_id = w.Text(
            value=client_id or "",
            description="Client ID",
            placeholder="from the console's Settings tab",
        )
        self.secret = w.Password(description="Secret", placeholder="paste the Secret")
        self.save = w.Button(description="Save to .env", button_style="primary", icon="lock")
        self.status = w.HTML()
        self.save.on_click(lambda _: self.save_now())
        self.widget = w.VBox([self.client_id, self.secret, w.HBox([self.save, self.status])])

    def save_now(self) -> bool:
        """Hand the values to ``on_save``; the password field is empty afterwards, whatever
        happened. Returns True when saved."""
        client_id, value = self.client_id.value.strip(), self.secret.value.strip()
        self.secret.value = ""
        if not client_id or not value:
            self.status.value = "<span style='color:#b00'>Both fields are needed.</span>"
            return False
        secret = Secret(value)
        try:
            self._on_save(client_id, secret)
        except Exception as error:  # shown, not raised: a button callback has no cell
            self.status.value = (
                f"<span style='color:#b00'>not saved: {html.escape(redact(error))}</span>"
            )
            return False
        self.status.value = f"saved to .env (mode 0600); secret {html.escape(str(secret))}"
        return True

    def snapshot_html(self) -> str:
        """The form as a reader fills it in, with nothing in it (whatever was typed)."""
        field = "<label>{0} <input type='{1}' placeholder='{2}' disabled></label><br>"
        return (
            "<form class='ap-credentials'>"
            + field.format("Client ID", "text", html.escape(self.client_id.placeholder, True))
            + field.format("Secret", "password", html.escape(self.secret.placeholder, True))
            + "<button type='button' disabled>Save to .env</button></form>"
        )
