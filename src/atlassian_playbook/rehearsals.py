"""Rehearsals of the consent traps, against the emulator only: each one makes the mistake on
purpose, shows the user what Atlassian would show, and names the fix.

Every rehearsal is a real authorization over loopback HTTP, answered by the emulator as
``FACTS.md`` says Atlassian answers. Apart from the callback rehearsal (which uses the user's own
app, since their callback is the point), each runs on an app of its own, registered for the
rehearsal, so the user's grant and tokens stay as they are. Against the real Atlassian they are
not available: nothing here may make a user's real app fail on purpose.

The notebook (04) and the CLI (``atlassian-playbook emulator rehearse``) call
:func:`rehearse`, which returns :class:`Rehearsal` results that render as a table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from ._http import new_client
from .connection import page_text
from .emulator import Emulator
from .errors import PlaybookError
from .target import Target

__all__ = ["Rehearsal", "REHEARSALS", "rehearse"]

_CALLBACK = "https://rehearsal.invalid/callback"  # never requested: the code is read off
# the redirect's Location header, as a person would read it off the address bar


@dataclass
class Rehearsal:
    """One trap: what was done wrong, what the user saw, whether it failed as Atlassian
    fails it (``as_expected``), and the fix."""

    name: str
    mistake: str
    seen: str
    as_expected: bool
    fix: str

    def to_dict(self) -> dict:
        return {"name": self.name, "mistake": self.mistake, "seen": self.seen,
                "as_expected": self.as_expected, "fix": self.fix}


class _Browser:
    """The person at the consent screen, as the emulator lets a test be: signed in as
    ``user``, choosing ``site``; it stops at the first answer that is not a redirect to the
    emulator itself."""

    def __init__(self, target: Target, http) -> None:
        self.emulator = target.emulator
        self.settings = target.settings
        self.http = http  # one client for the whole run, never following redirects

    def authorize(self, client, scopes: Sequence[str], *, redirect_uri: str | None = None,
                  user: str | None = None, site: str | None = None) -> tuple[int, str]:
        """(status, what the person sees): a page's text, or the URL the browser lands on."""
        params = [
            ("audience", "api.atlassian.com"), ("client_id", client.client_id),
            ("scope", " ".join(scopes)), ("redirect_uri", redirect_uri or client.redirect_uris[0]),
            ("state", "rehearsal"), ("response_type", "code"), ("prompt", "consent"),
        ]
        params += [("emulator_user", user)] if user else []
        params += [("emulator_site", site)] if site else []
        response = self.http.get(f"{self.emulator.auth_base_url}/authorize?{urlencode(params)}")
        if response.is_redirect:
            return response.status_code, response.headers["location"]
        return response.status_code, page_text(response.text)

    def token(self, client, code: str, redirect_uri: str) -> tuple[int, dict]:
        response = self.http.post(f"{self.emulator.auth_base_url}/oauth/token", json={
            "grant_type": "authorization_code", "client_id": client.client_id,
            "client_secret": client.client_secret.reveal(), "code": code,
            "redirect_uri": redirect_uri,
        })
        return response.status_code, response.json()

    def api(self, token: str, path: str) -> tuple[int, object]:
        response = self.http.get(f"{self.emulator.api_base_url}{path}",
                                 headers={"Authorization": f"Bearer {token}"})
        return response.status_code, response.json()


def _code(location: str) -> str | None:
    values = parse_qs(urlsplit(location).query).get("code")
    return values[0] if values else None


def _app(browser: _Browser, name: str, **registration):
    """A rehearsal's own app (registered again each time: the console's state may have
    changed since)."""
    return browser.emulator.register_client(
        client_id=f"playbook-rehearsal-{name}", name=f"Rehearsal: {name}",
        redirect_uris=(_CALLBACK,), **registration,
    )


# --- the traps --------------------------------------------------------------------------------


