"""The connection lifecycle as three steps: log in, verify, refresh.

A service account's connection takes the same three: :func:`login_client_credentials` fetches
a token with the client credentials (no browser, no consent), :func:`verify` checks it as a
3LO one minus the consent, and :func:`refresh` fetches a new access token (there is no refresh
token to rotate).

The CLI and the notebooks both call these, so a person at a terminal, a trainer in JupyterLab
and a batch run under papermill take the same code path. Each step returns a result object
that renders itself as text (CLI), as a dict (``--json``, batch records) and in notebooks.
"""

from __future__ import annotations

import html
import re
import time
import webbrowser
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from ._http import new_client
from .api import Site, choose_site
from .callback import is_loopback, obtain_code
from .config import Settings
from .errors import CallbackError, RedirectUriMismatch, SiteSelectionRequired, TokenStoreError
from .redact import get_logger
from .target import Target
from .tokens import CLIENT_CREDENTIALS, TokenEntry, TokenSet
from .verify import VerificationReport, consent_check, verify_connection

__all__ = [
    "LoginResult",
    "RefreshResult",
    "login",
    "login_client_credentials",
    "refresh",
    "verify",
    "visit_headless",
]

log = get_logger(__name__)


@dataclass
class LoginResult:
    entry: TokenEntry
    sites: list[Site]
    requested_scopes: tuple[str, ...]
    warnings: list[str] = field(default_factory=list)

    @property
    def granted_scopes(self) -> tuple[str, ...]:
        return self.entry.tokens.scopes

    def to_dict(self) -> dict:
        tokens = self.entry.tokens
        return {
            "account_id": self.entry.account_id,
            "client_id": self.entry.client_id,
            "requested_scopes": list(self.requested_scopes),
            "granted_scopes": list(tokens.scopes),
            "expires_at": _iso(tokens.expires_at),
            # Not "refresh_token": redaction masks that key's value wherever it is printed.
            "refresh_token_issued": tokens.refresh_token is not None,
            "sites": [{"id": s.id, "name": s.name, "url": s.url} for s in self.sites],
            "site": self.entry.site,
            "grant": self.entry.grant,
            "warnings": list(self.warnings),
        }

    def to_text(self) -> str:
        data = self.to_dict()
        service = self.entry.is_service_account
        lines = [
            f"Logged in as {'service account' if service else 'account'} "
            f"{data['account_id'] or '(unknown: read:me not granted)'}"
            + (" (client credentials)" if service else ""),
            f"  access token expires {data['expires_at']}",
            "  refresh token: none (service accounts fetch a new token with the client "
            "credentials)" if service else
            f"  refresh token {'present' if data['refresh_token_issued'] else 'missing'}",
            f"  granted scopes: {' '.join(data['granted_scopes']) or '(none)'}",
            "  sites: "
            + (", ".join(f"{s['name']} ({s['id']})" for s in data["sites"]) or "(none)"),
        ]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


@dataclass
class RefreshResult:
    entry: TokenEntry
    previous_refresh_token: str  # masked fingerprint, never the value
    new_refresh_token: str
    # The tokens before the refresh, for the lifecycle notebook's reuse demonstration.
    previous_tokens: TokenSet | None = field(default=None, repr=False)

    @property
    def rotated(self) -> bool:
        return self.previous_refresh_token != self.new_refresh_token

    def to_dict(self) -> dict:
        if self.entry.is_service_account:
            previous = self.previous_tokens
            return {
                "account_id": self.entry.account_id,
                "grant": self.entry.grant,
                "expires_at": _iso(self.entry.tokens.expires_at),
                "refresh_token_issued": False,
                "new_access_token": previous is None
                or previous.access_token != self.entry.tokens.access_token,
                "note": NO_REFRESH_TOKEN,
                "scopes": list(self.entry.tokens.scopes),
            }
        return {
            "account_id": self.entry.account_id,
            "grant": self.entry.grant,
            "expires_at": _iso(self.entry.tokens.expires_at),
            "previous_refresh_token": self.previous_refresh_token,
            "new_refresh_token": self.new_refresh_token,
            "rotated": self.rotated,
            "scopes": list(self.entry.tokens.scopes),
        }

    def to_text(self) -> str:
        d = self.to_dict()
        if self.entry.is_service_account:
            return (f"Fetched a new access token for service account {d['account_id']}: "
                    f"it expires {d['expires_at']}\n  {NO_REFRESH_TOKEN}")
        return (
            f"Refreshed account {d['account_id']}: access token expires {d['expires_at']}\n"
            f"  refresh token rotated {d['previous_refresh_token']} -> {d['new_refresh_token']}"
            " (the old one stops working after the reuse leeway; the new one is saved)"
        )


