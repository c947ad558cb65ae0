"""The training build: the playbook executed against the emulator and rendered to HTML."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import nbformat
import pytest

from atlassian_playbook import manifest
from atlassian_playbook.batch.workspace import known_secrets
from atlassian_playbook.emulator import read_state
from atlassian_playbook.errors import PlaybookError
from atlassian_playbook.profiles import profile_names
from atlassian_playbook.render import playbook_notebooks, render_playbook

from . import browser_support as bs
from .conftest import assert_no_secrets

_HREF = re.compile(r"""href=['"]([^'"]+)['"]""")
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,}")


def local_links(page: Path) -> list[str]:
    return [link for link in _HREF.findall(page.read_text())
            if not re.match(r"^(https?:|mailto:|#|data:)", link)]


def issued_digests(workspace: Path) -> set[str]:
    state = read_state(workspace / ".playbook" / "emulator-state.json")
    return {d for kind in ("access_tokens", "refresh_tokens", "codes") for d in state[kind]}


def assert_no_issued_token(site: Path, digests: set[str]) -> None:
    for page in site.glob("*.html"):
        for candidate in _TOKEN_SHAPE.findall(page.read_text()):
            assert hashlib.sha256(candidate.encode()).hexdigest() not in digests, (
                f"a token the emulator issued is in {page.name}")


def write_notebook(path: Path, *cells: str) -> Path:
    notebook = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell('workspace = ""')
    first.metadata["tags"] = ["parameters"]
    notebook.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem.title()}"), first,
                      *(nbformat.v4.new_code_cell(c) for c in cells)]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)
    return path


@pytest.mark.notebook
@pytest.mark.parametrize("profile", profile_names())
def test_render_builds_the_playbook_site_with_working_links_and_no_secret(site_build, profile):
    sequence = manifest.notebooks()
    assert [p.name for p in playbook_notebooks()] == [nb.file for nb in sequence]
    result = next(s for s in site_build.sites if s.profile == profile)
    site = result.output_dir

    assert result.ok, result.to_text()
    assert [p.status for p in result.pages] == ["ok"] * len(sequence)
    index = site / "index.html"
    links = [link for link in local_links(index) if not link.startswith("../")]  # switcher
    assert links == [f"{nb.stem}.html" for nb in playbook_notebooks()]
    for page in site.glob("*.html"):
        for link in local_links(page):
            assert (site / link).is_file(), f"{page.name} links to missing {link}"
    text = index.read_text()
    assert all(p.title in text.replace("&#x27;", "'") for p in result.pages)
    assert_no_secrets([site], known_secrets(result.workspace))
    assert_no_issued_token(site, issued_digests(result.workspace))


@pytest.mark.notebook
@pytest.mark.xdist_group("render")
def test_render_masks_tokens_a_notebook_printed_and_stops_at_the_first_failure(tmp_path):
    leaky = write_notebook(
        tmp_path / "01-leaky.ipynb",
        "import json, pathlib\n"
        "from atlassian_playbook import connection\n"
        "from atlassian_playbook.batch.workspace import seed_emulator_workspace\n"
        "import atlassian_playbook.playbook as pb\n"
        "entry = seed_emulator_workspace(workspace)\n"
        "session = pb.start(workspace, quiet=True)\n"
        "connection.refresh(session.target)  # the seeded refresh token is now rotated out\n"
        "leaked = {'old_refresh': entry.tokens.refresh_token.reveal(),\n"
        "          'access': entry.tokens.access_token.reveal(),\n"
        "          'client_secret': session.settings.client_secret.reveal()}\n"
        "pathlib.Path(workspace, 'leaked.json').write_text(json.dumps(leaked))\n"
        "print('a careless print:', *leaked.values())",
    )
    failing = write_notebook(
        tmp_path / "02-fails.ipynb",
        "from atlassian_playbook.errors import PlaybookError\n"
        "raise PlaybookError('Broken on purpose.', 'Fix the notebook.')",
    )
    never = write_notebook(tmp_path / "03-never.ipynb", "print('not reached')")
    site = tmp_path / "site"
    result = render_playbook(site, notebooks=[leaky, failing, never], keep_workspace=True)

    assert [p.status for p in result.pages] == ["ok", "failed", "not run"]
    assert not result.ok
    assert result.masked >= 3
    assert sorted(p.name for p in site.iterdir()) == [
        "01-leaky.html", "02-fails.html", "index.html"]
    index = (site / "index.html").read_text()
    assert "Broken on purpose." in index and "Fix the notebook." in index
    assert "(not run)" in index
    leaked = json.loads((result.workspace / "leaked.json").read_text())
    assert_no_secrets([site], leaked.values())
    assert "«secret:" in (site / "01-leaky.html").read_text()
    assert_no_issued_token(site, issued_digests(result.workspace))


@pytest.mark.parametrize("where", ["output", "below the output", "executed"])
def test_render_refuses_an_output_that_is_a_file_before_starting_any_kernel(tmp_path, where):
    existing = tmp_path / "site.html"
    existing.write_text("my page")
    marker = tmp_path / "ran"
    notebook = write_notebook(tmp_path / "01-marks.ipynb",
                              f"import pathlib\npathlib.Path({str(marker)!r}).touch()")
    folders = {"output": (existing, None), "below the output": (existing / "site", None),
               "executed": (tmp_path / "site", existing)}[where]
    output_dir, executed_dir = folders

    with pytest.raises(PlaybookError) as refused:
        render_playbook(output_dir, notebooks=[notebook], executed_dir=executed_dir)

    assert str(existing) in refused.value.message and "not a folder" in refused.value.message
    assert "--output" in refused.value.hint
    assert not marker.exists()  # no kernel ran
    assert existing.read_text() == "my page"
    assert not (tmp_path / "site").exists()


def _tenth(position: int, file: str) -> manifest.PlaybookNotebook:
    return manifest.PlaybookNotebook(position, file, file, "a step", ("target",), ())


def test_the_sequence_is_the_manifest_s_a_tenth_notebook_included(tmp_path, monkeypatch):
    """No glob decides what the training build runs: whatever the manifest lists, in order."""
    files = [nb.file for nb in manifest.notebooks()] + ["10-tenth.ipynb"]
    for file in files:
        write_notebook(tmp_path / file)
    monkeypatch.setattr(manifest, "NOTEBOOKS_DIR", tmp_path)
    monkeypatch.setattr(manifest, "notebooks", lambda: tuple(
        _tenth(position, file) for position, file in enumerate(files, 1)))

    assert playbook_notebooks() == [tmp_path / file for file in files]


def test_a_notebook_missing_from_the_install_is_named_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(manifest, "NOTEBOOKS_DIR", tmp_path)
    write_notebook(tmp_path / manifest.notebooks()[0].file)

    with pytest.raises(PlaybookError) as missing:
        playbook_notebooks()

    assert manifest.notebooks()[1].file in missing.value.message
    assert manifest.notebooks()[0].file not in missing.value.message
    assert "Reinstall atlassian-oauth-playbook" in missing.value.hint


# --- pages that read the same offline, with no trace of the build ----------------------------


@pytest.mark.notebook
@pytest.mark.xdist_group("render")
def test_a_page_shows_widget_snapshots_never_a_repr_and_no_trace_of_the_build(tmp_path):
    shown = write_notebook(
        tmp_path / "01-shown.ipynb",
        # A widget that offers a static snapshot beside its view, as the playbook's widgets do.
        "class Snapshot:\n"
        "    def _repr_mimebundle_(self, **kwargs):\n"
        "        return {'application/vnd.jupyter.widget-view+json':\n"
        "                    {'model_id': 'abc', 'version_major': 2, 'version_minor': 0},\n"
        "                'text/html': '<p id=\"snapshot\">3 of 5 steps ticked</p>',\n"
        "                'text/plain': 'Snapshot(childr' 'en=(Checkbox(value=True),))'}\n"
        "Snapshot()",
        # A bare ipywidgets box: a view and its Python repr, nothing a page can show. (The
        # sources keep the repr's words apart, so only an output can put them on the page.)
        "import ipywidgets\nipywidgets.VBox ([ipywidgets.HTML('<b>policy</b>')])",
        # A live link and the scratch workspace, as notebook 04 and the session banner print.
        "from IPython.display import HTML, Markdown, display\n"
        "display(HTML(f\"<a href='http://127.0.0.1:41234/authorize?x=1'>Authorize →</a> \"\n"
        "             f\"<code>{workspace}/.env</code>\"))\n"
        "display(Markdown('[the callback](http://127.0.0.1:8765/callback)'))",
    )
    site = tmp_path / "site"
    result = render_playbook(site, notebooks=[shown], keep_workspace=True)

    assert result.ok, result.to_text()
    page = (site / "01-shown.html").read_text()
    assert '<p id="snapshot">3 of 5 steps ticked</p>' in page
    assert "children=(" not in page and "VBox(" not in page
    assert "An interactive control is shown here" in page  # the bare box, as a note
    assert str(result.workspace) not in page and "playbook-render-" not in page
    assert "{workspace}/.env" in page
    assert not re.search(r"""<a\b[^>]*href=["']https?://127\.0\.0\.1""", page)
    assert "Authorize →</span>" in page
    assert "(live link: only works while the notebook runs)" in page
    assert "the callback (live link" in page
    assert not re.search(r"<script[^>]*\bsrc=", page)  # no CDN, no script from anywhere