def callback_mismatch(browser: _Browser) -> Rehearsal:
    """The user's own callback with its trailing slash flipped: the consent page refuses it;
    and a code exchanged with the flipped URL is an "Invalid authorization code". (On an app
    registered with just that callback, so the user's own grant is not touched.)"""
    right = browser.settings.redirect_uri
    wrong = right[:-1] if right.endswith("/") else right + "/"
    client = browser.emulator.register_client(
        client_id="playbook-rehearsal-callback-mismatch", name="Rehearsal: callback-mismatch",
        redirect_uris=(right,), apis=("identity",),
    )
    status, page = browser.authorize(client, ("read:me",), redirect_uri=wrong)
    status2, location = browser.authorize(client, ("read:me",), redirect_uri=right)
    code = _code(location) if status2 == 302 else None
    exchanged = browser.token(client, code, wrong) if code else (None, {})
    invalid = exchanged == (403, {"error": "invalid_grant",
                                  "error_description": "Invalid authorization code"})
    return Rehearsal(
        "callback-mismatch",
        f"redirect_uri {wrong} (registered: {right})",
        f"consent page {status}: {page[:160]}; then a code from {right} exchanged with "
        f"{wrong}: {exchanged[0]} {exchanged[1].get('error_description', '')}".strip(),
        status == 400 and "redirect_uri_mismatch" in page and invalid,
        "Make ATLASSIAN_REDIRECT_URI identical to the callback URL on the Authorization tab "
        "(scheme, host, port, path, trailing slash); `atlassian-playbook doctor` compares them.",
    )


def app_not_shared(browser: _Browser) -> Rehearsal:
    """An app left on "Not sharing": its owner consents, anyone else sees a generic error."""
    users = browser.emulator.users
    owner, other = users[0], users[1]
    client = _app(browser, "not-shared", sharing=False, owner=owner["account_id"],
                  apis=("identity",))
    status, page = browser.authorize(client, ("read:me",), user=other["account_id"])
    owner_status, _ = browser.authorize(client, ("read:me",), user=owner["account_id"])
    return Rehearsal(
        "app-not-shared", f"Distribution: Not sharing; {other['name']} consents",
        f"{other['name']}: {status} {page[:100]}; the owner {owner['name']}: {owner_status}",
        status == 400 and "Something went wrong" in page and owner_status == 302,
        "Set Distribution to Sharing (vendor name and privacy policy URL required).",
    )


def api_not_added(browser: _Browser) -> Rehearsal:
    """A Jira scope requested by an app whose Permissions tab has only the identity API."""
    client = _app(browser, "api-not-added", apis=("identity",))
    status, page = browser.authorize(client, ("read:me", "read:jira-work"))
    return Rehearsal(
        "api-not-added", "read:jira-work requested; only the User identity API added",
        f"consent page {status}: {page[:160]}",
        status == 400 and "invalid_scope" in page,
        "Add the Jira API on the console's Permissions tab and configure its scopes.",
    )


def site_admin(browser: _Browser) -> Rehearsal:
    """A site whose admins do not allow user-installed apps: a member is refused until a site
    admin consents, which authorizes the app on that site."""
    emulator = browser.emulator
    users = {u["account_id"]: u for u in emulator.users}
    site = next((s for s in emulator.sites if not s["user_installed_apps"] and s["admins"]
                 and any(m not in s["admins"] for m in s["members"])), None)
    if site is None:
        return Rehearsal("site-admin", "no site of this world restricts user-installed apps",
                         "nothing to rehearse", False,
                         "Block them on a site with admins (`atlassian-playbook emulator "
                         "user-installed-apps initech block`), or use such a world.")
    member = next(users[m] for m in site["members"] if m not in site["admins"])
    admin = users[site["admins"][0]]
    client = _app(browser, "site-admin", apis=("identity", "jira"))
    scopes = ("read:me", "read:jira-work")
    status, page = browser.authorize(client, scopes, user=member["account_id"], site=site["id"])
    admin_status, _ = browser.authorize(client, scopes, user=admin["account_id"],
                                        site=site["id"])
    after, _ = browser.authorize(client, scopes, user=member["account_id"], site=site["id"])
    # Leave the world as it was: the next run rehearses the refusal again.
    emulator.remove_app_from_site(site["id"], client.client_id)
    return Rehearsal(
        "site-admin", f"{member['name']} consents for {site['name']} (user-installed apps not "
        "allowed)",
        f"{member['name']}: {status} {page[:120]}; after {admin['name']} (site admin) consents: "
        f"{admin_status}, then {member['name']}: {after}",
        status == 400 and "site admin must authorize" in page and (admin_status, after)
        == (302, 302),
        "A site admin allows user-installed apps (Atlassian Administration > Apps > Sites > "
        "Connected apps) or consents to the app once.",
    )


