"""What every widget shares: the live view plus a static snapshot in one mimebundle, and
the copy button."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w

_COPY_JS = (
    "navigator.clipboard.writeText(this.dataset.copy).then("
    "() => { this.textContent = 'copied'; }, () => { this.textContent = 'copy failed'; })"
)
CHIP_STYLE = (
    "display:inline-block;margin:2px;padding:1px 6px;border:1px solid #888;"
    "border-radius:10px;font-family:monospace"
)


def copy_button(value: str, label: str = "copy") -> str:
    """A small HTML button that puts ``value`` on the clipboard. The value is in the page, so
    never pass a secret (:class:`SecretReveal` copies its field instead)."""
    return (
        "<button type='button' class='ap-copy' title='Copy to the clipboard' "
        f"data-copy='{html.escape(value, quote=True)}' "
        f'onclick="{_COPY_JS}">{html.escape(label)}</button>'
    )


class Displayable:
    """Display = the live widget's view plus a static ``text/html`` snapshot (see the module
    docstring); ``text/plain`` names the widget instead of ipywidgets' ``VBox(children=(…``."""

    widget: w.Widget

    def snapshot_html(self) -> str:
        raise NotImplementedError

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = self.widget._repr_mimebundle_()
        bundle["text/plain"] = f"{type(self).__name__} (a live widget in JupyterLab)"
        bundle["text/html"] = self.snapshot_html()
        return bundle