def test_render_refuses_an_unknown_profile_before_starting_any_kernel(tmp_path, monkeypatch):
    import atlassian_playbook.render as render

    monkeypatch.setattr(render, "run_notebook", lambda *a, **k: pytest.fail("a kernel ran"))
    with pytest.raises(PlaybookError) as info:
        render.render_site(tmp_path / "site", ["custom", "mrege"])
    assert "mrege" in info.value.message
    assert not (tmp_path / "site").exists()


def test_a_diagram_that_cannot_be_drawn_keeps_its_source_and_says_why(monkeypatch):
    from atlassian_playbook import mermaid_svg

    monkeypatch.setattr(mermaid_svg, "jupyterlab_static", lambda: None)
    body = ('<p>before</p><div class="jp-Mermaid"><pre class="mermaid">\nsequenceDiagram\n'
            '    A-&gt;&gt;B: hi\n</pre></div><p>after</p>')
    with mermaid_svg.MermaidRenderer() as renderer:
        page = mermaid_svg.inline_diagrams(body, renderer)
    assert renderer.unavailable == "JupyterLab (the `lab` extra) is not installed here"
    assert "<p>before</p>" in page and "<p>after</p>" in page
    assert "A-&gt;&gt;B: hi" in page and "<svg" not in page
    assert "not drawn: JupyterLab (the `lab` extra) is not installed here" in page
    assert 'class="mermaid"' not in page  # nothing left for a script to pick up


