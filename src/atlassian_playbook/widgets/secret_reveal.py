"""A secret shown masked, revealed only long enough to copy it into a partner's form."""

from __future__ import annotations

import html

import ipywidgets as w

from ..redact import Secret, mask
from ._display import Displayable

# Copy the revealed field, then press the Reveal toggle so the kernel empties the field again.
_COPY_REVEALED_JS = (
    "const root = this.closest('.ap-secret-reveal');"
    "navigator.clipboard.writeText(root.querySelector('.ap-reveal-field input').value)"
    ".then(() => root.querySelector('.ap-reveal-toggle').click(),"
    " () => { this.textContent = 'copy failed'; })"
)


class SecretReveal(Displayable):
    """A secret shown masked, with a Reveal toggle for copying it into a partner's form.

    While revealed, the value sits in a text field's widget state, with a Copy button beside
    it that puts the field's value on the clipboard and releases the toggle; releasing empties
    the field. The Copy button reads the field in the page, so its own HTML holds no secret.
    (Do not save the notebook with widget state while a secret is revealed.)
    """

    def __init__(self, label: str, secret: Secret | None) -> None:
        self._label = label
        self._secret = secret
        self.masked = w.HTML(f"<b>{html.escape(label)}</b>: <code>{self._shown()}</code>")
        self.toggle = w.ToggleButton(
            description="Reveal to copy", icon="eye", disabled=secret is None
        )
        self.toggle.add_class("ap-reveal-toggle")
        self.field = w.Text(layout=w.Layout(width="60%", display="none"))
        self.field.add_class("ap-reveal-field")
        self.copy = w.HTML(layout=w.Layout(display="none"))
        self.toggle.observe(self._flip, names="value")
        self.widget = w.HBox([self.masked, self.toggle, self.field, self.copy])
        self.widget.add_class("ap-secret-reveal")

    def _shown(self) -> str:
        return mask(self._secret.reveal()) if self._secret else "«none»"

    def _flip(self, change) -> None:
        revealed = bool(change["new"]) and self._secret is not None
        self.field.value = self._secret.reveal() if revealed else ""
        self.copy.value = (
            "<button type='button' class='ap-copy' title='Copy, then hide it again' "
            f'onclick="{_COPY_REVEALED_JS}">Copy and hide</button>'
            if revealed
            else ""
        )
        self.field.layout.display = self.copy.layout.display = None if revealed else "none"

    def snapshot_html(self) -> str:
        """Always masked, revealed or not."""
        return (
            f"<div class='ap-secret-reveal'><b>{html.escape(self._label)}</b>: "
            f"<code>{self._shown()}</code> <small>(masked; in JupyterLab, Reveal to copy)</small>"
            "</div>"
        )