NO_REFRESH_TOKEN = (
    "service accounts have no refresh token: a new access token was fetched with the client "
    "credentials"
)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


_PAGE_HINTS = {
    "site_admin_required": "A site admin must allow user-installed apps (Atlassian "
    "Administration > Apps > Sites > the site > Connected apps: User installed apps) or "
    "consent to the app once; then log in again.",
    "invalid_scope": "Add every requested scope's API on the console's Permissions tab, or "
    "remove the scope from ATLASSIAN_SCOPES; then log in again.",
    "invalid_client": "Copy the Client ID from the console's Settings tab into .env.",
}


def page_text(page: str) -> str:
    """An HTML page's text as a person reads it: no style, script or emulator note."""
    body = re.sub(r"(?is)<(style|script|head)\b.*?</\1>", " ", page)
    body = re.sub(r'(?is)<p class="note">.*?</p>', " ", body)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def consent_page_error(status: int, page: str) -> CallbackError | RedirectUriMismatch:
    """The error for a consent-side failure page, from its text as a person reads it.

    Atlassian shows these as pages, never redirects, so the app never hears of them; the
    emulator marks each with an error code (``#error-code``) that picks the hint.
    """
    found = re.search(r'id="error-code">([^<]+)<', page)
    code = html.unescape(found.group(1)) if found else None
    message = f"The authorization page answered {status}: {page_text(page)[:300]}"
    if code == "redirect_uri_mismatch":
        return RedirectUriMismatch(message, error=code, status_code=status)
    return CallbackError(message, _PAGE_HINTS.get(
        code or "", "Check the client id, the callback URL and the scopes against the console."))


def visit_headless(url: str, *, stop_at: str | None = None, site: str | None = None) -> str:
    """Play the user's browser against a loopback emulator with auto-consent.

    Follows redirects while they stay on loopback (so a loopback callback listener receives the
    code) and stops at a redirect elsewhere (a partner's callback such as Merge's, which is
    never requested), returning the URL the browser would have landed on. ``stop_at`` (paste
    mode's callback URL, where nothing listens) stops there too. ``site`` (a cloud id or name)
    is the site the person chooses at consent: the emulator's ``emulator_site`` control. When
    the authorize page answers with an error instead, its text becomes the error, as a person
    would read it.
    """
    if site:
        url += ("&" if "?" in url else "?") + urlencode({"emulator_site": site})
    for _ in range(10):
        if not is_loopback(url) or (stop_at and url.split("?")[0] == stop_at.split("?")[0]):
            return url
        with new_client(timeout=30) as browser:
            response = browser.get(url, follow_redirects=False)
        if response.is_redirect:
            url = str(response.url.join(response.headers["location"]))
            continue
        if response.status_code >= 400:
            raise consent_page_error(response.status_code, response.text)
        return url
    raise CallbackError("Too many redirects during the headless login.",
                        "Check the callback URL against the console's Authorization tab.")


