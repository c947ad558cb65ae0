"""The training build: the playbook executed against the emulator, as a static HTML site.

:func:`render_playbook` runs the playbook's notebooks in the manifest's order
(:mod:`~atlassian_playbook.manifest`; their default parameters, except the workspace: a fresh
temporary one) through :func:`~atlassian_playbook.execute.run_notebook`,
with every ``ATLASSIAN_*`` setting removed from the environment so only the embedded emulator
is reached. Each executed notebook becomes a page (nbconvert's HTML exporter, outputs
included) and ``index.html`` lists them in order, so people can read the whole story without
running anything.

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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ._files import atomic_write_text, read_json
from .config import DEFAULT_REDIRECT_URI, save_settings
from .errors import PlaybookError, RenderError
from .execute import run_notebook
from .kernels import SpareKernels
from .manifest import notebook_paths
from .redact import mask

__all__ = ["render_playbook", "RenderResult", "RenderedPage", "playbook_notebooks"]

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
        lines.append(f"site: {self.index}")
        return "\n".join(lines)


def _callback_url() -> str:
    import socket
    from urllib.parse import urlsplit

    port = urlsplit(DEFAULT_REDIRECT_URI).port
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/callback"


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
    state = read_json(workspace / ".playbook" / "emulator-state.json", default=None) or {}
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


def render_playbook(
    output_dir: str | Path = "output/site",
    *,
    notebooks: Sequence[str | Path] | None = None,
    timeout: float = 600,
    keep_workspace: bool = False,
    executed_dir: str | Path | None = None,
    on_page: Callable[[RenderedPage], object] | None = None,
) -> RenderResult:
    """Execute ``notebooks`` (default: the playbook's, in order) in a fresh workspace and write
    the site.

    Stops executing at the first failing notebook (the later ones depend on it); the failing
    page is still written, with its error, and the rest are listed as not run.
    ``keep_workspace``: keep the temporary workspace (and ``kernels.log`` beside it) for a
    look afterwards; ``result.workspace`` says where. ``executed_dir``: also keep the executed
    notebooks there (scrubbed, as every executed notebook is). ``on_page`` is called as each
    notebook finishes, for progress on the terminal.
    """
    out = _folder_to_write(output_dir)
    if executed_dir is not None:
        executed_dir = _folder_to_write(executed_dir)
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    from .batch.workspace import known_secrets

    paths = [Path(n) for n in (notebooks or playbook_notebooks())]
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="playbook-render-"))
    workspace, executed = scratch / "workspace", scratch / "executed"
    workspace.mkdir()
    # Notebook 04 listens on the callback URL: keep the default one, unless something (a
    # JupyterLab session, another build) holds its port.
    save_settings({"ATLASSIAN_REDIRECT_URI": _callback_url()}, workspace / ".env")
    result = RenderResult(out, [RenderedPage(p.name, _title(p), "not run") for p in paths],
                          workspace=workspace if keep_workspace else None)
    try:
        # Inside the two: a spare kernel starts with the environment and stderr a run has.
        with _emulator_only(), _kernel_output_to(scratch / "kernels.log"), \
                SpareKernels(runs=len(paths)) as kernels:
            for path, page in zip(paths, result.pages, strict=True):
                parameters = {"workspace": str(workspace)} if _declares(path, "workspace") else {}
                started = time.perf_counter()
                outcome = run_notebook(path, executed / path.name, parameters, timeout=timeout,
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
        exporter = HTMLExporter(template_name="lab")
        # Readers need the documented defaults, not papermill's injected cell with the path of
        # this build's scratch workspace.
        exporter.register_preprocessor(
            TagRemovePreprocessor(remove_cell_tags={"injected-parameters"}, enabled=True), True
        )
        bodies: dict[str, str] = {}
        for page in result.pages:
            if page.page is None:
                continue
            body, _ = exporter.from_filename(str(executed / page.notebook))
            body = _link_pages(body, {p.notebook: p.page for p in result.pages if p.page})
            body, found = _mask_secrets(body, secrets, digests)
            result.masked += found
            bodies[page.page] = body
        for position, page in enumerate(result.pages):
            if page.page is not None:
                body = bodies[page.page]
                match = _BODY.search(body)
                cut = match.end() if match else 0
                bodies[page.page] = body[:cut] + _nav(result.pages, position) + body[cut:]
        bodies["index.html"] = _index(result)
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


_INDEX_CSS = """body{font-family:system-ui,sans-serif;max-width:48em;margin:3em auto;padding:0 1em;
line-height:1.5;color:#172b4d}li{margin:.4em 0}.failed{color:#bf2600}.muted{color:#6b778c}"""


def _index(result: RenderResult) -> str:
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
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Atlassian OAuth playbook</title><style>{_INDEX_CSS}</style></head><body>"
        "<h1>Atlassian OAuth 2.0 (3LO) playbook</h1>"
        "<p>Every notebook of the playbook, executed in order against the local emulator of "
        "Atlassian (no real account, no real secret), so you can read each step and what it "
        f"shows without running anything. Built {when}. Secrets are masked "
        "(<code>«secret:1a2b3c»</code>).</p>"
        f"<ol>{''.join(items)}</ol></body></html>\n"
    )
