"""The training site in a real browser, opened from disk with the network cut off: one site per
bundled profile (``render --profile all``), every page self-contained, page 01's sequence
diagram drawn as SVG, no widget repr, no build path, no dead loopback link.

One build of every profile for the session (conftest's ``site_build``, about a minute, shared
with the render tests): each test reads that build.
Screenshots go to ``$PLAYBOOK_SCREENSHOTS`` or the pytest tmp dir.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from atlassian_playbook.profiles import profile_names

from . import browser_support as bs

pytestmark = [
    pytest.mark.browser,
    pytest.mark.notebook,
    pytest.mark.xdist_group("render"),
    pytest.mark.skipif(bs.skip_reason() is not None, reason=bs.skip_reason() or ""),
]

PROFILES = profile_names()
_SCRATCH = re.compile(r"/tmp/|playbook-render-|playbook-mermaid-")


@pytest.fixture(scope="module")
def shots_dir(tmp_path_factory) -> Path:
    chosen = os.environ.get("PLAYBOOK_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("site-shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def site(site_build):
    assert site_build.ok, site_build.to_text()
    assert [s.profile for s in site_build.sites] == list(PROFILES)
    return site_build


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = bs.launch_chromium(playwright, tmp_path_factory.mktemp("site-chromium"))
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def offline(browser, site):
    """A tab that may load only the site's own files; every other request is aborted and
    remembered (``tab.outside``)."""
    root = site.output_dir.resolve().as_uri() + "/"
    tab = browser.new_page()
    tab.outside = []

    def only_the_site(route):
        if route.request.url.startswith(root):
            route.continue_()
        else:
            tab.outside.append(route.request.url)
            route.abort()

    tab.route("**/*", only_the_site)
    # file:// loads are not always routed: watch every request as well.
    tab.on("request", lambda r: None if r.url.startswith(root) else tab.outside.append(r.url))
    yield tab
    tab.close()


def _open(tab, path: Path) -> None:
    tab.goto(path.resolve().as_uri())
    tab.wait_for_load_state("load")


@pytest.mark.parametrize("profile", PROFILES)
def test_every_page_of_the_profile_reads_offline_with_no_trace_of_the_build(
    profile, site, offline, shots_dir
):
    folder = site.output_dir / profile
    pages = sorted(folder.glob("*.html"))
    assert [p.name for p in pages][:1] == ["01-overview.html"] and len(pages) >= 10

    _open(offline, folder / "01-overview.html")
    diagram = offline.locator(".jp-Mermaid svg")
    assert diagram.count() == 1, "page 01's sequence diagram is not drawn as an <svg>"
    assert diagram.get_attribute("aria-roledescription") == "sequence"
    box = diagram.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 200  # drawn, not blank
    diagram.screenshot(path=str(shots_dir / f"{profile}-01-diagram.png"))

    for page in pages:
        _open(offline, page)
        html_text, text = offline.content(), offline.locator("body").inner_text()
        assert "children=(" not in html_text, f"{profile}/{page.name} shows a widget repr"
        assert not _SCRATCH.search(html_text), f"{profile}/{page.name} names the build's folder"
        live = offline.locator("a[href*='127.0.0.1'], a[href*='localhost']")
        assert live.count() == 0, f"{profile}/{page.name} links to a loopback server"
        assert text.strip()
        if page.stem in ("02-create-app", "07-partner-handoff", "09-personal-data"):
            offline.screenshot(path=str(shots_dir / f"{profile}-{page.stem}.png"), full_page=True)
    assert offline.outside == [], f"{profile}: requests outside the site: {offline.outside[:3]}"


def test_the_index_switches_between_profiles_and_pages_follow(site, offline):
    _open(offline, site.index)
    for profile in PROFILES:
        offline.locator(f"a[href='{profile}/index.html']").click()
        offline.wait_for_load_state("load")
        assert offline.locator("h1 + p strong").first.inner_text() == f"Profile: {profile}"
        offline.go_back()
    # From a page of one profile to the same page of another.
    _open(offline, site.output_dir / "custom" / "07-partner-handoff.html")
    offline.locator("nav a[href='../merge/07-partner-handoff.html']").click()
    offline.wait_for_load_state("load")
    body = offline.locator("body").inner_text()
    assert "https://app.merge.dev/oauth/callback" in body and "OAuth Client Id" in body
    assert offline.outside == []


def test_the_personal_data_page_shows_a_cycle_for_every_profile(site, offline):
    for profile in PROFILES:
        _open(offline, site.output_dir / profile / "09-personal-data.html")
        body = offline.locator("body").inner_text()
        if "Skipped." in body:  # no report:personal-data: the request it would send instead
            assert "would carry these" in body and "5be24ba3f91c106033269289" in body
            assert body.count("Skipped.") == 1 and "Nothing to repeat" in body
        else:
            assert "closed" in body and "updated" in body and "refresh or erase" in body
            assert "1 time with" in body and "1 request sent" in body
            assert "time(s)" not in body and "request(s)" not in body
        assert "You now have" in body
