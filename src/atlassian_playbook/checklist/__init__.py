"""The developer-console checklist: every click and value for one integration profile.

Most failed Atlassian integrations fail in the console, not in code: a scope whose API was never
added, a callback that differs by a trailing slash, an app left on "Not sharing". The checklist
turns FACTS.md's console notes into concrete steps with exact values, for one integration
profile of :mod:`atlassian_playbook.profiles` (a partner's data file, or a user's own): the
console steps are the same for every profile, and the profile adds what its partner documents
(scopes, callback, field labels, the partner's own steps) or says to check where facts stop.

Step ids are stable slugs, so a notebook or the CLI can persist which steps were ticked. No step
ever carries a secret: the client-secret steps say where to copy it from and where to put it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from ..config import DEFAULT_REDIRECT_URI
from ..errors import ConfigError
from ..presets import preset
from ..profiles import (
    DEFAULT_PROFILE,
    TABS,
    Profile,
    ProfileStep,
    get_profile,
    is_loopback_host,
    profile_names,
)
from ..scopes import (
    OFFLINE_ACCESS,
    ScopeWarning,
    catalog,
    check_scopes,
    console_apis_for,
    validate_scopes,
)
from ._model import Checklist, ChecklistStep, is_placeholder, placeholder

__all__ = [
    "PROFILES",  # noqa: F822 (module __getattr__: the registry, read when first asked for)
    "TABS",
    "CONSOLE_URL",
    "ChecklistStep",
    "Checklist",
    "build_checklist",
    "is_placeholder",
]

CONSOLE_URL = "https://developer.atlassian.com/console/myapps/"
PERSONAL_DATA_CONFIRMATION = "I confirm I have implemented the Personal Data Reporting API"

POLICY_NOTE = (
    "Atlassian's policy: a vendor builds ONE distributable OAuth 2.0 (3LO) app, shares it "
    "(Distribution: Sharing) and its customers consent to that app. Creating your own app is for "
    "an organisation's own integration with its own sites. From 2026-01-01 Atlassian treats an "
    "app that instructs its customers to create their own individual 3LO apps as non-compliant "
    "with its security requirements."
)
# What a partner step's handoff fields hold (profiles.HANDOFF_FIELDS): where to copy each from.
_CONSOLE_CLIENT_ID = "the Client ID from the console's Settings tab"
_CONSOLE_SECRET = "the Secret from the console's Settings tab (paste it straight from the console)"
# The Distribution tab's optional field (FACTS.md, "The developer console").
_SUPPORT_CONTACT = "Customer support contact (optional)"
_SUPPORT_CONTACT_NOTE = "a URL or email where your users reach your support, or leave it empty"


def __getattr__(name: str):
    """``PROFILES``: the registry's names, read when first asked for."""
    if name == "PROFILES":
        return profile_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _step(
    id: str,
    tab: str,
    title: str,
    values: dict[str, str],
    detail: str,
    *,
    required: bool = True,
    prose: Sequence[str] = (),
) -> ChecklistStep:
    """A step whose values are all literal text to paste except the ``prose`` labels
    (instructions and choices) and any placeholder."""
    copyable = tuple(k for k, v in values.items() if k not in prose and not is_placeholder(v))
    return ChecklistStep(id, tab, title, values, detail, required, copyable)


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


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


NO_CALLBACK = "(none: a service account's client credentials have no callback)"


