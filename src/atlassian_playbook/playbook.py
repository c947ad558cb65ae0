"""What the notebooks call: one function per step of the playbook.

Notebooks hold narrative and one call per step; the logic is here, where it is tested. Every
step displays what a person reads (Markdown, tables, widgets), :func:`~records.record`s what a
test or a batch run asserts on, and raises a :class:`PlaybookError` (message + hint) when the
step failed, so a headless run stops at the right cell with the hint in its output.

Each widget choice has a parameter that makes the same choice headless, through the same
function: ``completed_steps`` ticks the checklist as its checkboxes do, ``preset``/``scopes``
save what the scope picker's Save button would, ``consent`` decides who answers the consent
screen. The one exception is the client secret: it is never a parameter (papermill writes
parameters into the executed notebook); headless runs read it from ``.env`` or the environment,
where :func:`save_credentials` (the credentials form's Save) puts it.

Steps display what a person reads and :func:`~records.record` what a program reads; they
return nothing (so a notebook cell shows no stray ``Out[]``), except :func:`start` and
:func:`refresh_tokens`, whose results the next cells use.

Notebook parameters use ``""`` for "not set" (papermill parameters are plain literals); every
function here accepts ``""`` wherever it accepts ``None``.
"""

from __future__ import annotations

import html
import re
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import connection
from ._files import atomic_write_json, read_json
from .callback import is_loopback
from .checklist import MERGE_CALLBACK_URL, PROFILES, is_placeholder
from .config import Settings, load_workspace_settings, parse_scopes, save_settings
from .errors import CallbackError, PlaybookError, ReauthorizationRequired
from .execute import check_parameters
from .records import record
from .redact import Secret, redact
from .target import Target, connect

__all__ = [
    "Session",
    "start",
    "overview",
    "show_checklist",
    "capture_credentials",
    "save_credentials",
    "select_scopes",
    "exchange_tokens",
    "show_token_store",
    "verify_access",
    "refresh_tokens",
    "demonstrate_reuse",
    "lifecycle_timeline",
    "partner_handoff",
    "personal_data_report",
    "health_check",
    "CONSENT_MODES",
]

PARTNER_CALLBACKS = {"merge": MERGE_CALLBACK_URL}
# Which scope preset a profile starts from; ``custom`` keeps what .env asks for.
PROFILE_PRESETS = {"merge": "merge", "clerk": "clerk"}
# Who answers the consent screen: "auto" (headless against a loopback emulator, else a person),
# "browser" (always a person), "deny" (emulator only: the headless browser presses Deny).
CONSENT_MODES = ("auto", "browser", "deny")
# The reuse leeway (FACTS.md: 10 minutes per the jira.js guide) plus a minute.
_PAST_REUSE_LEEWAY = 11 * 60
_REPORTING_SCOPE = "report:personal-data"
REPORT_PATH = "/app/report-accounts/"
# Atlassian's documented test accounts for the personal data reporting API (FACTS.md).
TEST_ACCOUNTS = {
    "5be24ad8b1653240376955d2": "active test account",
    "5be24ba3f91c106033269289": "closed test account",
}


# --- display helpers ------------------------------------------------------------------------


def _display(*objects: Any) -> None:
    from IPython.display import display

    display(*objects)


def _markdown(text: str) -> None:
    from IPython.display import Markdown

    _display(Markdown(redact(text)))


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> None:
    """An HTML table of ``rows`` (escaped, redacted): readable in JupyterLab and in HTML."""
    from IPython.display import HTML

    if not rows:
        _markdown("_(nothing to show)_")
        return
    columns = list(columns or rows[0].keys())
    # Left-aligned: JupyterLab right-aligns table cells, which makes prose columns hard to read.
    left = "style='text-align:left'"
    head = "".join(f"<th {left}>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td {left}>{html.escape(redact(_cell(row.get(c))))}</td>" for c in columns)
        + "</tr>"
        for row in rows
    )
    _display(HTML(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"))


def _cell(value: Any) -> str:
    if value is True:
        return "✔"
    if value is False:
        return "✘"
    if value is None:
        return "—"
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    return str(value)


def _opt(value: Any) -> Any:
    """A notebook parameter's "not set" (``""``) as ``None``."""
    return None if value in ("", None) else value


def _words(value: str | Iterable[str] | None) -> list[str]:
    """Space- or comma-separated text (a notebook parameter) or a list, as a list."""
    if not value:
        return []
    if isinstance(value, str):
        return [part for part in re.split(r"[\s,]+", value) if part]
    return [str(part) for part in value]


def _mode(mode: int | None) -> str:
    return "missing" if mode is None else f"{mode:04o}"


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))


# --- the session ----------------------------------------------------------------------------


