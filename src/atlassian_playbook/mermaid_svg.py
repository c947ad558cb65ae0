"""Mermaid diagrams drawn at build time, so the training site shows them with the network off.

nbconvert leaves a ```` ```mermaid ```` block as ``<div class="jp-Mermaid"><pre
class="mermaid">…</pre></div>`` and loads Mermaid from a CDN to draw it in the reader's browser:
offline, the diagram never appears. Here the diagram is drawn once, when the site is built, by
the Mermaid that JupyterLab already ships (its static assets in the environment), run in a
headless Chromium through playwright, and the page gets the ``<svg>`` inline.

JupyterLab bundles Mermaid as lazily loaded rspack chunks. The page loads JupyterLab's
``main.*.js`` (which installs the chunk loader), pushes a chunk of its own whose runtime hook
hands back the loader, and loads Mermaid the way JupyterLab's own renderer does; which chunks
and which module that is, is read from JupyterLab's bundle, not written here, so a JupyterLab
upgrade keeps working. Without playwright, Chromium or JupyterLab the diagram's source stays on
the page with a note saying why (:data:`MermaidRenderer.unavailable`), never a CDN script.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from types import TracebackType

__all__ = ["MermaidRenderer", "inline_diagrams", "jupyterlab_static"]

_DIAGRAM = re.compile(r'<div class="jp-Mermaid"><pre class="mermaid">\s*(.*?)</pre>\s*</div>', re.S)
# In JupyterLab's bundle: `…).version;let e=n=(await Promise.all([i.e(2121),…]).then(i.bind(i,
# 22597))).default` is how its Mermaid renderer loads Mermaid; the chunk ids and module id vary
# with the JupyterLab build, the shape does not.
_LOADER = re.compile(
    r"\.version;let \w+=\w+=\(await Promise\.all\(\[((?:\w\.e\(\d+\),?)+)\]\)"
    r"\.then\(\w\.bind\(\w,(\d+)\)\)\)\.default"
)
_CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
_RENDER = """async ([base, chunks, module, sources]) => {
  // Mermaid is loaded once per page: a renderer is shared by every profile of a site build,
  // and the bundle runs a chunk's callback only the first time it is pushed.
  if (!self.playbookMermaid) {
    let load;
    (self.rspackChunk_jupyterlab_application_top =
       self.rspackChunk_jupyterlab_application_top || []).push([[-1], {}, (r) => { load = r; }]);
    load.p = base;
    self.playbookMermaid = (await Promise.all(chunks.map((c) => load.e(c)))
                            .then(() => load(module))).default;
    self.playbookMermaid.initialize({startOnLoad: false, securityLevel: "strict",
                                     theme: "default"});
  }
  const mermaid = self.playbookMermaid;
  const out = [];
  for (const [n, source] of sources.entries()) {
    try { out.push((await mermaid.render(`playbook-diagram-${n}`, source)).svg); }
    catch (error) { out.push(null); }
  }
  return out;
}"""


def jupyterlab_static() -> Path | None:
    """JupyterLab's static assets in this environment (``share/jupyter/lab/static``), if any."""
    for root in (sys.prefix, sys.base_prefix):
        static = Path(root) / "share" / "jupyter" / "lab" / "static"
        if any(static.glob("main.*.js")):
            return static
    return None


def _chromium() -> str | None:
    """Debian's chromium, or ``PLAYBOOK_CHROMIUM``; None: playwright's own browser, if any."""
    chosen = os.environ.get("PLAYBOOK_CHROMIUM") or "/usr/bin/chromium"
    return chosen if Path(chosen).exists() else None


class MermaidRenderer:
    """One headless Chromium that draws Mermaid sources as SVG; use it as a context manager.

    :attr:`unavailable` says why nothing can be drawn (then :meth:`svg` returns None for each
    source): playwright missing, no JupyterLab assets, a bundle whose loader is not found.
    """

    def __init__(self) -> None:
        self.unavailable: str | None = None
        self._page = None
        self._browser = None
        self._playwright = None
        self._folder: Path | None = None
        self._loader: tuple[list[int], int] | None = None
        self._base = ""

    def __enter__(self) -> MermaidRenderer:
        static = jupyterlab_static()
        if static is None:
            self.unavailable = "JupyterLab (the `lab` extra) is not installed here"
            return self
        core = "".join(p.read_text(errors="replace") for p in static.glob("jlab_core.*.js"))
        found = _LOADER.search(core)
        if found is None:
            self.unavailable = "this JupyterLab's bundle does not load Mermaid as expected"
            return self
        chunks = [int(c) for c in re.findall(r"\d+", found.group(1))]
        self._loader = (chunks, int(found.group(2)))
        self._base = static.as_uri() + "/"
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            self.unavailable = "playwright is not installed here"
            return self
        # JupyterLab's chunks are loaded from its own folder (read only); the page is ours.
        self._folder = Path(tempfile.mkdtemp(prefix="playbook-mermaid-"))
        main = next(static.glob("main.*.js")).name
        page = self._folder / "draw.html"
        page.write_text(
            "<!doctype html><html><head><meta charset='utf-8'></head><body>"
            '<script id="jupyter-config-data" type="application/json">{}</script>'
            f"<script src='{(static / main).as_uri()}'></script></body></html>"
        )
        allowed = (page.as_uri(), static.as_uri() + "/")
        try:
            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(executable_path=_chromium(),
                                                             args=_CHROMIUM_ARGS)
            self._page = self._browser.new_page()
            # Nothing but the page and the assets is loaded: a diagram can never reach the network.
            self._page.route("**/*", lambda route: route.continue_()
                             if route.request.url.startswith(allowed) else route.abort())
            self._page.goto(page.as_uri())
        except Exception as error:  # a missing or broken browser: say so, draw nothing
            self.unavailable = f"no headless Chromium could be started ({type(error).__name__})"
            self._close()
        return self

    def svgs(self, sources: list[str]) -> list[str | None]:
        """Each source drawn as an ``<svg>`` string; None where it could not be drawn."""
        if self._page is None or self._loader is None or not sources:
            return [None] * len(sources)
        chunks, module = self._loader
        return self._page.evaluate(_RENDER, [self._base, chunks, module, sources])

    def _close(self) -> None:
        for closing in (self._browser, self._playwright):
            if closing is not None:
                try:
                    closing.close() if closing is self._browser else closing.stop()
                except Exception:  # already gone; nothing to keep
                    pass
        self._page = self._browser = self._playwright = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._close()


def inline_diagrams(body: str, renderer: MermaidRenderer) -> str:
    """``body`` with each nbconvert Mermaid block replaced by its SVG (or its source, and why)."""
    blocks = list(_DIAGRAM.finditer(body))
    if not blocks:
        return body
    drawn = renderer.svgs([html.unescape(b.group(1)).strip() for b in blocks])
    pieces, last = [], 0
    for block, svg in zip(blocks, drawn, strict=True):
        pieces.append(body[last:block.start()])
        if svg:
            pieces.append(f'<div class="jp-Mermaid playbook-diagram">{svg}</div>')
        else:
            why = renderer.unavailable or "Mermaid could not draw it"
            pieces.append(f'<div class="jp-Mermaid"><p><em>The diagram, as Mermaid source '
                          f'(not drawn: {html.escape(why)}).</em></p><pre>{block.group(1)}</pre>'
                          "</div>")
        last = block.end()
    pieces.append(body[last:])
    return "".join(pieces)