def _client_credentials_checklist(prof: Profile, scopes: tuple[str, ...], warnings: list,
                                  partner_step) -> Checklist:
    """A service account's checklist (``flow = "client-credentials"``): the profile's own steps
    in Atlassian Administration, then .env and the login. None of the developer console's
    steps apply: no app, no callback, no consent screen, no distribution."""
    steps = [partner_step(step) for step in prof.steps if step.at == "start"]
    steps.append(_step(
        "settings-credentials",
        "Settings",
        "Copy the credential's client ID and secret into .env",
        {
            "ATLASSIAN_CLIENT_ID": "the credential's client ID",
            "ATLASSIAN_CLIENT_SECRET": "the credential's secret, shown once when it is "
            "created, pasted only into .env",
            "ATLASSIAN_GRANT": "client_credentials",
        },
        "The secret never goes into chat, tickets, notebooks, command lines or git: .env is "
        "git-ignored and the playbook writes it with mode 0600 and prints it masked. Then run "
        "`atlassian-playbook login --client-credentials` and `atlassian-playbook verify`.",
        prose=["ATLASSIAN_CLIENT_ID", "ATLASSIAN_CLIENT_SECRET"],
    ))
    steps += [partner_step(step) for step in prof.steps if step.at == "end"]
    # offline_access means nothing here, and the console's APIs are not where scopes are set.
    moot = {"missing-offline-access", "api-not-added", "callback-not-https"}
    return Checklist(
        profile=prof.name,
        policy_note=prof.audience,
        steps=tuple(steps),
        scopes=scopes,
        callback_url=NO_CALLBACK,
        console_apis=(),
        warnings=tuple(w for w in warnings if w.code not in moot),
        title=prof.title,
    )