@dataclass
class Session:
    """The workspace a notebook works in, and the Atlassian (real or emulated) it talks to.

    The workspace holds ``.env`` and ``.playbook/`` (the chosen profile, checklist progress,
    the reporting cycle and, against the emulator, the token store and the emulator's state).
    """

    workspace: Path
    target: Target
    auto_consent: bool | str = True  # the embedded emulator's: True, False or "deny"

    @property
    def settings(self) -> Settings:
        return self.target.settings

    @property
    def env_file(self) -> Path:
        return self.workspace / ".env"

    @property
    def state_dir(self) -> Path:
        return self.workspace / ".playbook"

    @property
    def uses_emulator(self) -> bool:
        """True for the embedded emulator (no credentials in .env)."""
        return self.target.emulator is not None

    @property
    def headless_possible(self) -> bool:
        """True when the authorization server is on loopback (an emulator), so a headless
        browser can stand in for the person at the consent screen."""
        return is_loopback(self.settings.auth_base_url)

    def consents_headless(self, consent: str) -> bool:
        """Whether a headless browser stands in for the person at consent (``auto``/``deny``
        against an emulator); otherwise a person clicks the link."""
        return consent in ("auto", "deny") and self.headless_possible

    @property
    def profile(self) -> str:
        """The profile chosen in notebook 02 (``custom`` until one was chosen)."""
        saved = read_json(self.state_dir / "profile.json", default={}) or {}
        return saved.get("profile") if saved.get("profile") in PROFILES else "custom"

    def resolve_profile(self, profile: str | None) -> str:
        profile = _opt(profile) or self.profile
        if profile not in PROFILES:
            raise PlaybookError(
                f"Unknown profile {profile!r}.", f"Use one of: {', '.join(PROFILES)}."
            )
        return profile

    def reload(self) -> Session:
        """Re-read .env after a step changed it (credentials, scopes, callback URL)."""
        fresh = start(self.workspace, auto_consent=self.auto_consent, quiet=True)
        self.target = fresh.target
        return self

    def _repr_markdown_(self) -> str:
        s = self.settings
        lines = [
            f"**Target:** {self.target.describe()}",
            f"**Workspace:** `{self.workspace}`",
            f"**Profile:** {self.profile}",
            f"**Callback URL:** `{s.redirect_uri}`",
            f"**Scopes:** `{' '.join(s.scopes)}`",
            f"**Token store:** `{s.token_store}`",
        ]
        lines += [f"**Warning:** {u.message} {u.hint}" for u in s.unknown]
        return redact("  \n".join(lines))


def start(
    workspace: str | Path = "..",
    *,
    parameters: dict[str, Any] | None = None,
    auto_consent: bool | str = True,
    quiet: bool = False,
) -> Session:
    """Open the workspace, refuse secret parameters, and connect (starting the emulator if
    no credentials are set).

    ``parameters`` is the notebook's parameter dict, checked here too in case someone ran
    papermill by hand with ``-p client_secret ...``. Against anything but the real Atlassian
    (the emulator, a test double) the token store lives in the workspace's ``.playbook/``
    unless ``ATLASSIAN_TOKEN_STORE`` says otherwise, so the emulated world and its tokens stay
    together and separate notebook kernels share them.
    """
    if parameters:
        check_parameters(parameters)
    workspace = Path(workspace).expanduser().resolve()
    if not workspace.is_dir():
        raise PlaybookError(
            f"The workspace {workspace} does not exist.",
            "Pass workspace= the folder holding .env (the repository root when JupyterLab runs "
            "in notebooks/, which is the default '..').",
        )
    settings = load_workspace_settings(workspace)
    if parameters and settings.client_secret:
        check_parameters(parameters, [settings.client_secret.reveal()])
    session = Session(workspace, connect(settings, auto_consent=auto_consent), auto_consent)
    if not quiet:
        _display(session)
        record("target", session.target.kind)
    return session


# --- 1. overview ----------------------------------------------------------------------------


def overview(session: Session) -> None:
    """Where things stand: which Atlassian, the settings (masked), what the playbook writes."""
    from .tokens import TokenStore, entries_summary

    s = session.settings
    if session.uses_emulator:
        _markdown(
            "**Target: the embedded emulator.** No `ATLASSIAN_CLIENT_ID`/`ATLASSIAN_CLIENT_SECRET` "
            "in `.env` or the environment, so the playbook runs against an emulator of "
            f"Atlassian on this machine ({s.auth_base_url}, {s.api_base_url}): the same "
            "requests, the same errors, no real account. Notebook 02 puts real credentials in "
            "`.env`; from then on the same cells talk to auth.atlassian.com and "
            "api.atlassian.com."
        )
    elif session.target.kind == "atlassian":
        _markdown(
            f"**Target: Atlassian Cloud** as client `{s.client_id}` (secret `{s.client_secret}`"
            ", masked). Consent happens in your browser."
        )
    else:
        _markdown(
            f"**Target: {s.auth_base_url}** (not Atlassian's own URL: a test double or an "
            f"emulator) as client `{s.client_id}`."
        )
    _table([{"setting": k, "value": v} for k, v in s.describe().items()], ["setting", "value"])
    produced = [
        {
            "what": ".env",
            "where": session.env_file,
            "why": "credentials (mode 0600, never committed), callback URL, scopes",
        },
        {
            "what": "token store",
            "where": s.token_store,
            "why": "access and refresh tokens (mode 0600, written atomically, locked)",
        },
        {
            "what": "checklist progress",
            "where": session.state_dir / "checklist-<profile>.json",
            "why": "which console steps you ticked",
        },
        {
            "what": "reporting cycle",
            "where": session.state_dir / "reporting-cycle.json",
            "why": "when each account was last reported (Cycle-Period)",
        },
    ]
    if session.uses_emulator:
        produced.append(
            {
                "what": "emulated world",
                "where": s.token_store.with_name("emulator-state.json"),
                "why": "the emulator's app, grants and clock, shared by every notebook kernel",
            }
        )
    _markdown("**What the playbook produces:**")
    _table(produced, ["what", "where", "why"])
    entries = TokenStore(s.token_store).list()
    _markdown(f"**Stored connections:** {len(entries)}")
    if entries:
        _table(entries_summary(entries))
    result = {
        "target": session.target.kind,
        "connections": len(entries),
        "scopes": list(s.scopes),
        "redirect_uri": s.redirect_uri,
        "token_store": str(s.token_store),
        "profile": session.profile,
    }
    record("overview", result)
    return


# --- 2. create the app ----------------------------------------------------------------------


def _progress_path(session: Session, profile: str) -> Path:
    return session.state_dir / f"checklist-{profile}.json"