def login(
    target: Target,
    *,
    scopes: Sequence[str] | None = None,
    mode: str = "auto",
    browser: str = "system",
    paste: Callable[[], str] | None = None,
    show_url: Callable[[str], object] = print,
    timeout: float = 300.0,
    site: str | None = None,
) -> LoginResult:
    """Run the authorization code flow and store the tokens.

    ``mode``: ``listen`` catches the redirect on the loopback callback, ``paste`` asks
    ``paste()`` for the URL the browser landed on (remote hubs, partner callbacks), ``auto``
    listens when the callback is a loopback URL. ``browser``: ``system`` opens the default
    browser, ``none`` leaves it to the person (``show_url`` shows the link), ``headless`` plays
    the browser against the loopback emulator with auto-consent. ``show_url`` gets the
    authorization URL before anything waits, so a person can always open it by hand.

    ``site`` (a cloud id, name or URL) is the site this login is for: the headless browser
    chooses it at consent (a person must choose it themselves: Atlassian's URL cannot), and
    it becomes the connection's site. A re-consent for another site adds that site to the same
    grant (FACTS.md, "One grant per app per account"), which is why a recovery passes the site
    the connection had chosen.
    """
    settings = target.settings
    settings.require_credentials()
    scopes = tuple(scopes or settings.scopes)
    if mode == "auto":
        mode = "listen" if is_loopback(settings.redirect_uri) else "paste"
    landed: list[str] = []
    opener: Callable[[str], object] | None = None
    if browser == "headless":
        if not is_loopback(settings.auth_base_url):
            raise CallbackError(
                "A headless login is only possible against the local emulator.",
                "Open the authorization URL in a browser, or use --paste.",
            )
        # In paste mode nothing listens on the callback: land there, as a browser shows it.
        stop_at = settings.redirect_uri if mode == "paste" else None
        opener = lambda url: landed.append(  # noqa: E731
            visit_headless(url, stop_at=stop_at, site=site))
        paste = paste or (lambda: landed[-1])
    elif browser == "system":
        opener = webbrowser.open
    if mode == "paste" and paste is None:
        raise CallbackError(
            f"The callback {settings.redirect_uri} is not a loopback URL, so nothing here can "
            "catch the redirect.",
            "Use paste mode (--paste) and paste the URL the browser lands on.",
        )

    with target.oauth_client() as oauth:
        request = oauth.authorization_request(scopes)

        def send_user(url: str) -> None:
            # Called once the listener is bound (listen mode), so the link a person sees
            # always has someone waiting behind it.
            show_url(url)
            if opener is not None:
                opener(url)

        code = obtain_code(
            oauth, request, mode=mode, open_browser=send_user, paste=paste, timeout=timeout
        )
        tokens = oauth.exchange_code(code)

    warnings: list[str] = []
    if "offline_access" in scopes and tokens.refresh_token is None:
        warnings.append("no refresh token came back: offline_access was not granted.")
    elif tokens.refresh_token is None:
        warnings.append(
            "no refresh token: add offline_access to the scopes to refresh without a new login."
        )
    missing = [s for s in scopes if s not in tokens.scopes and s != "offline_access"]
    if missing:
        warnings.append(f"requested but not granted: {' '.join(missing)}.")

    with target.api_client(tokens=tokens) as api:
        account_id = api.me().get("account_id") if "read:me" in tokens.scopes else None
        sites = api.accessible_resources()
    chosen = _chosen_site(settings, sites, site or _remembered_site(target, account_id))
    if site and _granted(sites, site) is None:
        warnings.append(
            f"the site {site} was asked for but not granted: the consent chose "
            f"{', '.join(s.name for s in sites) or 'no site'}; log in again and choose {site}."
        )
    elif chosen is None and len(sites) > 1:
        warnings.append(
            f"{len(sites)} sites granted; set ATLASSIAN_SITE to choose one "
            f"({', '.join(s.name for s in sites)})."
        )
    elif chosen is not None and len(sites) > 1 and not (site or settings.site):
        warnings.append(
            f"{len(sites)} sites granted (a consent for another site adds it to the same "
            f"grant); this connection keeps {chosen['name']}, the site it used before. Set "
            "ATLASSIAN_SITE to use another."
        )
    entry = TokenEntry(
        client_id=settings.client_id,
        account_id=account_id,
        tokens=tokens,
        requested_scopes=scopes,
        site=chosen,
        updated_at=time.time(),
    )
    target.store.put(entry)
    log.info("stored tokens for %s in %s", entry.key, settings.token_store)
    return LoginResult(entry=entry, sites=sites, requested_scopes=scopes, warnings=warnings)


