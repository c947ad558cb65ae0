"""The training build: the playbook executed against the emulator, as a static HTML site.

:func:`render_playbook` runs the playbook's notebooks in the manifest's order
(:mod:`~atlassian_playbook.manifest`; their default parameters, except the workspace: a fresh
temporary one) through :func:`~atlassian_playbook.execute.run_notebook`,
with every ``ATLASSIAN_*`` setting removed from the environment so only the embedded emulator
is reached. Each executed notebook becomes a page (nbconvert's HTML exporter, outputs
included) and ``index.html`` lists them in order, so people can read the whole story without
running anything. The story is told for one profile (``profile``, passed to the notebooks that
take it); :func:`render_site` builds one site per profile, each in its own folder, under an
index that switches between them.

A page carries everything it shows, so it reads the same offline: no script from a CDN
(RequireJS, MathJax, Mermaid and the widget manager are left out of nbconvert's template),
Mermaid diagrams drawn to inline SVG at build time (:mod:`.mermaid_svg`), widgets as their
static snapshots, the build's scratch paths named ``{workspace}``, and links to the loopback
servers that died with the build shown as text that says so (:mod:`.site_pages`).

Before a page is written it is scanned for secrets: the emulator's client secrets and every
token in the token store are masked where they appear, and every token-shaped string is
checked against the digests of all the tokens and codes the emulator issued (its state keeps
them hashed), so even a rotated-out token printed by mistake is caught.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from ._files import atomic_write_text
from .callback import claimed_callback_url
from .config import DEFAULT_REDIRECT_URI, save_settings
from .errors import PlaybookError, RenderError
from .execute import run_notebook
from .kernels import SpareKernels
from .manifest import notebook_paths
from .mermaid_svg import MermaidRenderer, inline_diagrams
from .profiles import DEFAULT_PROFILE
from .redact import mask
from .site_pages import DISPLAY_PRIORITY, SiteOutputs, unlink_live_links

__all__ = ["render_playbook", "render_site", "RenderResult", "RenderedPage", "SiteResult",
           "playbook_notebooks"]
# For a profile whose partner shows the callback in its own dashboard (callback rule
# "partner-shows"), what a person would paste: an instance URI of that shape, registered on the
# emulated app (emulator/default_world.yaml), so those pages read as they would for real.
_SHOWN_CALLBACK = "https://accounts.example-clerk.dev/v1/oauth_callback"
# nbconvert's lab page without the scripts it would load from a CDN.
_SITE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
_SCRATCH_NAME = "{workspace}"

# What secrets.token_urlsafe produces (the emulator's tokens and codes), long enough to matter.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,}")
_BODY = re.compile(r"<body[^>]*>", re.I)
_NOTEBOOK_LINK = re.compile(r"""(href=["'])((?:\./)?[^"'#:/]+\.ipynb)((?:#[^"']*)?["'])""")


@dataclass
class RenderedPage:
    notebook: str
    title: str
    status: str  # ok, failed, not run
    page: str | None = None  # file name in the site
    seconds: float | None = None
    error: str | None = None
    hint: str | None = None
    kernel_restarts: int = 0  # its kernel died before the first reply and was started again


@dataclass
class RenderResult:
    output_dir: Path
    pages: list[RenderedPage] = field(default_factory=list)
    masked: int = 0  # secrets found in outputs and masked before writing
    workspace: Path | None = None  # the scratch workspace, when kept (keep_workspace=True)
    profile: str = DEFAULT_PROFILE

    @property
    def ok(self) -> bool:
        return all(p.status == "ok" for p in self.pages)

    @property
    def index(self) -> Path:
        return self.output_dir / "index.html"

    def to_text(self) -> str:
        lines = [f"{p.status:>7}  {p.notebook}"
                 + (f"  ({p.seconds:.1f} s)" if p.seconds is not None else "")
                 + ("  (kernel started again)" if p.kernel_restarts else "")
                 + (f"  {p.error}  hint: {p.hint}" if p.error else "") for p in self.pages]
        if self.masked:
            lines.append(f"masked {self.masked} secret(s) found in notebook outputs")
        lines.append(f"site ({self.profile}): {self.index}")
        return "\n".join(lines)