def _partner_callback(session: Session, profile: str, callback_url: str | None) -> str | None:
    """The callback a profile needs: Merge's fixed one, the URL Clerk shows, or None."""
    if callback_url:
        return callback_url
    if profile in PARTNER_CALLBACKS:
        return PARTNER_CALLBACKS[profile]
    if profile == "clerk":
        configured = session.settings.redirect_uri
        # Clerk's URI is whatever Clerk shows; a non-loopback callback in .env was set for it.
        return None if is_loopback(configured) else configured
    return None


def show_checklist(
    session: Session,
    profile: str = "custom",
    *,
    completed_steps: Iterable[str] | str = (),
    app_name: str | None = None,
    callback_url: str | None = None,
    vendor_name: str | None = None,
    privacy_policy_url: str | None = None,
    terms_url: str | None = None,
) -> None:
    """The console checklist for ``profile`` with the exact values; ticks persist in the
    workspace, and the profile is remembered for the later notebooks.

    ``completed_steps`` (step ids separated by spaces or commas, or ``"all"``) ticks steps
    headless through the same function the checkboxes call.
    """
    from .checklist import build_checklist
    from .widgets import ChecklistWidget

    profile = session.resolve_profile(profile)
    callback = _opt(callback_url)
    if profile == "custom":
        callback = callback or session.settings.redirect_uri
    elif profile == "clerk":
        callback = _partner_callback(session, profile, callback)
    checklist = build_checklist(
        profile,
        app_name=_opt(app_name),
        callback_url=callback,
        scopes=session.settings.scopes if profile == "custom" else None,
        vendor_name=_opt(vendor_name),
        privacy_policy_url=_opt(privacy_policy_url),
        terms_url=_opt(terms_url),
    )
    atomic_write_json(session.state_dir / "profile.json", {"profile": profile}, mode=0o644)
    path = _progress_path(session, profile)
    ids = [step.id for step in checklist.steps]
    wanted = ids if completed_steps == "all" else _words(completed_steps)
    unknown = [sid for sid in wanted if sid not in ids]
    if unknown:
        raise PlaybookError(
            f"Unknown checklist step(s) for {profile}: {', '.join(unknown)}.",
            f"Step ids for {profile}: {', '.join(ids)} (or 'all').",
        )

    def tick(step_id: str, value: bool) -> None:
        current = read_json(path, default={}) or {}
        if value:
            current.setdefault(step_id, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        else:
            current.pop(step_id, None)
        atomic_write_json(path, current, mode=0o644)

    for sid in wanted:
        tick(sid, True)
    done = read_json(path, default=None)
    if done is None:  # start the progress file, so it is there to find (and to tick into)
        done = {}
        atomic_write_json(path, done, mode=0o644)
    # The Markdown copy shows the ticks too, for executed notebooks and HTML renders (where
    # the checkboxes' widget state is not kept); each step's line ends with <!-- step id -->.
    _markdown(
        "\n".join(
            line.replace("- [ ]", "- [x]", 1)
            if (m := re.search(r"<!-- (\S+) -->$", line)) and m.group(1) in done
            else line
            for line in checklist.to_markdown().splitlines()
        )
    )
    _display(ChecklistWidget(checklist, done, tick))
    open_required = [s.id for s in checklist.steps if s.required and s.id not in done]
    _markdown(
        f"**Progress:** {len([i for i in ids if i in done])} of {len(ids)} steps ticked"
        + (f"; still to do: {', '.join(open_required)}." if open_required else "; all done.")
        + f" Saved in `{path}`."
    )
    progress = {
        "profile": profile,
        "done": [i for i in ids if i in done],
        "total": len(ids),
        "open_required": open_required,
        "callback_url": checklist.callback_url,
        "scopes": list(checklist.scopes),
        "console_apis": list(checklist.console_apis),
        "placeholders": [f"{s}:{f}" for s, f in checklist.placeholders],
        "policy": checklist.policy_note,
    }
    record("checklist", progress)
    return


def save_credentials(session: Session, client_id: str, secret: Secret | str) -> None:
    """Write the Client ID and Secret to .env (mode 0600) and reconnect with them.

    What the credentials form's Save button calls. The secret arrives as a :class:`Secret`
    and is written only to .env.
    """
    client_id = (client_id or "").strip()
    secret = secret if isinstance(secret, Secret) else Secret(str(secret or "").strip())
    if not client_id or not secret:
        raise PlaybookError(
            "Both the Client ID and the Secret are needed.",
            "Copy both from the console's Settings tab.",
        )
    save_settings(
        {"ATLASSIAN_CLIENT_ID": client_id, "ATLASSIAN_CLIENT_SECRET": secret}, session.env_file
    )
    session.reload()


def capture_credentials(
    session: Session, *, profile: str | None = None, callback_url: str | None = None
) -> None:
    """Save the profile's callback URL to .env, show the credentials in use (masked) and a
    form that writes new ones to .env.

    The secret is never a notebook parameter: papermill would write it into the executed
    notebook. Against the emulator the app already exists and nothing needs pasting.
    """
    from .widgets import CredentialsForm

    profile = session.resolve_profile(profile)
    uri = _partner_callback(session, profile, _opt(callback_url))
    if uri and is_placeholder(uri):
        uri = None
    if uri and uri != session.settings.redirect_uri:
        save_settings({"ATLASSIAN_REDIRECT_URI": uri}, session.env_file)
        session.reload()
        _markdown(f"Saved the callback URL for **{profile}** to `.env`: `{uri}`")
    elif profile == "clerk" and uri is None:
        _markdown(
            "⚠️ Clerk's callback is the **Authorized redirect URI Clerk shows** for your "
            "production instance. Pass it as `callback_url` (parameters cell) so it is saved to "
            "`.env`; until then `.env` keeps the loopback callback."
        )

    s = session.settings
    if session.uses_emulator:
        _markdown(
            f"Against the emulator the app already exists: client id `{s.client_id}`, secret "
            f"`{s.client_secret}` (masked). With a real app, paste its Client ID and Secret "
            "below: they go to `.env` (mode 0600), never into this notebook, and the next "
            "notebooks talk to the real Atlassian."
        )
    else:
        _markdown(
            f"Credentials in use: client id `{s.client_id}`, secret `{s.client_secret}` "
            "(masked). Paste new ones below to replace them."
        )
    _display(
        CredentialsForm(
            None if session.uses_emulator else s.client_id,
            lambda client_id, secret: save_credentials(session, client_id, secret),
        )
    )
    result = {
        "target": session.target.kind,
        "profile": profile,
        "client_id": s.client_id,
        "secret_set": bool(s.client_secret),
        "redirect_uri": s.redirect_uri,
    }
    record("credentials", result)
    return


def register_callback(session: Session) -> None:
    """The console's Authorization tab: the callback URL the app lists, exactly as ``.env``
    sends it.

    Against the emulator this step *is* the console: it adds ``.env``'s callback to the
    emulated app's callback URLs, a deliberate act as pressing Add on the tab (editing
    ``.env`` alone never changes them, so a slash that differs later fails as it would against
    Atlassian). Against Atlassian it shows the exact string to enter; nothing here can read the
    console.
    """
    uri = session.settings.redirect_uri
    if not session.uses_emulator:
        _markdown(
            f"On the console's **Authorization** tab, OAuth 2.0 (3LO), the callback URL must "
            f"read exactly `{uri}`: compare scheme, host, port, path and the trailing slash "
            "character by character. This notebook cannot read the console, so check it there."
        )
        record("callback_registration", {"callback_url": uri, "target": session.target.kind,
                                         "registered": None})
        return
    emulator = session.target.emulator
    already = uri in emulator.default_client.redirect_uris
    client = emulator.add_callback_url(uri)
    if already:
        _markdown(f"✔ `{uri}` is already a callback URL on the emulated app's **Authorization** "
                  "tab.")
    else:
        _markdown(
            f"✔ Added `{uri}` on the emulated app's **Authorization** tab, as you would press "
            "**Add** on the console. (From a terminal: `atlassian-playbook emulator callbacks "
            "add URL`.)"
        )
    _table([{"callback URL on the app": u} for u in client.redirect_uris])
    record("callback_registration", {"callback_url": uri, "target": "emulator",
                                     "registered": list(client.redirect_uris)})


# --- 3. scopes ------------------------------------------------------------------------------


def select_scopes(
    session: Session,
    *,
    preset: str | None = None,
    scopes: str | Sequence[str] | None = None,
    offline_access: bool | None = True,
    console_apis: str | Iterable[str] | None = None,
) -> None:
    """Choose scopes and save them to .env as ``ATLASSIAN_SCOPES``.

    Headless: ``scopes`` (explicit, space-separated) wins over ``preset``; with neither, the
    profile's preset (merge, clerk) or, for ``custom``, the current setting. ``offline_access``
    True adds it (a refresh token), False removes it, None keeps the choice as it is.
    ``console_apis`` (the APIs added on the console's Permissions tab, comma-separated, e.g.
    ``"identity, jira"`` or ``"User identity API, Jira API"``)
    turns on the check that every scope's API is added. Unknown scopes raise with "did you
    mean". The picker shown afterwards starts from the saved choice; its Save button calls the
    same save function.
    """
    from . import scopes as catalog
    from .widgets import ScopePicker

    if isinstance(console_apis, str):  # comma-separated: console names contain spaces
        console_apis = [part.strip() for part in console_apis.split(",") if part.strip()]
    apis = list(console_apis) if console_apis else None
    preset = _opt(preset)
    if _opt(scopes):
        chosen = parse_scopes(scopes) if isinstance(scopes, str) else tuple(scopes)
    elif preset:
        chosen = catalog.preset(preset)
    elif session.profile in PROFILE_PRESETS:
        chosen = catalog.preset(PROFILE_PRESETS[session.profile])
    else:
        chosen = session.settings.scopes
    if offline_access is True and catalog.OFFLINE_ACCESS not in chosen:
        chosen = (*chosen, catalog.OFFLINE_ACCESS)
    elif offline_access is False:
        chosen = tuple(s for s in chosen if s != catalog.OFFLINE_ACCESS)

    def save(selection: Sequence[str]) -> tuple[str, ...]:
        valid = catalog.validate_scopes(selection)
        save_settings({"ATLASSIAN_SCOPES": " ".join(valid)}, session.env_file)
        session.reload()
        return valid

    saved = save(chosen)
    warnings = catalog.check_scopes(saved, console_apis=apis)
    needed = catalog.console_apis_for(saved)
    _markdown(
        f"Saved **{len(saved)} scopes** to `.env`: `{' '.join(saved)}`\n\n"
        "On the console's Permissions tab, add and configure: "
        + (", ".join(f"**{api}**" for api in needed) or "nothing")
        + (
            "."
            if catalog.OFFLINE_ACCESS not in saved
            else ". `offline_access` is not ticked there: it is requested in the authorization URL."
        )
    )
    for warning in warnings:
        _markdown(f"⚠️ **{warning.message}** {warning.hint}")
    _display(ScopePicker(saved, save, console_apis=apis))
    result = {
        "scopes": list(saved),
        "warnings": [w.code for w in warnings],
        "console_apis": needed,
        "offline_access": catalog.OFFLINE_ACCESS in saved,
    }
    record("scopes", result)
    return


# --- 4. token exchange ----------------------------------------------------------------------


def _ask_pasted_url() -> str:
    """A masked input box in JupyterLab for the URL the browser landed on (it holds the code)."""
    from getpass import getpass

    try:
        return getpass("Paste the whole URL your browser landed on (hidden), then Enter: ")
    except Exception as error:  # StdinNotImplementedError under papermill / nbconvert
        raise CallbackError(
            f"Nobody can paste the redirected URL here ({type(error).__name__}).",
            "Run this notebook in JupyterLab, or use `atlassian-playbook login --paste`; a "
            "headless run only works against the emulator.",
        ) from None


def _login(
    session: Session,
    *,
    consent: str = "auto",
    callback: str = "auto",
    timeout: float = 300.0,
    show_url: Callable[[str], object] | None = None,
) -> connection.LoginResult:
    """The authorization code flow for a notebook; see :func:`exchange_tokens`."""
    if consent not in CONSENT_MODES:
        raise PlaybookError(
            f"consent={consent!r} is not a consent mode.",
            f"Use one of: {', '.join(CONSENT_MODES)}.",
        )
    if callback not in ("auto", "listen", "paste"):
        raise PlaybookError(
            f"callback={callback!r} is not a callback mode.", "Use auto, listen or paste."
        )
    if consent == "deny" and not session.headless_possible:
        raise PlaybookError(
            "consent='deny' rehearses a refusal against the emulator only.",
            "Press Deny yourself on Atlassian's consent screen to see it live.",
        )
    headless = session.consents_headless(consent)
    # The embedded emulator answers consent itself: at once (auto), with a refusal (deny), or
    # with its consent page for a person (browser).
    wanted = {"auto": True, "deny": "deny"}.get(consent, False)
    if session.uses_emulator and session.auto_consent != wanted:
        session.auto_consent = wanted
        session.reload()
    settings = session.settings
    loopback = is_loopback(settings.redirect_uri)
    mode = ("listen" if loopback else "paste") if callback == "auto" else callback
    return connection.login(
        session.target,
        mode=mode,
        browser="headless" if headless else "none",
        paste=None if headless else _ask_pasted_url,
        show_url=show_url or (lambda url: None),
        timeout=timeout,
    )


def exchange_tokens(
    session: Session, *, consent: str = "auto", callback: str = "auto", timeout: float = 300.0
) -> None:
    """Authorize, catch the code, exchange it, store the tokens, show a masked summary.

    ``consent``: ``auto`` consents headless against a loopback emulator and waits for a person
    anywhere else; ``browser`` always waits for a person (the emulator then shows its consent
    page); ``deny`` (emulator only) presses Deny, to rehearse a refusal. ``callback``: ``auto``
    listens on a loopback callback URL and otherwise asks for the URL the browser landed on
    (a partner's callback such as Merge's); ``listen``/``paste`` force one. ``timeout``: how
    long to wait for the person, in seconds.
    """
    from .widgets import AuthorizationPanel

    panel = AuthorizationPanel()

    def show(url: str) -> None:
        headless = session.consents_headless(consent)
        panel.set_url(url)
        panel.show(
            "Consenting headless (emulator)…"
            if headless
            else "Open the link, choose a site and press Accept; this cell waits for the "
            "callback"
            + (
                "."
                if is_loopback(session.settings.redirect_uri)
                else ", then asks for the URL your browser landed on."
            )
        )

    try:
        result = _login(session, consent=consent, callback=callback, timeout=timeout, show_url=show)
    except PlaybookError as error:
        panel.show(f"✘ {html.escape(redact(error.message))}")
        raise
    panel.show("✔ Consent received, code exchanged, tokens stored.")
    data = result.to_dict()
    _table(
        [
            {"item": "account", "value": data["account_id"] or "(unknown: read:me not requested)"},
            {"item": "access token", "value": f"{result.entry.tokens.access_token} (masked)"},
            {"item": "expires at", "value": data["expires_at"]},
            {
                "item": "refresh token",
                "value": (
                    f"{result.entry.tokens.refresh_token} (masked)"
                    if result.entry.tokens.refresh_token
                    else "missing"
                ),
            },
            {"item": "requested scopes", "value": data["requested_scopes"]},
            {"item": "granted scopes", "value": data["granted_scopes"]},
            {
                "item": "sites",
                "value": [f"{s['name']} ({s['id']})" for s in data["sites"]]
                or "(none listed: no site scopes requested)",
            },
        ],
        ["item", "value"],
    )
    for warning in result.warnings:
        _markdown(f"⚠️ {warning}")
    record(
        "login",
        {
            **data,
            "consent": consent,
            "headless": session.consents_headless(consent),
        },
    )


def rehearse_consent_traps(session: Session, *, enabled: bool = True) -> None:
    """The consent traps made on purpose against the emulator (see :mod:`.rehearsals`): what
    each looks like to the user and what fixes it. Against Atlassian, says why not."""
    from .rehearsals import rehearse

    if not enabled:
        _markdown("Rehearsals skipped (`rehearse = False`).")
        return
    if not session.uses_emulator:
        _markdown(
            f"Rehearsals are not available against {session.target.kind}: they make an app "
            "fail on purpose. Read them in the training site, or run this notebook against the "
            "emulator (no credentials in `.env`)."
        )
        record("rehearsals", None)
        return
    results = rehearse(session.target)
    _table(
        [{"trap": r.name, "the mistake": r.mistake, "what the user sees": r.seen,
          "as on Atlassian": "✔" if r.as_expected else "✘", "the fix": r.fix} for r in results],
        ["trap", "the mistake", "what the user sees", "as on Atlassian", "the fix"],
    )
    record("rehearsals", [r.to_dict() for r in results])
    failed = [r.name for r in results if not r.as_expected]
    if failed:
        raise PlaybookError(
            f"Rehearsal(s) did not fail the way Atlassian fails: {', '.join(failed)}.",
            "Check the emulated world (docs/EMULATOR.md) or report it with "
            "`atlassian-playbook doctor --record`.",
        )


def show_token_store(session: Session) -> None:
    """Where the tokens are, that the file is private (0600), and what it holds (masked)."""
    from .tokens import TokenStore, entries_summary

    path = session.settings.token_store
    entries = TokenStore(path).list()
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    private = mode is not None and mode & 0o077 == 0
    _markdown(
        f"**Token store:** `{path}` — mode `{_mode(mode)}`"
        + (" (only you can read it)" if private else " ⚠️ readable by others")
    )
    rows = entries_summary(entries)
    for row in rows:
        row["updated_at"] = _iso(row["updated_at"])
    _table(rows)
    result = {
        "path": str(path),
        "mode": _mode(mode),
        "private": private,
        "entries": len(entries),
        "accounts": [e.account_id for e in entries],
    }
    record("token_store", result)
    if mode is not None and not private:
        raise PlaybookError(
            f"The token store {path} is readable by other users.", f"Run `chmod 600 {path}`."
        )
    return


# --- 5. verify ------------------------------------------------------------------------------


def _verify(session: Session, account_id: str | None):
    from .tokens import TokenStore

    settings = session.settings
    entry = TokenStore(settings.token_store).get(settings.client_id, account_id)
    return entry, connection.verify(session.target, account_id=entry.account_id)


def _failure(prefix: str, checks) -> PlaybookError:
    failed = [c for c in checks if c.ok is False]
    return PlaybookError(
        prefix + "; ".join(f"{c.name}: {c.detail}" for c in failed), failed[0].hint
    )


def verify_access(
    session: Session, *, account_id: str | None = None, fail_on_error: bool = True
) -> None:
    """Sites with their cloud ids, requested vs granted scopes per site, /me, a Jira and a
    Confluence call: each ok, failed (with the hint) or skipped (with the reason).

    Raises when a check failed (unless ``fail_on_error=False``), so a headless run stops here
    with the hint in this cell's output.
    """
    entry, report = _verify(session, _opt(account_id))
    _markdown("### Sites this connection reaches")
    _table(
        [
            {
                "site": s.name,
                "url": s.url,
                "cloud id": s.id,
                "products": s.products,
                "chosen": report.chosen_site is not None and s.id == report.chosen_site.id,
            }
            for s in report.sites
        ],
        ["site", "url", "cloud id", "products", "chosen"],
    )
    _markdown("### Requested vs granted scopes per site")
    _table(report.scope_table)
    _markdown("### Checks")
    _table([c.to_dict() for c in report.checks], ["status", "name", "detail", "hint"])
    data = {**report.to_dict(), "account_id": entry.account_id}
    record("verify", data)
    if fail_on_error and not report.ok:
        raise _failure("Verification failed: ", report.checks)
    _markdown("✔ **Verified**: every check passed or was skipped for a reason shown above.")
    return


# --- 6. refresh and lifecycle ---------------------------------------------------------------


def refresh_tokens(session: Session, *, account_id: str | None = None) -> connection.RefreshResult:
    """Refresh now; show the rotation (masked fingerprints) and that the new token was saved."""
    result = connection.refresh(session.target, account_id=_opt(account_id))
    _table(
        [
            {"refresh token": "before (sent)", "fingerprint": result.previous_refresh_token},
            {
                "refresh token": "after (saved to the store)",
                "fingerprint": result.new_refresh_token,
            },
        ]
    )
    _markdown(
        f"Rotated: **{'yes' if result.rotated else 'no'}**. The access token now expires at "
        f"{result.to_dict()['expires_at']}. The new refresh token was saved *before* anything "
        "else used it: the old one stops working after the reuse leeway."
    )
    record("refresh", result.to_dict())
    return result


def demonstrate_reuse(
    session: Session, refreshed: connection.RefreshResult, *, recover: bool = True
) -> None:
    """Show what reusing a rotated refresh token does, then recover (emulator only).

    The emulator's clock moves past the reuse leeway, the old refresh token is presented, the
    theft rule revokes every refresh token of the grant (the newest too), and, with
    ``recover``, the playbook consents again headless and stores the new tokens. Against the
    real Atlassian this is skipped: it would revoke a real grant.
    """
    from .oauth import OAuthClient

    if not session.uses_emulator or refreshed.previous_tokens is None:
        _markdown(
            "Skipped: this demonstration runs against the emulator only. Against the real "
            "Atlassian, reusing a rotated refresh token would revoke this grant for real."
        )
        outcome = {"demonstrated": False}
        record("reuse", outcome)
        return
    session.target.emulator.advance_clock(_PAST_REUSE_LEEWAY)
    outcome: dict[str, Any] = {"demonstrated": True, "clock_advanced_s": _PAST_REUSE_LEEWAY}
    rows = []
    with OAuthClient(session.settings) as oauth:
        for label, token, key in (
            (
                "old (rotated) refresh token, 11 min later",
                refreshed.previous_tokens.refresh_token,
                "old_token_rejected",
            ),
            (
                "newest refresh token, right after",
                refreshed.entry.tokens.refresh_token,
                "grant_revoked",
            ),
        ):
            try:
                oauth.refresh(token)
                outcome[key] = False
                rows.append({"presented": label, "fingerprint": str(token), "answer": "accepted"})
            except ReauthorizationRequired as error:
                outcome[key] = True
                rows.append(
                    {
                        "presented": label,
                        "fingerprint": str(token),
                        "answer": f"rejected: {error.message}",
                    }
                )
    _table(rows, ["presented", "fingerprint", "answer"])
    if outcome["old_token_rejected"] and outcome["grant_revoked"]:
        _markdown(
            "The reuse was taken for theft: **every refresh token of the grant is revoked"
            "**, the newest one too. Only a new consent fixes it."
        )
    if recover:
        recovered = _login(session, consent="auto")
        outcome.update(
            recovered=True,
            new_refresh_token=str(recovered.entry.tokens.refresh_token),
            account_id=recovered.entry.account_id,
        )
        _markdown(
            "**Recovered:** the playbook consented again (headless, against the emulator) and "
            f"stored a new grant's tokens (refresh token {recovered.entry.tokens.refresh_token}"
            "). With real users, this is the moment they must be sent through consent again."
        )
    record("reuse", outcome)
    return


def lifecycle_timeline(session: Session, *, account_id: str | None = None) -> None:
    """When each credential stops working, and how a user revokes access."""
    from .tokens import TokenStore

    entry = TokenStore(session.settings.token_store).get(
        session.settings.client_id, _opt(account_id)
    )
    has_refresh = entry.tokens.refresh_token is not None
    rows = [
        {
            "what": "access token",
            "until": _iso(entry.tokens.expires_at),
            "why": "1 hour after issue; expired tokens get 401 (enforced since 2024-05-14). The "
            "playbook refreshes a minute before.",
        },
        {
            "what": "refresh token: inactivity",
            "until": _iso(entry.updated_at + 90 * 86400) if has_refresh else "no refresh token",
            "why": "90 days without use; every refresh resets the clock. Refresh at least monthly "
            "(notebook 09 in a batch does).",
        },
        {
            "what": "refresh token: absolute",
            "until": "365 days after the first consent",
            "why": "announced in 2022 (unconfirmed as in force); then the user consents again",
        },
        {
            "what": "a rotated refresh token",
            "until": "10 minutes after its rotation",
            "why": "the reuse leeway for concurrent refreshes; reuse after it revokes the whole "
            "grant",
        },
        {
            "what": "the whole grant",
            "until": "until revoked",
            "why": "the user removes the app, changes password, or a reuse is detected",
        },
    ]
    _table(rows, ["what", "until", "why"])
    _markdown(
        "**How a user revokes access:** in their Atlassian account, **Profile → Connected apps** "
        "(https://id.atlassian.com/manage-profile/apps) → the app → Remove access. There is no "
        "revocation endpoint for 3LO apps: the app learns of it at its next refresh "
        "(`invalid_grant`). A developer who suspects a leak rotates the client secret on the "
        "console's Settings tab."
    )
    record("timeline", rows)
    return


# --- 7. partner handoff ---------------------------------------------------------------------

_HANDOFF_LABELS = {
    "merge": ("OAuth Client Id", "OAuth Client Secret", "OAuth Redirect URI"),
    "clerk": ("Client ID", "Client Secret", "Authorized redirect URI"),
    "custom": ("Client ID", "Client Secret", "Callback URL"),
}


def partner_handoff(
    session: Session,
    profile: str | None = None,
    *,
    callback_url: str | None = None,
    extra_scopes: str | None = None,
) -> None:
    """The exact values to paste into the partner, the secret masked with reveal-to-copy, and a
    final check that the callback URL in .env is the profile's (and, against the emulator,
    registered on the app)."""
    from .widgets import SecretReveal

    profile = session.resolve_profile(profile)
    s = session.settings
    expected = _partner_callback(session, profile, _opt(callback_url)) or s.redirect_uri
    labels = _HANDOFF_LABELS[profile]
    rows = [
        {"field": labels[0], "value": s.client_id},
        {"field": labels[1], "value": f"{s.client_secret} (masked: use Reveal to copy)"},
        {"field": labels[2], "value": expected},
    ]
    extra: list[str] = []
    if profile == "clerk":
        extra = (
            list(parse_scopes(extra_scopes))
            if _opt(extra_scopes)
            else [x for x in s.scopes if x != "read:me"]
        )
        rows.append(
            {
                "field": "Scopes (extra; enter them in Clerk too)",
                "value": " ".join(extra) or "— (read:me only)",
            }
        )
    where = {
        "merge": "Merge's partner credentials page",
        "clerk": "Clerk's Atlassian social connection (custom credentials)",
        "custom": "your integration's settings",
    }[profile]
    _markdown(f"Paste these into **{where}**, copying each value as shown:")
    _table(rows, ["field", "value"])
    _display(SecretReveal(labels[1], s.client_secret))
    matches = s.redirect_uri == expected
    registered = None
    if session.uses_emulator:
        registered = s.redirect_uri in session.target.emulator.default_client.redirect_uris
    check = {
        "profile": profile,
        "expected_callback": expected,
        "configured_callback": s.redirect_uri,
        "callback_matches": matches,
        "registered_on_app": registered,
    }
    record(
        "handoff",
        {
            "fields": [r["field"] for r in rows],
            "client_id": s.client_id,
            "extra_scopes": extra,
            **check,
        },
    )
    if not matches:
        raise PlaybookError(
            f"The callback URL in .env ({s.redirect_uri}) is not {profile}'s ({expected}).",
            f"Set {expected} on the console's Authorization tab and as ATLASSIAN_REDIRECT_URI "
            "(notebook 02 does it); scheme, host, port, path and trailing slash all count.",
        )
    if profile in ("merge", "clerk") and is_loopback(expected):
        raise PlaybookError(
            f"The callback for {profile} is still the loopback {expected}.",
            "Run 02-create-app with profile and callback_url set to the partner's redirect URI.",
        )
    _markdown(
        f"✔ The callback URL `{expected}` is {profile}'s, in `.env`"
        + (" and on the app's Authorization tab." if registered else ".")
    )
    return


# --- 8. personal data reporting -------------------------------------------------------------


class _FirstReportRateLimited:
    """The API client, with the emulator told to answer the first report request 429 (with
    Retry-After) just before it is sent: a rehearsal of Atlassian's rate limit."""

    def __init__(self, api, emulator) -> None:
        self._api, self._emulator, self._armed = api, emulator, True

    def report_accounts(self, accounts):
        if self._armed:
            self._armed = False
            self._emulator.inject_fault(REPORT_PATH, status=429, retry_after=0.5, times=1)
        return self._api.report_accounts(accounts)


def personal_data_report(
    session: Session,
    *,
    account_ids: str | Sequence[str] = (),
    include_test_accounts: bool = True,
    rehearse_rate_limit: bool = True,
    require: bool = False,
    account_id: str | None = None,
    record_as: str = "personal_data",
) -> None:
    """One reporting cycle for the account ids the app stores, with the action for each.

    The accounts are those of the token store (this client), any ``account_ids`` given and,
    with ``include_test_accounts``, Atlassian's two documented test accounts (so every answer
    shows up). ``rehearse_rate_limit`` (emulator only) has the first request answered 429 with
    ``Retry-After``, to show the client waiting and sending the batch again. When the
    connection was not granted ``report:personal-data`` the step is explained and skipped
    (recorded as ``skipped``), unless ``require``: then it fails.
    Accounts reported within the ``Cycle-Period`` are skipped (state in ``.playbook/``).
    """
    from .reporting import report_accounts_cycle
    from .tokens import TokenStore

    store = TokenStore(session.settings.token_store)
    entry = store.get(session.settings.client_id, _opt(account_id))
    if _REPORTING_SCOPE not in entry.tokens.scopes:
        message = (
            f"This connection was not granted {_REPORTING_SCOPE}, so it cannot call the "
            "personal data reporting API."
        )
        hint = (
            "If the app stores personal data: add the Personal data reporting API on the "
            f"console's Permissions tab, add {_REPORTING_SCOPE} in 03-select-scopes (the "
            "merge preset has it), and log in again in 04."
        )
        data = {"status": "skipped", "reason": message, "hint": hint}
        record(record_as, data)
        if require:
            raise PlaybookError(message, hint)
        _markdown(
            f"**Skipped.** {message} {hint} An app that stores no personal data (an "
            "account id alone is not, per Atlassian staff) does not need it."
        )
        return

    stored = [
        e.account_id
        for e in store.list()
        if e.client_id == session.settings.client_id and e.account_id
    ]
    tests = list(TEST_ACCOUNTS) if include_test_accounts else []
    ids = list(dict.fromkeys([*stored, *_words(account_ids), *tests]))
    if not ids:
        data = {"status": "nothing to report", "reported": []}
        _markdown("No stored account ids to report (this connection did not ask for read:me).")
        record(record_as, data)
        return
    # updatedAt: when our copy of each person's data was taken; here, the last login/refresh.
    since = {
        a: (e.updated_at if (e := store.find(session.settings.client_id, a)) else time.time())
        for a in ids
    }
    emulator = session.target.emulator
    seen = len(emulator.request_log) if emulator is not None else 0
    with session.target.api_client(account_id=entry.account_id) as api:
        outcome = report_accounts_cycle(
            _FirstReportRateLimited(api, emulator) if emulator and rehearse_rate_limit else api,
            [(a, time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(since[a]))) for a in ids],
            cycle_state_path=session.state_dir / "reporting-cycle.json",
        )
    data = {
        "status": "reported" if outcome.reported else "skipped within cycle",
        **outcome.to_dict(),
    }
    if emulator is not None:
        answers = [
            status
            for method, path, status in emulator.request_log[seen:]
            if method == "POST" and path == REPORT_PATH
        ]
        data["rate_limited"] = answers.count(429)
        if data["rate_limited"] and outcome.requests:
            _markdown(
                f"The emulator answered **429** {data['rate_limited']} time(s) with "
                "`Retry-After`: the client waited that long and sent the batch again, as "
                "an app must."
            )

    def answer(a: str) -> str:
        if a in outcome.closed:
            return "closed"
        if a in outcome.updated:
            return "updated"
        if a in outcome.skipped:
            return "not sent: reported within the Cycle-Period"
        return "no change (204 or not listed)"

    _table(
        [
            {
                "account": a,
                "which": TEST_ACCOUNTS.get(a, "stored"),
                "answer": answer(a),
                "what to do": outcome.actions.get(a, "nothing"),
            }
            for a in ids
        ],
        ["account", "which", "answer", "what to do"],
    )
    due = outcome.next_due.strftime("%Y-%m-%d %H:%M UTC") if outcome.next_due else "now"
    _markdown(
        f"{outcome.requests} request(s). Cycle-Period `{data['cycle_period']}`: the next "
        f"report of these accounts is due {due}."
    )
    record(record_as, data)
    return