def login_client_credentials(
    target: Target, *, scopes: Sequence[str] | None = None, site: str | None = None
) -> LoginResult:
    """Fetch a service account's token with the client credentials and store it: no browser,
    no callback, no consent. ``scopes`` narrows the token to some of the credential's (none:
    all the admin chose); the stored connection remembers them for every later fetch.

    The account id comes from ``/me`` when the credential has ``read:me``; the site, as for a
    3LO login, from ATLASSIAN_SITE, ``site``, or the only site granted.
    """
    settings = target.settings
    settings.require_credentials()
    asked = tuple(dict.fromkeys(scopes or ()))
    with target.oauth_client() as oauth:
        tokens = oauth.client_credentials(asked or None)
    warnings: list[str] = []
    with target.api_client(tokens=tokens) as api:
        account_id = api.me().get("account_id") if "read:me" in tokens.scopes else None
        sites = api.accessible_resources()
    chosen = _chosen_site(settings, sites, site or _remembered_site(target, account_id))
    if not sites:
        warnings.append("the credential reaches no site: an organisation admin grants it sites "
                        "in Atlassian Administration.")
    elif chosen is None and len(sites) > 1:
        warnings.append(
            f"{len(sites)} sites granted to the service account; set ATLASSIAN_SITE to choose "
            f"one ({', '.join(s.name for s in sites)})."
        )
    entry = TokenEntry(
        client_id=settings.client_id,
        account_id=account_id,
        tokens=tokens,
        requested_scopes=asked,
        site=chosen,
        updated_at=time.time(),
        grant=CLIENT_CREDENTIALS,
    )
    target.store.put(entry)
    log.info("stored the service account's token for %s in %s", entry.key,
             settings.token_store)
    return LoginResult(entry=entry, sites=sites, requested_scopes=asked, warnings=warnings)


def _remembered_site(target: Target, account_id: str | None) -> str | None:
    """The cloud id this connection chose before (its token-store entry's site), if any."""
    try:
        entry = target.store.get(target.settings.client_id, account_id)
    except TokenStoreError:  # a first login, or several connections and no account to tell
        return None
    return (entry.site or {}).get("id")


def _chosen_site(settings: Settings, sites: list[Site], wanted: str | None) -> dict | None:
    """The site this connection will use: ATLASSIAN_SITE's; else ``wanted`` (the site this
    login was for, or the one the connection used before) while it is granted; else the only
    one; never a guess among several."""
    if settings.site:
        return _granted(sites, settings.site)  # None when not granted: verify says so
    return (_granted(sites, wanted) if wanted else None) or _granted(sites, None)


def _granted(sites: list[Site], wanted: str | None) -> dict | None:
    """The granted site ``wanted`` names (``None``: the only one), as the store keeps it."""
    try:
        site = choose_site(sites, wanted)
    except SiteSelectionRequired:
        return None
    return {"id": site.id, "name": site.name, "url": site.url}


def refresh(target: Target, *, account_id: str | None = None) -> RefreshResult:
    """Refresh the stored connection now; the rotated refresh token is saved before returning.
    A service account's connection gets a new access token fetched with the client
    credentials instead (the refresh grant is never sent for it)."""
    settings = target.settings
    settings.require_credentials()
    entry = target.store.get(settings.client_id, account_id)
    previous = str(entry.tokens.refresh_token)
    with target.oauth_client() as oauth:
        target.token_source(account_id=entry.account_id, oauth=oauth).refresh(entry.tokens)
    updated = target.store.get(entry.client_id, entry.account_id)
    return RefreshResult(
        entry=updated,
        previous_refresh_token=previous,
        new_refresh_token=str(updated.tokens.refresh_token),
        previous_tokens=entry.tokens,
    )


def verify(target: Target, *, account_id: str | None = None) -> VerificationReport:
    """Check the stored connection: sites, requested vs granted scopes, /me, Jira, Confluence."""
    settings = target.settings
    entry = target.store.get(settings.client_id, account_id)
    with target.api_client(account_id=entry.account_id) as api:
        report = verify_connection(
            api,
            # A service account asks for the credential's scopes (or some): ATLASSIAN_SCOPES
            # is a 3LO consent's.
            requested_scopes=entry.requested_scopes or (
                entry.tokens.scopes if entry.is_service_account else settings.scopes),
            site=settings.site or (entry.site or {}).get("id"),
            has_refresh_token=entry.tokens.refresh_token is not None,
        )
    if entry.requested_scopes and not entry.is_service_account:  # no consent to compare
        report.checks.append(consent_check(settings.scopes, entry.requested_scopes))
    report.client_id = entry.client_id
    if report.account is None and entry.account_id:  # read:me not granted: the store knows
        report.account = {"account_id": entry.account_id}
    return report
