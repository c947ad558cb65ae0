"""The HTML a person sees at /authorize: the consent screen and the error page, each answered
with the headers that keep it to itself.

Usable in a real browser (and by playwright): ``#site`` is the site picker with a "Choose a
site" placeholder, ``#accept`` stays disabled until a site is chosen (a few lines of inline JS,
plus the ``required`` attribute and a server-side check), ``#deny`` needs no site.

Every page is sent with ``X-Frame-Options: DENY`` and a ``Content-Security-Policy`` that allows
only what the page itself holds: its one inline style and script, by hash (no
``'unsafe-inline'``), no frame ancestors (a framed consent page is clickjacking's classic
target), no ``<base>``, and forms posting only to the emulator, plus, on the consent page, the
origin of the app's callback: the decision redirects there, and browsers check form-action on
the redirect too.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from urllib.parse import urlsplit

from ._http import Response

__all__ = ["consent_page", "error_page"]

_STYLE = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,sans-serif;background:#f4f5f7;
color:#172b4d;margin:0}main{max-width:520px;margin:48px auto;background:#fff;padding:32px;
border-radius:8px;box-shadow:0 1px 3px rgba(9,30,66,.25)}h1{font-size:20px}ul{padding-left:20px}
code{background:#f4f5f7;padding:1px 4px;border-radius:3px}select,button{font-size:14px;padding:6px}
button{margin-right:8px}#accept{background:#0052cc;color:#fff;border:0;border-radius:3px}
#accept:disabled{background:#a5adba}.note{color:#5e6c84;font-size:12px}
"""


_SCRIPT = """
(function () {
  var site = document.getElementById("site"), accept = document.getElementById("accept");
  function update() { accept.disabled = !site.value; }
  site.addEventListener("change", update);
  update();
})();
"""


def _source_hash(text: str) -> str:
    """The CSP source that allows exactly this inline ``<style>`` or ``<script>`` text."""
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
    return f"'sha256-{digest}'"


_STYLE_SOURCE, _SCRIPT_SOURCE = _source_hash(_STYLE), _source_hash(_SCRIPT)


def _origin_source(url: str) -> str:
    """The CSP source for ``url``'s origin. CSP has no syntax for an IPv6 literal host (nor
    for odd characters a registration allows), so such a callback gets its scheme only."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number: the browser will not go there anyway
        return f"{parts.scheme}:"
    if not host.isascii() or not host or not all(c.isalnum() or c in ".-" for c in host):
        return f"{parts.scheme}:"
    return f"{parts.scheme}://{host}{port}"


def _response(status: int, page: str, *, script: bool = False,
              form_action: tuple[str, ...] = ("'none'",)) -> Response:
    """``page`` with its headers; ``script`` for the consent page's one script."""
    policy = [
        "default-src 'none'",
        f"style-src {_STYLE_SOURCE}",
        *([f"script-src {_SCRIPT_SOURCE}"] if script else []),
        f"form-action {' '.join(form_action)}",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
    return Response(status, page.encode("utf-8"), [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Security-Policy", "; ".join(policy)),
        ("X-Frame-Options", "DENY"),
    ])


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><main>{body}<p class="note">Atlassian emulator (loopback). Not '
        "auth.atlassian.com.</p></main></body></html>\n"
    )


def consent_page(
    *,
    app_name: str,
    user: dict,
    scopes: list[tuple[str, str]],
    sites: list[dict],
    consent_request: str,
    redirect_uri: str,
    action: str = "/authorize/decision",
    switch_accounts: list[tuple[str, str]] = (),
) -> Response:
    """The consent screen, 200. ``scopes`` are (scope, the API it belongs to) pairs;
    ``sites`` the user's sites; ``redirect_uri`` the callback the decision redirects to;
    ``switch_accounts`` (name, link) pairs to sign in as another user of the world."""
    items = "".join(
        f'<li><code class="scope">{escape(scope)}</code> <span class="api">({escape(api)})</span>'
        "</li>"
        for scope, api in scopes
    )
    options = "".join(
        f'<option value="{escape(site["id"])}">{escape(site["url"].removeprefix("https://"))}'
        "</option>"
        for site in sites
    )
    switch = (
        '<p class="note" id="switch-account">Not you? Switch account: '
        + ", ".join(f'<a href="{escape(link)}">{escape(name)}</a>'
                    for name, link in switch_accounts)
        + "</p>"
        if switch_accounts
        else ""
    )
    body = f"""
<h1 id="app-name">{escape(app_name)} is requesting access to your Atlassian account</h1>
<p>Signed in as <strong id="account">{escape(user["name"])}</strong> ({escape(user["email"])})</p>
{switch}
<form method="post" action="{escape(action)}" id="consent-form">
<input type="hidden" name="consent_request" value="{escape(consent_request)}">
<label for="site">Use app on</label>
<select id="site" name="site" required>
<option value="" selected disabled>Choose a site</option>{options}
</select>
<p>{escape(app_name)} would like to:</p>
<ul id="scopes">{items}</ul>
<button id="accept" type="submit" name="decision" value="accept" disabled>Accept</button>
<button id="deny" type="submit" name="decision" value="deny" formnovalidate>Deny</button>
</form>
<script>{_SCRIPT}</script>"""
    return _response(200, _page(f"Authorize {app_name}", body),
                     script=True, form_action=("'self'", _origin_source(redirect_uri)))


def error_page(detail: str, code: str | None = None, status: int = 400) -> Response:
    """Atlassian's consent-side failures are pages, not redirects: the app never hears of them.

    ``code`` (e.g. ``redirect_uri_mismatch``) is shown under the message, as Atlassian shows an
    error code a developer can search for.
    """
    code_html = f'<p>Error code: <code id="error-code">{escape(code)}</code></p>' if code else ""
    body = (
        '<h1 id="error-title">Something went wrong</h1>'
        f'<p id="error-detail">{escape(detail)}</p>{code_html}'
    )
    return _response(status, _page("Something went wrong", body))