# --- 9. health check ------------------------------------------------------------------------


def health_check(session: Session, *, account_id: str | None = None) -> None:
    """Refresh, verify and record the result for a batch report; raise when unhealthy."""
    result: dict[str, Any] = {"account_id": _opt(account_id)}
    error: PlaybookError | None = None
    try:
        refreshed = connection.refresh(session.target, account_id=_opt(account_id))
        result.update(
            refreshed=True,
            rotated=refreshed.rotated,
            expires_at=refreshed.to_dict()["expires_at"],
            account_id=refreshed.entry.account_id,
        )
        _, report = _verify(session, refreshed.entry.account_id)
        named = report.to_dict()  # which connection: the batch report keys on it
        result.update(verified=report.ok, account=named["account"], site=named["site"],
                      checks={c.name: c.status for c in report.checks})
        if not report.ok:
            error = _failure("Unhealthy: ", report.checks)
    except PlaybookError as caught:
        result.update(refreshed=result.get("refreshed", False), verified=False)
        error = caught
    if error is not None:
        result.update(error=error.message, hint=error.hint)
    result["healthy"] = error is None
    _table([{"item": k, "value": v} for k, v in result.items()], ["item", "value"])
    record("health", result)
    if error is not None:
        raise error
    _markdown("✔ **Healthy**: refreshed (the rotated token is saved) and verified.")
    return