@pytest.mark.browser
@pytest.mark.skipif(bs.skip_reason() is not None, reason=bs.skip_reason() or "")
def test_one_renderer_draws_every_profile_s_diagrams():
    """render_site shares one headless browser across profiles: its second page draws too."""
    from atlassian_playbook import mermaid_svg

    body = ('<div class="jp-Mermaid"><pre class="mermaid">\nsequenceDiagram\n'
            '    A-&gt;&gt;B: {n}\n</pre></div>')
    with mermaid_svg.MermaidRenderer() as renderer:
        pages = [mermaid_svg.inline_diagrams(body.format(n=n), renderer) for n in range(3)]
    assert renderer.unavailable is None
    assert all("<svg" in page and "not drawn" not in page for page in pages)


def test_a_build_started_while_another_holds_the_default_callback_takes_another_port(tmp_path):
    from atlassian_playbook.callback import claimed_callback_url
    from atlassian_playbook.config import DEFAULT_REDIRECT_URI, load_settings

    shown = write_notebook(
        tmp_path / "01-callback.ipynb",
        "import pathlib\nprint(pathlib.Path(workspace, '.env').read_text().strip())",
    )
    # As another build (or this suite's shared site build) holds it: before the claim, a
    # build that probed the port between the other's probe and its notebook 04 kept 8765.
    with claimed_callback_url(DEFAULT_REDIRECT_URI):
        result = render_playbook(tmp_path / "site", notebooks=[shown], keep_workspace=True)
    assert result.ok, result.to_text()
    used = load_settings(result.workspace / ".env", environ={}).redirect_uri
    assert used != DEFAULT_REDIRECT_URI and used.endswith("/callback"), used
