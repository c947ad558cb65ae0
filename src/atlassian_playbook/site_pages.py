"""What a training-site page must not show, rewritten as the page is exported.

The site is read later, elsewhere, with no notebook running, so three kinds of output are
true only during the build:

* a **widget** is live only in JupyterLab. Each of the playbook's widgets offers a static
  ``text/html`` snapshot beside its view (:mod:`.widgets`), which the exporter prefers
  (:data:`DISPLAY_PRIORITY`); any widget that has none would fall back to its Python repr
  (``VBox(children=(HTML(value=…``), so that is replaced by a short note instead;
* the build's **scratch folders** (the temporary workspace) are named as ``{workspace}``, and
  papermill's injected parameters cell keeps only what the build chose for the reader (the
  profile, a partner's example callback), not the scratch workspace;
* a **loopback link** (the authorize link, the callback, the emulator's pages on
  ``http://127.0.0.1:PORT``) points at a server that is gone: it becomes text saying so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from nbconvert.preprocessors import Preprocessor

__all__ = ["DISPLAY_PRIORITY", "SiteOutputs", "unlink_live_links", "LIVE_LINK_NOTE",
           "WIDGET_NOTE", "is_widget_repr"]

# The HTML exporter's order without the two kinds a static page cannot run: a widget view (it
# needs the widget manager from a CDN and saved widget state) and JavaScript.
DISPLAY_PRIORITY = ["text/html", "text/markdown", "image/svg+xml", "text/vnd.mermaid",
                    "text/latex", "image/png", "image/jpeg", "text/plain"]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
LIVE_LINK_NOTE = "(live link: only works while the notebook runs)"
WIDGET_NOTE = ("<p class='playbook-widget-note'><em>An interactive control is shown here when "
               "the notebook runs in JupyterLab.</em></p>")

# The Python repr of an ipywidgets object: its class name and an open parenthesis.
_WIDGET_REPR = re.compile(
    r"^\s*(?:VBox|HBox|Box|GridBox|Accordion|Tab|Stack|Button|ToggleButton|Checkbox|Text|"
    r"Textarea|Password|HTML|HTMLMath|Label|Dropdown|Select|SelectMultiple|RadioButtons|"
    r"ToggleButtons|Output|IntSlider|FloatSlider|Combobox|TagsInput|\w+Widget)\("
)
_LOOPBACK = r"https?://(?:127\.0\.0\.1|localhost|\[::1\])(?::\d+)?(?:[/?#][^\"'<>\s]*)?"
_HTML_LINK = re.compile(rf"""<a\b[^>]*\bhref=(["']){_LOOPBACK}\1[^>]*>(.*?)</a>""", re.S | re.I)
_ASSIGNMENT = re.compile(r"^(\w+)\s*=")
_HIDDEN = {"workspace"}  # the build's scratch folder: the reader's is their own
_MARKDOWN_LINK = re.compile(rf"\[([^\]]+)\]\({_LOOPBACK}\)")


def is_widget_repr(text: str) -> bool:
    """Whether ``text`` is a widget's Python repr rather than something meant for a reader."""
    return bool(_WIDGET_REPR.match(text)) or "children=(" in text


def unlink_live_links(body: str) -> str:
    """Each ``<a href="http://127.0.0.1:…">`` as its text, marked as a live link."""

    def text(match: re.Match[str]) -> str:
        return (f"<span class='playbook-live-link'>{match.group(2)}</span> "
                f"<small class='playbook-live-note'>{LIVE_LINK_NOTE}</small>")

    return _HTML_LINK.sub(text, body)


def _text(value: object) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


class SiteOutputs(Preprocessor):
    """The outputs of an executed notebook made fit for a static page (see the module doc).

    ``names`` maps each scratch path to the neutral name shown instead (longest first).
    """

    def __init__(self, names: Mapping[str, str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.names = sorted(names.items(), key=lambda item: len(item[0]), reverse=True)

    def _named(self, text: str) -> str:
        for path, name in self.names:
            text = text.replace(path, name)
        return text

    def _output(self, output) -> None:
        data = output.get("data")
        if data is not None:
            plain = _text(data.get("text/plain", ""))
            html_like = any(k in data for k in ("text/html", "text/markdown", "image/png",
                                                "image/svg+xml"))
            if not html_like and (WIDGET_VIEW in data or is_widget_repr(plain)):
                output["data"] = {"text/html": WIDGET_NOTE, "text/plain": ""}
                return
            for kind, value in list(data.items()):
                if isinstance(value, str | list) and kind.startswith("text/"):
                    data[kind] = self._named(_text(value))
                    if kind == "text/markdown":
                        data[kind] = _MARKDOWN_LINK.sub(
                            lambda m: f"{m.group(1)} {LIVE_LINK_NOTE}", data[kind])
        if "text" in output:
            output["text"] = self._named(_text(output["text"]))
        if "traceback" in output:
            output["traceback"] = [self._named(line) for line in output["traceback"]]
        if "evalue" in output:
            output["evalue"] = self._named(output["evalue"])

    def preprocess(self, nb, resources):
        shown = []
        for cell in nb.cells:
            if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
                kept = [line for line in cell.source.splitlines()
                        if _ASSIGNMENT.match(line) and _ASSIGNMENT.match(line)[1] not in _HIDDEN]
                if not kept:
                    continue
                cell.source = "\n".join(["# Parameters this build passed", *kept])
            shown.append(cell)
        nb.cells = shown
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            for output in cell.get("outputs", []):
                self._output(output)
        return cell, resources