def build_checklist(
    profile: str | Profile = DEFAULT_PROFILE,
    *,
    app_name: str | None = None,
    callback_url: str | None = None,
    scopes: Sequence[str] | None = None,
    vendor_name: str | None = None,
    privacy_policy_url: str | None = None,
    terms_url: str | None = None,
    support_contact: str | None = None,
    stores_personal_data: bool | None = None,
) -> Checklist:
    """The console steps for ``profile``: a registry name (``atlassian-playbook profiles list``)
    or a :class:`~atlassian_playbook.profiles.Profile` (a user's own file, ``load_profile``).

    Defaults come from the profile: the partner's documented scope set (or the playbook's
    minimal one when the scopes are yours), its required scopes first; its callback (a fixed
    URL, a ``<REPLACE: ...>`` placeholder for one the partner shows until you pass it, or the
    playbook's loopback one); whether it stores personal data (a placeholder to check when the
    public facts do not say). Values you do not pass (app name, vendor, policy URLs) stay
    placeholders, listed by :attr:`Checklist.placeholders`; the customer support contact is
    optional on the console, so without ``support_contact`` it stays a note, not a placeholder.

    Raises :class:`ConfigError` for an unknown profile, an unknown or comma-separated scope, or a
    URL that is not absolute.
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    warnings: list[ScopeWarning] = []

    # --- scopes ---
    if scopes is not None:
        chosen = list(validate_scopes(scopes, setting="scopes"))
    elif prof.scopes.documented is not None:
        chosen = list(prof.scopes.documented)
    else:
        chosen = list(preset("minimal"))
    for required in reversed(prof.scopes.required):
        if required not in chosen:
            chosen.insert(0, required)
    if stores_personal_data is None:
        stores_personal_data = prof.stores_personal_data  # None: the facts do not say
    # An app that declares personal data confirms the Personal Data Reporting API: its scope
    # belongs in the set (a profile's documented set has it: profiles checks that).
    if stores_personal_data and "report:personal-data" not in chosen:
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
    # A partner's documented set makes some warnings moot; elsewhere they are worth saying.
    warnings = [w for w in check_scopes(chosen_scopes) if w.code not in prof.skip_warnings] + [
        w for w in warnings if w.code not in prof.skip_warnings
    ]

    # --- callback ---
    if callback_url is None:
        if prof.callback.rule == "fixed":
            callback_url = prof.callback.url
        elif prof.callback.rule == "partner-shows":
            callback_url = placeholder(prof.callback.shown_as)
        else:
            callback_url = DEFAULT_REDIRECT_URI
    _check_url("Callback URL", callback_url, setting="ATLASSIAN_REDIRECT_URI")
    if (
        not is_placeholder(callback_url)
        and urlsplit(callback_url).scheme == "http"
        and not is_loopback_host(callback_url)
        and "callback-not-https" not in prof.skip_warnings
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

    name = app_name or placeholder("your product's name, as users should see it when consenting")
    vendor = vendor_name or placeholder("your company's name")
    privacy = privacy_policy_url or placeholder("https URL of your privacy policy")
    terms = terms_url or placeholder("https URL of your terms of service")

    steps: list[ChecklistStep] = []
    add = steps.append

    def partner_step(step: ProfileStep) -> ChecklistStep:
        handed = {
            "client_id": _CONSOLE_CLIENT_ID,
            "client_secret": _CONSOLE_SECRET,
            "redirect_uri": callback_url,
            "extra_scopes": " ".join(prof.scopes.for_partner(chosen_scopes)),
        }
        values = {prof.handoff.label(f): handed[f] for f in step.fields if handed[f]}
        instructions = [prof.handoff.label(f) for f in ("client_id", "client_secret")]
        return _step(step.id, step.tab, step.title, {**values, **step.values}, step.detail,
                     required=step.required, prose=instructions)  # fmt: skip

    if not prof.has_console_steps:
        return _client_credentials_checklist(prof, chosen_scopes, warnings, partner_step)

    # --- the partner's first steps (e.g. the redirect URI it shows is the console's callback) ---
    for step in prof.steps:
        if step.at == "start":
            add(partner_step(step))

    # --- Create ---
    add(
        _step(
            "create-app",
            "Create",
            "Create an OAuth 2.0 integration",
            {"Console": CONSOLE_URL, "Create": "OAuth 2.0 integration", "Name": name},
            "The name is what users see on Atlassian's consent screen. Accept the developer "
            "terms. If asked for an access type: with a resource-level app each user picks one "
            "site at consent; an account-level app is granted every site the user can reach.",
            prose=["Create"],
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
        add(_step(f"permissions-{_slug(api)}", "Permissions",
                  f"Add and configure the {api}", values, detail))  # fmt: skip

    if OFFLINE_ACCESS in chosen_scopes:
        add(
            _step(
                "offline-access",
                "Permissions",
                "Request offline_access in the authorization URL, not on this tab",
                {"Requested through": prof.scopes.offline_access_via},
                "Nothing to tick for it. Without offline_access in the authorization URL's scope "
                "Atlassian returns no refresh token and the connection ends when the access "
                "token expires (one hour).",
                required=False,
                prose=["Requested through"],
            )
        )
    else:
        without = prof.scopes.without_offline_access
        add(
            ChecklistStep(
                "offline-access",
                "Permissions",
                "No offline_access requested: no refresh token",
                {},
                "offline_access is never ticked on the Permissions tab; it is requested in the "
                "authorization URL. Without it the connection lasts one access token (an hour)"
                + (f": {without}" if without else "."),
                required=False,
            )
        )

    # --- Authorization ---
    add(
        _step(
            "authorization-callback",
            "Authorization",
            "Add OAuth 2.0 (3LO) authorization with the callback URL",
            {"Authorization type": "OAuth 2.0 (3LO)", "Callback URL": callback_url},
            "The redirect_uri sent at authorization must match a callback URL here exactly: "
            "scheme, host, port, path and trailing slash all count. Production callbacks use "
            "https; http://localhost is accepted for development. Add one callback per "
            "environment if you have several.",
            prose=["Authorization type"],
        )
    )

    # --- Settings ---
    into_partner = f" and into {prof.partner} (step below)" if prof.partner else ""
    env_values = {
        "ATLASSIAN_CLIENT_ID": "the Client ID (copy button on the Settings tab)",
        "ATLASSIAN_CLIENT_SECRET": "the Secret (copy button on the Settings tab), pasted only "
        f"into .env{into_partner}",
    }
    if prof.partner is None:
        # A partner's callback and scopes live in the partner's settings, not the playbook's.
        env_values["ATLASSIAN_REDIRECT_URI"] = callback_url
        env_values["ATLASSIAN_SCOPES"] = " ".join(chosen_scopes)
    add(
        _step(
            "settings-credentials",
            "Settings",
            "Copy the Client ID and Secret into .env",
            env_values,
            "The secret never goes into chat, tickets, notebooks, command lines or git: .env is "
            "git-ignored and the playbook writes it with mode 0600 and prints it masked. If it "
            "leaks, rotate it on the Settings tab."
            + (
                " Then run `atlassian-playbook login` and `atlassian-playbook verify`."
                if prof.partner is None
                else ""
            ),
            prose=["ATLASSIAN_CLIENT_ID", "ATLASSIAN_CLIENT_SECRET"],
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
    if prof.terms_required or terms_url:
        sharing_values["Terms of service URL"] = terms
    sharing_values[_SUPPORT_CONTACT] = support_contact or _SUPPORT_CONTACT_NOTE
    add(
        _step(
            "distribution-sharing",
            "Distribution",
            "Edit the distribution: set the status to Sharing",
            sharing_values,
            "With 'Not sharing' only the app's owner can consent; everyone else gets a generic "
            "'Something went wrong' at consent. Sharing needs the vendor name and privacy "
            "policy URL; a customer support contact is optional."
            + ("" if prof.sharing_required else " Needed as soon as anyone but you consents."),
            required=prof.sharing_required,
            prose=["Distribution status"] + ([] if support_contact else [_SUPPORT_CONTACT]),
        )
    )
    declare = (
        "Answer Yes (and confirm the Personal Data Reporting API) if the app stores names, "
        "emails or other personal data; Atlassian staff have said an account id alone is not "
        "personal data."
    )
    if stores_personal_data is None:
        who = prof.partner or "the app"
        pd_values = {
            "Personal data declaration": placeholder(
                f"Yes or No: check whether {who} stores personal data from Atlassian"
            )
        }
        pd_detail = (
            f"The public facts this playbook relies on do not say whether {who} stores personal "
            f"data: check in {who}'s dashboard or documentation. {declare}"
        )
    elif stores_personal_data and prof.personal_data_when:
        when = prof.personal_data_when
        pd_values = {
            "Personal data declaration": f"Yes, if {when}; otherwise No",
            "Confirmation (with Yes)": PERSONAL_DATA_CONFIRMATION,
        }
        pd_detail = f"{prof.personal_data_why} {declare}"
    elif stores_personal_data:
        pd_values = {"Personal data declaration": "Yes", "Confirmation": PERSONAL_DATA_CONFIRMATION}
        pd_detail = prof.personal_data_why
    else:
        pd_values = {"Personal data declaration": "No"}
        pd_detail = declare
    conditional = bool(stores_personal_data and prof.personal_data_when)
    add(
        _step(
            "distribution-personal-data",
            "Distribution",
            (
                f"If {prof.personal_data_when}: declare that the app stores personal data"
                if conditional
                else "Declare whether the app stores personal data"
            ),
            pd_values,
            pd_detail,
            required=not conditional
            and (prof.sharing_required or stores_personal_data is not False),
            prose=list(pd_values),
        )
    )

    # FACTS.md: "Your site admin must authorize this app" is shown at consent when a site's
    # Connected apps setting "User installed apps" is not Allowed; the fix is the admin's.
    add(
        _step(
            "distribution-site-admin",
            "Distribution",
            "If consent says \"Your site admin must authorize this app\": what the site admin does",
            {
                "Site admin allows it": "Atlassian Administration > Apps > Sites > the site > "
                "Connected apps: User installed apps: Allowed",
                "Or a site admin": "consents to the app once: the app is then authorized on "
                "that site",
            },
            "A site whose admins do not allow user-installed apps refuses everyone else's "
            "consent with this message (the setting is Allowed by default). There is no "
            "pending-approval screen and nothing to change in the console: the person who saw "
            "it asks a site admin to change the setting or to complete the consent.",
            required=False,
            prose=["Site admin allows it", "Or a site admin"],
        )
    )

    # --- the partner's own steps ---
    for step in prof.steps:
        if step.at == "end":
            add(partner_step(step))

    return Checklist(
        profile=prof.name,
        policy_note=f"{POLICY_NOTE} {prof.audience}",
        steps=tuple(steps),
        scopes=chosen_scopes,
        callback_url=callback_url,
        console_apis=apis,
        warnings=tuple(warnings),
        title=prof.title,
    )