@dataclass
class SiteResult:
    """One site per profile (``sites``), under ``output_dir/index.html``."""

    output_dir: Path
    sites: list[RenderResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(site.ok for site in self.sites)

    @property
    def index(self) -> Path:
        return self.output_dir / "index.html"

    @property
    def masked(self) -> int:
        return sum(site.masked for site in self.sites)

    def to_text(self) -> str:
        return "\n".join([*(site.to_text() for site in self.sites), f"index: {self.index}"])


def playbook_notebooks() -> list[Path]:
    """The playbook's notebooks in the manifest's order (every one, not a glob's pick)."""
    return notebook_paths()


@contextmanager
def _emulator_only() -> Iterator[None]:
    """No ATLASSIAN_* setting reaches the kernels: the build never talks to the real service."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("ATLASSIAN_")}
    for name in saved:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(saved)


@contextmanager
def _kernel_output_to(log_path: Path) -> Iterator[None]:
    """Kernels inherit stderr: send their start-up chatter to a log instead of the terminal."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(log)


def _declares(notebook: Path, name: str) -> bool:
    import nbformat

    for cell in nbformat.read(notebook, as_version=4).cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return re.search(rf"^\s*{re.escape(name)}\s*=", cell.source, re.M) is not None
    return False


def _title(notebook: Path) -> str:
    import nbformat

    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return notebook.stem


def _issued_digests(workspace: Path) -> set[str]:
    from .emulator import read_state  # here: the emulator package is not a small import

    state = read_state(workspace / ".playbook" / "emulator-state.json") or {}
    digests: set[str] = set()
    for kind in ("access_tokens", "refresh_tokens", "codes"):
        digests.update((state.get(kind) or {}).keys())
    return digests


def _mask_secrets(text: str, secrets: set[str], digests: set[str]) -> tuple[str, int]:
    found = 0
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and secret in text:
            found += text.count(secret)
            text = text.replace(secret, mask(secret))

    def check(match: re.Match[str]) -> str:
        nonlocal found
        value = match.group(0)
        if hashlib.sha256(value.encode()).hexdigest() in digests:
            found += 1
            return mask(value)
        return value

    return _TOKEN_SHAPE.sub(check, text), found


def _link_pages(body: str, pages: dict[str, str]) -> str:
    """Point links between notebooks (``05-verify-access.ipynb#x``) at the rendered pages."""

    def swap(match: re.Match[str]) -> str:
        target = pages.get(Path(match.group(2)).name)
        return f"{match.group(1)}{target}{match.group(3)}" if target else match.group(0)

    return _NOTEBOOK_LINK.sub(swap, body)


def _nav(pages: list[RenderedPage], position: int) -> str:
    links = ["<a href='index.html'>Playbook contents</a>"]
    if position > 0 and pages[position - 1].page:
        before = pages[position - 1]
        links.append(f"<a href='{before.page}'>← {html.escape(before.title)}</a>")
    if position + 1 < len(pages) and pages[position + 1].page:
        after = pages[position + 1]
        links.append(f"<a href='{after.page}'>{html.escape(after.title)} →</a>")
    return ("<nav style='font-family:system-ui,sans-serif;padding:.6em 1em;background:#f4f5f7;"
            "border-bottom:1px solid #dfe1e6'>" + " · ".join(links) + "</nav>")


def _folder_to_write(path: str | Path) -> Path:
    """``path`` made absolute, refused at once if it or a folder above it is a file.

    Checked before any notebook runs: otherwise the build would spend minutes executing the
    playbook and only then fail to write its pages.
    """
    folder = Path(path).resolve()
    for existing in (folder, *folder.parents):
        if existing.exists():
            if not existing.is_dir():
                raise RenderError(
                    f"Cannot write the output in {folder}: {existing} is a file, not a folder.",
                    "Give --output a folder (it is created if missing), or move the file away.",
                )
            break
    return folder


def _parameters(notebook: Path, workspace: Path, profile: str) -> dict[str, object]:
    """What the build passes to ``notebook``: the scratch workspace, the profile, and for a
    partner that shows its callback, an example of one (everything else: the defaults)."""
    from .profiles import get_profile

    parameters: dict[str, object] = {}
    if _declares(notebook, "workspace"):
        parameters["workspace"] = str(workspace)
    if _declares(notebook, "profile"):
        parameters["profile"] = profile
        if get_profile(profile).callback.rule == "partner-shows" and _declares(
            notebook, "callback_url"
        ):
            parameters["callback_url"] = _SHOWN_CALLBACK
    return parameters


def _exporter(names: dict[str, str]):
    """nbconvert's lab page without CDN scripts, widgets as snapshots, scratch paths named."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    config = Config({"NbConvertBase": {"display_data_priority": DISPLAY_PRIORITY}})
    exporter = HTMLExporter(
        config=config,
        template_name="lab",
        extra_loaders=[DictLoader({"playbook-site.html.j2": _SITE_TEMPLATE})],
        template_file="playbook-site.html.j2",
    )
    exporter.register_preprocessor(SiteOutputs(names), True)
    return exporter


def render_playbook(
    output_dir: str | Path = "output/site",
    *,
    notebooks: Sequence[str | Path] | None = None,
    profile: str = DEFAULT_PROFILE,
    timeout: float = 600,
    keep_workspace: bool = False,
    executed_dir: str | Path | None = None,
    on_page: Callable[[RenderedPage], object] | None = None,
    switcher: Sequence[str] = (),
    diagrams: MermaidRenderer | None = None,
) -> RenderResult:
    """Execute ``notebooks`` (default: the playbook's, in order) in a fresh workspace for
    ``profile`` and write the site.

    Stops executing at the first failing notebook (the later ones depend on it); the failing
    page is still written, with its error, and the rest are listed as not run.
    ``keep_workspace``: keep the temporary workspace (and ``kernels.log`` beside it) for a
    look afterwards; ``result.workspace`` says where. ``executed_dir``: also keep the executed
    notebooks there (scrubbed, as every executed notebook is). ``on_page`` is called as each
    notebook finishes, for progress on the terminal. ``switcher``: the other profiles built
    beside this one (sibling folders), linked from every page. ``diagrams``: a Mermaid
    renderer already open, to share its headless browser (:func:`render_site` does across
    profiles); by default the build opens its own.
    """
    from .profiles import get_profile

    get_profile(profile)  # an unknown name fails now, before any kernel starts
    out = _folder_to_write(output_dir)
    if executed_dir is not None:
        executed_dir = _folder_to_write(executed_dir)
    from .batch.workspace import known_secrets

    paths = [Path(n) for n in (notebooks or playbook_notebooks())]
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="playbook-render-"))
    workspace, executed = scratch / "workspace", scratch / "executed"
    workspace.mkdir()
    result = RenderResult(out, [RenderedPage(p.name, _title(p), "not run") for p in paths],
                          workspace=workspace if keep_workspace else None, profile=profile)
    try:
        # Notebook 04 listens on the callback URL: the default one, unless a JupyterLab session
        # or another build holds it. Inside the next two: a spare kernel starts with the
        # environment and stderr a run has.
        with claimed_callback_url(DEFAULT_REDIRECT_URI) as callback, _emulator_only(), \
                _kernel_output_to(scratch / "kernels.log"), \
                SpareKernels(runs=len(paths)) as kernels:
            save_settings({"ATLASSIAN_REDIRECT_URI": callback}, workspace / ".env")
            for path, page in zip(paths, result.pages, strict=True):
                started = time.perf_counter()
                outcome = run_notebook(path, executed / path.name,
                                       _parameters(path, workspace, profile), timeout=timeout,
                                       known_secrets=known_secrets(workspace), kernels=kernels)
                page.seconds = time.perf_counter() - started
                page.kernel_restarts = outcome.kernel_restarts
                page.status = "ok" if outcome.ok else "failed"
                if outcome.failure is not None:
                    page.error = (f"cell {outcome.failure.cell_index}: {outcome.failure.ename}: "
                                  f"{outcome.failure.evalue}".splitlines()[0])
                    page.hint = outcome.failure.hint
                if outcome.output_path.exists():
                    page.page = path.stem + ".html"
                    if executed_dir is not None:
                        Path(executed_dir).mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(outcome.output_path, Path(executed_dir) / path.name)
                if on_page is not None:
                    on_page(page)
                if not outcome.ok:
                    break
        secrets = known_secrets(workspace)
        digests = _issued_digests(workspace)
        names = {str(p): _SCRATCH_NAME for p in {workspace, workspace.resolve()}}
        names.update({str(p): "{build}" for p in {scratch, scratch.resolve()}})
        exporter = _exporter(names)
        bodies: dict[str, str] = {}
        with nullcontext(diagrams) if diagrams is not None else MermaidRenderer() as drawing:
            for page in result.pages:
                if page.page is None:
                    continue
                body, _ = exporter.from_filename(str(executed / page.notebook))
                body = _link_pages(body, {p.notebook: p.page for p in result.pages if p.page})
                body = unlink_live_links(inline_diagrams(body, drawing))
                body, found = _mask_secrets(body, secrets, digests)
                result.masked += found
                bodies[page.page] = body
        for position, page in enumerate(result.pages):
            if page.page is not None:
                body = bodies[page.page]
                match = _BODY.search(body)
                cut = match.end() if match else 0
                nav = _nav(result.pages, position, profile, switcher)
                bodies[page.page] = body[:cut] + nav + body[cut:]
        bodies["index.html"] = _index(result, switcher)
        leaks = [name for name, body in bodies.items() if any(s in body for s in secrets if s)]
        if leaks:  # cannot happen after masking; refuse to write rather than trust that
            raise PlaybookError(f"A secret is still in {', '.join(leaks)} after masking.",
                                "Report this bug; nothing was written.")
        for page in result.pages:
            stale = out / (Path(page.notebook).stem + ".html")
            if stale.exists() and page.page is None:
                stale.unlink()
        for name, body in bodies.items():
            atomic_write_text(out / name, body, mode=0o644)
    finally:
        if not keep_workspace:
            shutil.rmtree(scratch, ignore_errors=True)
    return result


def render_site(
    output_dir: str | Path = "output/site",
    profiles: Sequence[str] = (DEFAULT_PROFILE,),
    *,
    timeout: float = 600,
    on_page: Callable[[str, RenderedPage], object] | None = None,
    keep_workspace: bool = False,
) -> SiteResult:
    """One site per profile in ``profiles``, each in ``output_dir/<profile>/``, and
    ``output_dir/index.html`` to choose one; every page links to the same page of the others.

    Every profile is built even when one fails (they are independent); ``result.ok`` says
    whether all did. ``on_page(profile, page)`` reports progress. ``keep_workspace``: keep
    each profile's scratch workspace (:func:`render_playbook`'s).
    """
    from .profiles import get_profile

    chosen = list(dict.fromkeys(profiles))
    for name in chosen:
        get_profile(name)  # every name checked before the first build starts
    out = _folder_to_write(output_dir)
    site = SiteResult(out)
    with MermaidRenderer() as diagrams:  # one headless browser for every profile's diagrams
        for name in chosen:
            report = None if on_page is None else (lambda page, name=name: on_page(name, page))
            site.sites.append(render_playbook(out / name, profile=name, timeout=timeout,
                                              on_page=report, switcher=chosen,
                                              diagrams=diagrams,
                                              keep_workspace=keep_workspace))
    atomic_write_text(out / "index.html", _profiles_index(site), mode=0o644)
    return site


_INDEX_CSS = """body{font-family:system-ui,sans-serif;max-width:48em;margin:3em auto;padding:0 1em;
line-height:1.5;color:#172b4d}li{margin:.4em 0}.failed{color:#bf2600}.muted{color:#6b778c}"""


def _profile_title(name: str) -> str:
    from .profiles import get_profile

    return get_profile(name).title


def _switch(profile: str, switcher: Sequence[str], page: str) -> str:
    """Links to ``page`` in the sibling profiles' folders (none when built alone)."""
    if len(switcher) < 2:
        return ""
    links = [f"<strong>{html.escape(name)}</strong>" if name == profile
             else f"<a href='../{html.escape(name)}/{page}'>{html.escape(name)}</a>"
             for name in switcher]
    return "Profile: " + " | ".join(links)


def _nav(pages: list[RenderedPage], position: int, profile: str = DEFAULT_PROFILE,
         switcher: Sequence[str] = ()) -> str:
    links = ["<a href='index.html'>Playbook contents</a>"]
    if position > 0 and pages[position - 1].page:
        before = pages[position - 1]
        links.append(f"<a href='{before.page}'>← {html.escape(before.title)}</a>")
    if position + 1 < len(pages) and pages[position + 1].page:
        after = pages[position + 1]
        links.append(f"<a href='{after.page}'>{html.escape(after.title)} →</a>")
    switch = _switch(profile, switcher, pages[position].page or "index.html")
    return ("<nav style='font-family:system-ui,sans-serif;padding:.6em 1em;background:#f4f5f7;"
            "border-bottom:1px solid #dfe1e6'>" + " · ".join(links)
            + (f"<span style='float:right'>{switch}</span>" if switch else "") + "</nav>")


def _index(result: RenderResult, switcher: Sequence[str] = ()) -> str:
    items = []
    for page in result.pages:
        title = html.escape(page.title)
        if page.page:
            entry = f"<a href='{html.escape(page.page)}'>{title}</a>"
        else:
            entry = f"<span class='muted'>{title} (not run)</span>"
        if page.status == "failed":
            entry += (f" <span class='failed'>— failed: {html.escape(page.error or '')} "
                      f"{html.escape(page.hint or '')}</span>")
        items.append(f"<li>{entry} <span class='muted'>{html.escape(page.notebook)}</span></li>")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    switch = _switch(result.profile, switcher, "index.html")
    up = "<p><a href='../index.html'>All profiles</a></p>" if switch else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Atlassian OAuth playbook</title><style>{_INDEX_CSS}</style></head><body>"
        f"{up}<h1>Atlassian OAuth 2.0 (3LO) playbook</h1>"
        f"<p><strong>Profile: {html.escape(result.profile)}</strong> "
        f"({html.escape(_profile_title(result.profile))}). {switch}</p>"
        "<p>Every notebook of the playbook, executed in order against the local emulator of "
        "Atlassian (no real account, no real secret), so you can read each step and what it "
        f"shows without running anything. Built {when}. Secrets are masked "
        "(<code>«secret:1a2b3c»</code>).</p>"
        f"<ol>{''.join(items)}</ol></body></html>\n"
    )


def _profiles_index(site: SiteResult) -> str:
    items = []
    for result in site.sites:
        name = html.escape(result.profile)
        state = "" if result.ok else " <span class='failed'>— a notebook failed</span>"
        items.append(f"<li><a href='{name}/index.html'>{name}</a>: "
                     f"{html.escape(_profile_title(result.profile))}{state}</li>")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Atlassian OAuth playbook</title><style>{_INDEX_CSS}</style></head><body>"
        "<h1>Atlassian OAuth 2.0 (3LO) playbook</h1>"
        "<p>The playbook told once per profile: who the app is for (your own integration, or "
        "a partner that holds its credentials). Each is the whole sequence, executed against "
        "the local emulator; pick the one that is yours.</p>"
        f"<ul>{''.join(items)}</ul></body></html>\n"
    )