def product_not_on_site(browser: _Browser) -> Rehearsal:
    """Confluence scopes granted on a site without Confluence: consent works, but the site
    has no Confluence entry in accessible-resources and Confluence calls get 404."""
    jira_only = next((s for s in browser.emulator.sites if s["products"] == ["jira"]), None)
    if jira_only is None:
        return Rehearsal("product-not-on-site", "no Jira-only site in this world",
                         "nothing to rehearse", False, "Use a world with a Jira-only site.")
    client = _app(browser, "product-not-on-site", apis=("identity", "jira", "confluence"))
    scopes = ("read:jira-work", "read:confluence-space.summary")
    status, location = browser.authorize(client, scopes, site=jira_only["id"])
    code = _code(location) if status == 302 else None
    _, tokens = browser.token(client, code, _CALLBACK) if code else (None, {})
    token = tokens.get("access_token")
    if not token:
        return Rehearsal("product-not-on-site", "consent failed", str(status), False, "")
    _, resources = browser.api(token, "/oauth/token/accessible-resources")
    listed = [r for r in resources if r["id"] == jira_only["id"]]
    wiki, _ = browser.api(token, f"/ex/confluence/{jira_only['id']}/wiki/rest/api/space")
    confluence_listed = any("read:confluence-space.summary" in r["scopes"] for r in listed)
    return Rehearsal(
        "product-not-on-site", f"Confluence scopes granted on {jira_only['name']} (Jira only)",
        f"accessible-resources lists {len(listed)} entry for {jira_only['name']} "
        f"(Jira); Confluence call: {wiki}",
        not confluence_listed and wiki == 404,
        "Choose a site that has the product at consent; check each site's products in "
        "accessible-resources before calling.",
    )


def per_site_scopes(browser: _Browser) -> Rehearsal:
    """Two consents for two sites with different scopes: one grant, scopes per site."""
    sites = [s for s in browser.emulator.sites if "jira" in s["products"]][:2]
    if len(sites) < 2:
        return Rehearsal("per-site-scopes", "fewer than two Jira sites", "nothing to rehearse",
                         False, "Use a world with two Jira sites.")
    client = _app(browser, "per-site-scopes", apis=("identity", "jira"))
    browser.authorize(client, ("read:jira-work", "read:jira-user"), site=sites[0]["id"])
    status, location = browser.authorize(client, ("read:jira-work",), site=sites[1]["id"])
    _, tokens = browser.token(client, _code(location), _CALLBACK) if status == 302 else (0, {})
    _, resources = browser.api(tokens.get("access_token", ""),
                               "/oauth/token/accessible-resources")
    scopes = {r["name"]: sorted(r["scopes"]) for r in resources} if isinstance(
        resources, list) else {}
    first, second = sites[0]["name"], sites[1]["name"]
    myself, _ = browser.api(tokens.get("access_token", ""),
                            f"/ex/jira/{sites[1]['id']}/rest/api/3/myself")
    return Rehearsal(
        "per-site-scopes", f"read:jira-user granted on {first}, not on {second}",
        f"accessible-resources: {scopes}; Jira myself on {second}: {myself}",
        "read:jira-user" in scopes.get(first, []) and "read:jira-user" not in scopes.get(
            second, []) and myself == 401,
        "Set ATLASSIAN_SITE (or choose per call) and check the scopes listed for that site; "
        "consent again for that site with the missing scope.",
    )


REHEARSALS: dict[str, Callable[[_Browser], Rehearsal]] = {
    "callback-mismatch": callback_mismatch,
    "app-not-shared": app_not_shared,
    "api-not-added": api_not_added,
    "site-admin": site_admin,
    "product-not-on-site": product_not_on_site,
    "per-site-scopes": per_site_scopes,
}


def rehearse(target: Target, names: Sequence[str] | None = None) -> list[Rehearsal]:
    """Run the named rehearsals (default: all) against ``target``'s emulator."""
    if target.emulator is None:
        raise PlaybookError(
            f"Rehearsals are not available against {target.kind}: they make a real app fail on "
            "purpose.",
            "Run them against the emulator (unset ATLASSIAN_CLIENT_ID and "
            "ATLASSIAN_CLIENT_SECRET), or read them in the training site.",
        )
    unknown = [n for n in names or () if n not in REHEARSALS]
    if unknown:
        raise PlaybookError(f"Unknown rehearsal(s): {', '.join(unknown)}.",
                            f"Choose from: {', '.join(REHEARSALS)}.")
    emulator = target.emulator
    if emulator.auto_consent is not True:
        if emulator.state_path is None:
            raise PlaybookError("Rehearsals need an emulator that consents at once.",
                                "Start it with Emulator(auto_consent=True).")
        # The same world, answering consent at once (the rehearsals play the person).
        emulator = Emulator(auto_consent=True, state_path=emulator.state_path).start()
    try:
        with new_client(timeout=30) as http:
            browser = _Browser(Target(target.settings, emulator), http)
            return [REHEARSALS[name](browser) for name in names or REHEARSALS]
    finally:
        if emulator is not target.emulator:
            emulator.stop()
