"""The developer-console checklist: every click and value for one integration profile.

Most failed Atlassian integrations fail in the console, not in code: a scope whose API was never
added, a callback that differs by a trailing slash, an app left on "Not sharing". The checklist
turns FACTS.md's console and partner notes into concrete steps with exact values, for

* ``merge``: a vendor's partner credentials for Merge (one shared app for all its customers);
* ``clerk``: a Clerk production instance's Atlassian social connection;
* ``custom``: an organisation's own integration with its own sites (the playbook's default).

Step ids are stable slugs, so a notebook or the CLI can persist which steps were ticked. No step
ever carries a secret: the client-secret steps say where to copy it from and where to put it.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .config import DEFAULT_REDIRECT_URI
from .errors import ConfigError
from .scopes import (
    OFFLINE_ACCESS,
    ScopeWarning,
    catalog,
    check_scopes,
    console_apis_for,
    preset,
    validate_scopes,
)

__all__ = [
    "PROFILES",
    "TABS",
    "CONSOLE_URL",
    "MERGE_CALLBACK_URL",
    "ChecklistStep",
    "Checklist",
    "build_checklist",
    "is_placeholder",
]

PROFILES = ("merge", "clerk", "custom")
# Where a step happens: the console's tabs, and "Partner" for the partner's own dashboard.
TABS = ("Create", "Permissions", "Authorization", "Settings", "Distribution", "Partner")
CONSOLE_URL = "https://developer.atlassian.com/console/myapps/"
MERGE_CALLBACK_URL = "https://app.merge.dev/oauth/callback"
PERSONAL_DATA_CONFIRMATION = "I confirm I have implemented the Personal Data Reporting API"

_PLACEHOLDER = re.compile(r"<REPLACE: [^>]*>")

POLICY_NOTE = (
    "Atlassian's policy: a vendor builds ONE distributable OAuth 2.0 (3LO) app, shares it "
    "(Distribution: Sharing) and its customers consent to that app. Creating your own app is for "
    "an organisation's own integration with its own sites. From 2026-01-01 Atlassian treats an "
    "app that instructs its customers to create their own individual 3LO apps as non-compliant "
    "with its security requirements."
)
_PROFILE_POLICY = {
    "merge": "This checklist is for the vendor using Merge: create the app once and use it for "
    "every customer. Never send this checklist to your customers.",
    "clerk": "This checklist is for the owner of the Clerk production instance: one shared app "
    "serves every user who signs in. Your users only consent.",
    "custom": "This checklist is for your organisation's own integration with its own sites. If "
    "you are building a product for other organisations, build one shared app and let each "
    "customer consent to it instead of handing them this checklist.",
}
_TITLES = {"merge": "Merge partner credentials", "clerk": "Clerk social connection",
           "custom": "your own integration"}  # fmt: skip


def _replace(what: str) -> str:
    """A value the user must fill in; rendered visibly and listed by ``Checklist.placeholders``."""
    return f"<REPLACE: {what}>"


def is_placeholder(value: str) -> bool:
    """True when ``value`` still contains a ``<REPLACE: ...>`` marker."""
    return bool(_PLACEHOLDER.search(value))


@dataclass(frozen=True)
class ChecklistStep:
    """One thing to do in the console (or the partner's dashboard).

    ``id`` is stable across releases: persist ticked progress by it. ``values`` are the exact
    values to enter, by field label (placeholders look like ``<REPLACE: ...>``); ``detail`` says
    why, and what goes wrong otherwise. ``required=False`` marks advice or optional fields.
    """

    id: str
    tab: str
    title: str
    values: dict[str, str] = field(default_factory=dict)
    detail: str = ""
    required: bool = True


@dataclass(frozen=True)
class Checklist:
    """The steps for one profile, plus what they were built from."""

    profile: str
    policy_note: str
    steps: tuple[ChecklistStep, ...]
    scopes: tuple[str, ...]
    callback_url: str
    console_apis: tuple[str, ...] = ()
    warnings: tuple[ScopeWarning, ...] = ()

    def step(self, step_id: str) -> ChecklistStep:
        """The step with ``step_id``; :class:`KeyError` when the profile has none."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    @property
    def placeholders(self) -> list[tuple[str, str]]:
        """``(step id, field)`` of every value still to be replaced."""
        return [(s.id, k) for s in self.steps for k, v in s.values.items() if is_placeholder(v)]

    def to_dict(self) -> dict:
        """JSON-ready: the CLI's ``--json`` output and the notebooks' widget state."""
        return {
            "profile": self.profile,
            "policy_note": self.policy_note,
            "callback_url": self.callback_url,
            "scopes": list(self.scopes),
            "console_apis": list(self.console_apis),
            "warnings": [dataclasses.asdict(w) for w in self.warnings],
            "placeholders": [{"step": s, "field": f} for s, f in self.placeholders],
            "steps": [
                {**dataclasses.asdict(step), "values": dict(step.values)} for step in self.steps
            ],
        }

    def to_markdown(self) -> str:
        """A Markdown task list grouped by tab, for a notebook cell or a ticket."""
        lines = [
            f"# Atlassian developer console checklist: {_TITLES[self.profile]}",
            "",
            f"> {self.policy_note}",
            "",
            f"- Callback URL: `{self.callback_url}`",
            f"- Scopes: {' '.join(f'`{s}`' for s in self.scopes)}",
            f"- Permissions-tab APIs: {', '.join(self.console_apis) or 'none'}",
        ]
        if self.placeholders:
            lines.append("- Replace every `<REPLACE: ...>` value before you start.")
        for warning in self.warnings:
            lines.append(f"- **Warning:** {warning.message} {warning.hint}")
        tab = None
        for number, step in enumerate(self.steps, 1):
            if step.tab != tab:
                tab = step.tab
                heading = "Partner dashboard" if tab == "Partner" else f"{tab} tab"
                lines += ["", f"## {heading}", ""]
            optional = " *(optional)*" if not step.required else ""
            lines.append(f"- [ ] **{number}. {step.title}**{optional} <!-- {step.id} -->")
            for label, value in step.values.items():
                lines.append(f"    - {label}: `{value}`")
            if step.detail:
                lines.append(f"    - *Why:* {step.detail}")
        return "\n".join(lines) + "\n"

    def to_text(self) -> str:
        """Plain text for the terminal, wrapped at 100 columns."""
        # No breaks inside scope names (manage:jira-configuration) or URLs.
        wrap = textwrap.TextWrapper(
            width=100, subsequent_indent="        ", break_on_hyphens=False, break_long_words=False
        )
        top = textwrap.TextWrapper(
            width=100, subsequent_indent="  ", break_on_hyphens=False, break_long_words=False
        )
        out = [
            f"Atlassian developer console checklist: {_TITLES[self.profile]} "
            f"(profile {self.profile})",
            *top.wrap(self.policy_note),
            f"Callback URL: {self.callback_url}",
            *top.wrap(f"Scopes: {' '.join(self.scopes)}"),
            f"Permissions-tab APIs: {', '.join(self.console_apis) or 'none'}",
        ]
        if self.placeholders:
            out.append("Replace every <REPLACE: ...> value before you start.")
        for warning in self.warnings:
            out += top.wrap(warning.one_line())
        tab = None
        for number, step in enumerate(self.steps, 1):
            if step.tab != tab:
                tab = step.tab
                out += ["", f"[{'Partner dashboard' if tab == 'Partner' else tab + ' tab'}]"]
            optional = " (optional)" if not step.required else ""
            out.append(f"{number:>2}. [ ] {step.title}{optional}  ({step.id})")
            for label, value in step.values.items():
                out += wrap.wrap(f"        {label}: {value}")
            if step.detail:
                out += wrap.wrap(f"        Why: {step.detail}")
        return "\n".join(out) + "\n"


def _check_url(name: str, value: str | None, *, setting: str | None = None) -> None:
    if value is None or is_placeholder(value):
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{name} {value!r} is not an absolute http(s) URL.",
            f"Give the full URL, e.g. {DEFAULT_REDIRECT_URI if 'allback' in name else 'https://...'}.",
            setting=setting,
        )


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in ("localhost", "127.0.0.1", "::1")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def build_checklist(
    profile: str = "custom",
    *,
    app_name: str | None = None,
    callback_url: str | None = None,
    scopes: Sequence[str] | None = None,
    vendor_name: str | None = None,
    privacy_policy_url: str | None = None,
    terms_url: str | None = None,
    stores_personal_data: bool | None = None,
) -> Checklist:
    """The console steps for ``profile`` (``merge``, ``clerk`` or ``custom``).

    Defaults follow each partner's own setup guide: Merge's fixed callback and partner scope set;
    Clerk's ``read:me`` and the redirect URI Clerk shows (a ``<REPLACE: ...>`` placeholder until
    you pass it); for ``custom`` the playbook's loopback callback and its minimal scopes. Values
    you do not pass (app name, vendor, policy URLs) stay placeholders, listed by
    :attr:`Checklist.placeholders`. ``stores_personal_data`` defaults to yes for Merge (its Users
    and Groups models) and Clerk (its guide asks for the declaration), no for ``custom``.

    Raises :class:`ConfigError` for an unknown profile, an unknown or comma-separated scope, or a
    URL that is not absolute.
    """
    if profile not in PROFILES:
        close = _suggest_profile(profile)
        raise ConfigError(
            f"Unknown checklist profile {profile!r}.",
            (f"Did you mean {close[0]}? " if close else "") + f"Profiles: {', '.join(PROFILES)}.",
        )
    warnings: list[ScopeWarning] = []

    # --- scopes ---
    if scopes is not None:
        chosen = list(validate_scopes(scopes, setting="scopes"))
    elif profile == "merge":
        chosen = list(preset("merge"))
    elif profile == "clerk":
        chosen = list(preset("clerk"))
    else:
        chosen = list(preset("minimal"))
    if profile == "clerk" and "read:me" not in chosen:
        chosen.insert(0, "read:me")  # Clerk's guide: read:me at minimum
    if stores_personal_data is None:
        stores_personal_data = profile in ("merge", "clerk")
    if profile == "custom" and stores_personal_data and "report:personal-data" not in chosen:
        if scopes is None:
            chosen.insert(-1 if OFFLINE_ACCESS in chosen else len(chosen), "report:personal-data")
        else:
            warnings.append(
                ScopeWarning(
                    "missing-report-personal-data",
                    "The app stores personal data but does not request report:personal-data.",
                    "Add report:personal-data (Personal data reporting API) to report stored "
                    "accounts: POST /app/report-accounts/.",
                )
            )
    chosen_scopes = tuple(chosen)
    apis = tuple(console_apis_for(chosen_scopes))
    # The partner's documented set decides these two; elsewhere they are worth saying.
    ignored = {"merge": {"mixed-classic-granular"}, "clerk": {"missing-offline-access"}}
    warnings = [
        w for w in check_scopes(chosen_scopes) if w.code not in ignored.get(profile, set())
    ] + warnings

    # --- callback ---
    if callback_url is None:
        callback_url = {
            "merge": MERGE_CALLBACK_URL,
            "clerk": _replace("the Authorized redirect URI shown in Clerk"),
            "custom": DEFAULT_REDIRECT_URI,
        }[profile]
    _check_url("Callback URL", callback_url, setting="ATLASSIAN_REDIRECT_URI")
    if (
        not is_placeholder(callback_url)
        and urlsplit(callback_url).scheme == "http"
        and not _is_loopback(callback_url)
    ):
        warnings.append(
            ScopeWarning(
                "callback-not-https",
                f"The callback {callback_url} is plain http on a non-loopback host.",
                "Atlassian accepts https callbacks, and http only for localhost development.",
            )
        )
    _check_url("Privacy policy URL", privacy_policy_url)
    _check_url("Terms of service URL", terms_url)

    name = app_name or _replace("your product's name, as users should see it when consenting")
    vendor = vendor_name or _replace("your company's name")
    privacy = privacy_policy_url or _replace("https URL of your privacy policy")
    terms = terms_url or _replace("https URL of your terms of service")

    steps: list[ChecklistStep] = []
    add = steps.append

    # --- Clerk first: its redirect URI is the callback the console needs ---
    if profile == "clerk":
        add(
            ChecklistStep(
                "clerk-redirect-uri",
                "Partner",
                "In Clerk (production instance), open the Atlassian social connection and copy "
                "its Authorized redirect URI",
                {"Authorized redirect URI": callback_url},
                "Development instances use Clerk's shared credentials: they need no console app "
                "and none of these steps. Production needs your own app, and the URI Clerk shows "
                "is its callback, character for character.",
            )
        )

    # --- Create ---
    add(
        ChecklistStep(
            "create-app",
            "Create",
            "Create an OAuth 2.0 integration",
            {"Console": CONSOLE_URL, "Create": "OAuth 2.0 integration", "Name": name},
            "The name is what users see on Atlassian's consent screen. Accept the developer "
            "terms. If asked for an access type: with a resource-level app each user picks one "
            "site at consent; an account-level app is granted every site the user can reach.",
        )
    )

    # --- Permissions ---
    known = catalog()
    for api in apis:
        of_api = [s for s in chosen_scopes if known[s].console_api == api]
        classic = [s for s in of_api if known[s].kind == "classic"]
        granular = [s for s in of_api if known[s].kind == "granular"]
        values = {}
        if classic:
            values["Classic scopes"] = " ".join(classic)
        if granular:
            values["Granular scopes"] = " ".join(granular)
        detail = (
            f"Permissions: Add the {api}, then Configure it and tick exactly these scopes"
            + (
                " (classic ones on the Classic tab, granular ones on the Granular tab)"
                if classic and granular
                else ""
            )
            + ". A scope requested at authorization but not ticked here fails at consent. "
            "Changing scopes later requires every user to consent again."
        )
        if api == "Jira API":
            detail += (
                " The Jira API holds the Jira platform, Jira Software and Jira Service "
                "Management scopes."
            )
        if api == "Personal data reporting API":
            detail += (
                " The app reports the account ids it stores (POST /app/report-accounts/, at "
                "most 90 per request) and erases or refreshes what Atlassian marks closed or "
                "updated."
            )
        add(ChecklistStep(f"permissions-{_slug(api)}", "Permissions",
                          f"Add and configure the {api}", values, detail))  # fmt: skip

    if OFFLINE_ACCESS in chosen_scopes:
        where = {
            "merge": "the authorization URL's scope parameter (Merge builds that URL)",
            "clerk": "Clerk's scopes (enter offline_access there too)",
            "custom": "ATLASSIAN_SCOPES, which the playbook puts in the authorization URL",
        }[profile]
        add(
            ChecklistStep(
                "offline-access",
                "Permissions",
                "Request offline_access in the authorization URL, not on this tab",
                {"Requested through": where},
                "Nothing to tick for it. Without offline_access in the authorization URL's scope "
                "Atlassian returns no refresh token and the connection ends when the access "
                "token expires (one hour).",
                required=False,
            )
        )
    else:
        add(
            ChecklistStep(
                "offline-access",
                "Permissions",
                "No offline_access requested: no refresh token",
                {},
                "offline_access is never ticked on the Permissions tab; it is requested in the "
                "authorization URL. Without it the connection lasts one access token (an hour)"
                + (
                    ": fine for Clerk sign-in; add offline_access in Clerk's scopes if you call "
                    "Atlassian APIs later."
                    if profile == "clerk"
                    else "."
                ),
                required=False,
            )
        )

    # --- Authorization ---
    add(
        ChecklistStep(
            "authorization-callback",
            "Authorization",
            "Add OAuth 2.0 (3LO) authorization with the callback URL",
            {"Authorization type": "OAuth 2.0 (3LO)", "Callback URL": callback_url},
            "The redirect_uri sent at authorization must match a callback URL here exactly: "
            "scheme, host, port, path and trailing slash all count. Production callbacks use "
            "https; http://localhost is accepted for development. Add one callback per "
            "environment if you have several.",
        )
    )

    # --- Settings ---
    partner = {"merge": " and into Merge (step below)", "clerk": " and into Clerk (step below)",
               "custom": ""}[profile]  # fmt: skip
    env_values = {
        "ATLASSIAN_CLIENT_ID": "the Client ID (copy button on the Settings tab)",
        "ATLASSIAN_CLIENT_SECRET": "the Secret (copy button on the Settings tab), pasted only "
        f"into .env{partner}",
    }
    if profile == "custom":
        # A partner's callback and scopes live in the partner's settings, not the playbook's.
        env_values["ATLASSIAN_REDIRECT_URI"] = callback_url
        env_values["ATLASSIAN_SCOPES"] = " ".join(chosen_scopes)
    add(
        ChecklistStep(
            "settings-credentials",
            "Settings",
            "Copy the Client ID and Secret into .env",
            env_values,
            "The secret never goes into chat, tickets, notebooks, command lines or git: .env is "
            "git-ignored and the playbook writes it with mode 0600 and prints it masked. If it "
            "leaks, rotate it on the Settings tab."
            + (
                " Then run `atlassian-playbook login` and `atlassian-playbook verify`."
                if profile == "custom"
                else ""
            ),
        )
    )
    add(
        ChecklistStep(
            "settings-description",
            "Settings",
            "Add a description and logo",
            {},
            "Users see the app's name and logo when they consent; a recognisable app is "
            "accepted more readily.",
            required=False,
        )
    )

    # --- Distribution ---
    sharing_values = {
        "Distribution status": "Sharing",
        "Vendor name": vendor,
        "Privacy policy URL": privacy,
    }
    if profile == "clerk" or terms_url:
        sharing_values["Terms of service URL"] = terms
    add(
        ChecklistStep(
            "distribution-sharing",
            "Distribution",
            "Edit the distribution: set the status to Sharing",
            sharing_values,
            "With 'Not sharing' only the app's owner can consent; everyone else gets a generic "
            "'Something went wrong' at consent. Sharing needs the vendor name and privacy "
            "policy URL; a customer support contact is optional."
            + (" Needed as soon as anyone but you consents." if profile == "custom" else ""),
            required=profile != "custom",
        )
    )
    if stores_personal_data:
        pd_values = {"Personal data declaration": "Yes", "Confirmation": PERSONAL_DATA_CONFIRMATION}
        pd_detail = {
            "merge": "Merge needs it to sync Users and Groups, which hold personal data.",
            "clerk": "Clerk's guide asks you to declare that the app stores personal data (the "
            "user profile). The confirmation commits the app's owner to reporting stored "
            "accounts; check with Clerk who does that for your instance.",
            "custom": "The app stores personal data, so it must report the accounts it stores "
            "(report:personal-data).",
        }[profile]
    else:
        pd_values = {"Personal data declaration": "No"}
        pd_detail = (
            "Answer Yes (and confirm the Personal Data Reporting API) if the app stores names, "
            "emails or other personal data; Atlassian staff have said an account id alone is not "
            "personal data."
        )
    add(
        ChecklistStep(
            "distribution-personal-data",
            "Distribution",
            "Declare whether the app stores personal data",
            pd_values,
            pd_detail,
            required=profile != "custom" or bool(stores_personal_data),
        )
    )

    # --- Partner ---
    if profile == "merge":
        add(
            ChecklistStep(
                "merge-credentials",
                "Partner",
                "In Merge, enter the partner credentials",
                {
                    "OAuth Client Id": "the Client ID from the console's Settings tab",
                    "OAuth Client Secret": "the Secret from the console's Settings tab (paste it "
                    "straight from the console)",
                    "OAuth Redirect URI": callback_url,
                },
                "Merge then sends your customers to Atlassian's consent screen for this one app.",
            )
        )
    elif profile == "clerk":
        extra = [s for s in chosen_scopes if s != "read:me"]
        clerk_values = {
            "Client ID": "the Client ID from the console's Settings tab",
            "Client Secret": "the Secret from the console's Settings tab (paste it straight "
            "from the console)",
        }
        if extra:
            clerk_values["Scopes"] = " ".join(extra)
        add(
            ChecklistStep(
                "clerk-credentials",
                "Partner",
                "In Clerk, turn on custom credentials and enter the Client ID and Secret",
                clerk_values,
                "read:me is the minimum. Any extra scope must be ticked on the Permissions tab "
                "and entered in Clerk too, or Clerk never requests it.",
            )
        )
        add(
            ChecklistStep(
                "clerk-test-sign-in",
                "Partner",
                "Sign in once through Clerk with an Atlassian account",
                {},
                "The account must have access to at least one Atlassian site, and a user "
                "authorizes one site at a time. 'Your site admin must authorize this app' means "
                "the site restricts user-installed apps: a site admin allows them or approves "
                "the app.",
            )
        )

    return Checklist(
        profile=profile,
        policy_note=f"{POLICY_NOTE} {_PROFILE_POLICY[profile]}",
        steps=tuple(steps),
        scopes=chosen_scopes,
        callback_url=callback_url,
        console_apis=apis,
        warnings=tuple(warnings),
    )


def _suggest_profile(name: str) -> list[str]:
    import difflib

    return difflib.get_close_matches(name.lower(), PROFILES, n=1, cutoff=0.5)
