"""What the notebooks call: one function per step of the playbook.

Notebooks hold narrative and one call per step; the logic is here, where it is tested. Every
step displays what a person reads (Markdown, tables, widgets), :func:`~records.record`s what a
test or a batch run asserts on, and raises a :class:`PlaybookError` (message + hint) when the
step failed, so a headless run stops at the right cell with the hint in its output.

Each widget choice has a parameter that makes the same choice headless, through the same
function (for example ``select_scopes(session, preset="merge")`` saves what the picker's Save
button would).
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from . import connection
from ._files import atomic_write_json, read_json
from .callback import is_loopback
from .config import Settings, load_settings, parse_scopes, save_settings
from .errors import PlaybookError
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
    "select_scopes",
    "exchange_tokens",
    "verify_access",
    "refresh_tokens",
    "demonstrate_reuse",
    "lifecycle_timeline",
    "partner_handoff",
    "personal_data_report",
    "health_check",
]

PARTNER_CALLBACKS = {"merge": "https://app.merge.dev/oauth/callback"}
# The reuse leeway (FACTS.md: 10 minutes per the jira.js guide) plus a minute.
_PAST_REUSE_LEEWAY = 11 * 60


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
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(redact(_cell(row.get(c))))}</td>" for c in columns)
        + "</tr>" for row in rows
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


@dataclass
class Session:
    """The workspace a notebook works in, and the Atlassian (real or emulated) it talks to.

    The workspace holds ``.env`` and ``.playbook/`` (checklist progress, the reporting cycle
    and, against the emulator, the token store and the emulator's state).
    """

    workspace: Path
    target: Target
    auto_consent: bool = True
    notes: list[str] = field(default_factory=list)

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
        return self.target.emulator is not None

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
            f"**Callback URL:** `{s.redirect_uri}`",
            f"**Scopes:** `{' '.join(s.scopes)}`",
            f"**Token store:** `{s.token_store}`",
        ]
        return redact("  \n".join(lines))


def _workspace_token_store(workspace: Path, env_file: Path) -> Path | None:
    """Against the emulator, keep tokens in the workspace unless a store was configured."""
    if os.environ.get("ATLASSIAN_TOKEN_STORE"):
        return None
    if env_file.is_file() and dotenv_values(env_file).get("ATLASSIAN_TOKEN_STORE"):
        return None
    return workspace / ".playbook" / "tokens.json"


def start(
    workspace: str | Path = "..",
    *,
    parameters: dict[str, Any] | None = None,
    auto_consent: bool = True,
    quiet: bool = False,
) -> Session:
    """Open the workspace, refuse secret parameters, and connect (starting the emulator if
    no credentials are set). ``parameters`` is the notebook's parameter dict, checked here too
    in case someone ran papermill by hand with ``-p client_secret ...``."""
    workspace = Path(workspace).expanduser().resolve()
    env_file = workspace / ".env"
    settings = load_settings(env_file)
    if parameters:
        check_parameters(parameters, [settings.client_secret.reveal()] if settings.client_secret
                         else [])
    if not settings.has_credentials:
        store = _workspace_token_store(workspace, env_file)
        if store is not None:
            settings = settings.replace(token_store=store)
    session = Session(workspace, connect(settings, auto_consent=auto_consent), auto_consent)
    if not quiet:
        _display(session)
        record("target", session.target.kind)
    return session


# --- 1. overview ---------------------------------------------------------------------------


def overview(session: Session) -> None:
    """Where things stand: credentials, scopes, stored connections."""
    from .tokens import TokenStore, entries_summary

    s = session.settings
    if session.uses_emulator:
        _markdown(
            "No credentials are set in `.env`, so the playbook runs against the **embedded "
            "emulator** of Atlassian on this machine: the same requests, the same errors, no "
            "real account. Put `ATLASSIAN_CLIENT_ID` and `ATLASSIAN_CLIENT_SECRET` in `.env` "
            "(notebook 02 does it for you) to talk to the real Atlassian."
        )
    else:
        _markdown(f"Credentials found: client `{s.client_id}`, secret `{s.client_secret}`.")
    entries = TokenStore(s.token_store).list()
    _markdown(f"**Stored connections:** {len(entries)}")
    if entries:
        _table(entries_summary(entries))
    record("overview", {"target": session.target.kind, "connections": len(entries),
                        "scopes": list(s.scopes)})


# --- 2. create the app ----------------------------------------------------------------------


def _progress_path(session: Session, profile: str) -> Path:
    return session.state_dir / f"checklist-{profile}.json"


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
) -> Any:
    """The console checklist for ``profile``; ticks persist in the workspace.

    ``completed_steps`` (step ids, or ``"all"``) ticks steps headless, as the checkboxes do.
    """
    from .checklist import build_checklist
    from .widgets import ChecklistWidget

    checklist = build_checklist(
        profile, app_name=app_name,
        callback_url=callback_url or (session.settings.redirect_uri if profile == "custom"
                                      else None),
        vendor_name=vendor_name, privacy_policy_url=privacy_policy_url, terms_url=terms_url,
    )
    path = _progress_path(session, profile)
    done: dict[str, str] = read_json(path, default={}) or {}
    ids = [step.id for step in checklist.steps]
    wanted = ids if completed_steps == "all" else list(completed_steps)
    unknown = [sid for sid in wanted if sid not in ids]
    if unknown:
        raise PlaybookError(f"Unknown checklist step(s): {', '.join(unknown)}.",
                            f"Step ids for {profile}: {', '.join(ids)}.")

    def tick(step_id: str, value: bool) -> None:
        current = read_json(path, default={}) or {}
        if value:
            current.setdefault(step_id, time.strftime("%Y-%m-%dT%H:%M:%S"))
        else:
            current.pop(step_id, None)
        atomic_write_json(path, current)

    for sid in wanted:
        tick(sid, True)
        done.setdefault(sid, "now")
    _markdown(checklist.to_markdown())
    _display(ChecklistWidget(checklist, done, tick))
    progress = {"profile": profile, "done": sorted(done), "total": len(ids),
                "callback_url": checklist.callback_url, "scopes": list(checklist.scopes)}
    record("checklist", progress)
    return checklist


def capture_credentials(session: Session, *, profile: str = "custom",
                        callback_url: str | None = None) -> None:
    """Show the credentials in use (masked) and a form to paste new ones into .env.

    Never a notebook parameter: papermill would write it into the executed notebook. For a
    partner profile the callback URL the console was given is saved to .env too.
    """
    from .widgets import CredentialsForm

    uri = callback_url or PARTNER_CALLBACKS.get(profile)
    if uri and uri != session.settings.redirect_uri:
        save_settings({"ATLASSIAN_REDIRECT_URI": uri}, session.env_file)
        session.reload()
        _markdown(f"Saved the callback URL for **{profile}** to `.env`: `{uri}`")

    s = session.settings
    if session.uses_emulator:
        _markdown(
            f"Against the emulator the app already exists: client id `{s.client_id}`, secret "
            f"`{s.client_secret}` (masked). With a real app, paste its Client ID and Secret "
            "below; they go to `.env` (mode 0600), never into this notebook."
        )
    else:
        _markdown(f"Credentials in use: client id `{s.client_id}`, secret `{s.client_secret}`.")

    def save(client_id: str, secret: Secret) -> None:
        save_settings({"ATLASSIAN_CLIENT_ID": client_id, "ATLASSIAN_CLIENT_SECRET": secret},
                      session.env_file)
        session.reload()

    _display(CredentialsForm(None if session.uses_emulator else s.client_id, save))
    record("credentials", {"target": session.target.kind, "client_id": s.client_id,
                           "secret_set": bool(s.client_secret),
                           "redirect_uri": s.redirect_uri})


# --- 3. scopes ------------------------------------------------------------------------------


def select_scopes(session: Session, *, preset: str = "", scopes: str | Sequence[str] = "",
                  console_apis: Iterable[str] | None = None) -> tuple[str, ...]:
    """Choose scopes and save them to .env as ``ATLASSIAN_SCOPES``.

    Headless: ``scopes`` (explicit) wins over ``preset``; with neither, the current setting is
    kept. The picker shown afterwards starts from that choice; its Save button calls the same
    save function.
    """
    from . import scopes as catalog
    from .widgets import ScopePicker

    if scopes:
        chosen = parse_scopes(scopes) if isinstance(scopes, str) else tuple(scopes)
    elif preset:
        chosen = catalog.preset(preset)
    else:
        chosen = session.settings.scopes

    def save(selection: tuple[str, ...]) -> tuple[str, ...]:
        valid = catalog.validate_scopes(selection)
        save_settings({"ATLASSIAN_SCOPES": " ".join(valid)}, session.env_file)
        session.reload()
        return valid

    saved = save(chosen)
    warnings = catalog.check_scopes(saved, console_apis=console_apis)
    _markdown(
        f"Saved **{len(saved)} scopes** to `.env`: `{' '.join(saved)}`\n\n"
        "Add these APIs on the console's Permissions tab: "
        + ", ".join(catalog.console_apis_for(saved))
    )
    for warning in warnings:
        _markdown(f"⚠️ **{warning.message}** {warning.hint}")
    _display(ScopePicker(saved, save, console_apis=console_apis))
    record("scopes", {"scopes": list(saved), "warnings": [w.code for w in warnings]})
    return saved


# --- 4. token exchange ----------------------------------------------------------------------


def exchange_tokens(session: Session, *, consent: str = "auto", timeout: float = 300.0,
                    scopes: str | Sequence[str] = "") -> connection.LoginResult:
    """Authorize, catch the code, exchange it, store the tokens, show a masked summary.

    ``consent="auto"``: against the emulator, consent happens headless; against Atlassian a
    person clicks the link. ``consent="browser"``: always wait for a person (the emulator then
    shows its consent page). Loopback callbacks are caught by a listener; other callbacks
    (Merge, Clerk) are pasted into the box shown.
    """
    from .widgets import AuthorizationPanel

    headless = consent == "auto" and session.uses_emulator
    if session.uses_emulator and session.auto_consent != headless:
        session.auto_consent = headless
        session.reload()
    settings = session.settings
    requested = (parse_scopes(scopes) if isinstance(scopes, str) else tuple(scopes)) or None
    loopback = is_loopback(settings.redirect_uri)
    panel: list[AuthorizationPanel] = []

    def show_url(url: str) -> None:
        if not headless:
            panel.append(AuthorizationPanel(url))
            _display(panel[0])

    if loopback:
        mode = "listen"
    elif headless:
        mode = "paste"  # the headless browser hands over where the emulator redirected it
    else:
        raise PlaybookError(
            f"The callback {settings.redirect_uri} is not a loopback URL, so this notebook "
            "cannot catch the code.",
            "Use `atlassian-playbook login --paste`, or set a loopback callback such as "
            "http://127.0.0.1:8765/callback for this check.",
        )
    result = connection.login(
        session.target, scopes=requested, mode=mode,
        browser="headless" if headless else "none", show_url=show_url, timeout=timeout,
    )
    if panel:
        panel[0].show("✔ Consent received and code exchanged.")
    data = result.to_dict()
    _table([
        {"item": "account", "value": data["account_id"]},
        {"item": "access token", "value": f"{result.entry.tokens.access_token} (masked)"},
        {"item": "expires at", "value": data["expires_at"]},
        {"item": "refresh token", "value": data["refresh_token"]},
        {"item": "granted scopes", "value": data["granted_scopes"]},
        {"item": "sites", "value": [f"{s['name']} ({s['id']})" for s in data["sites"]]},
    ], ["item", "value"])
    for warning in result.warnings:
        _markdown(f"⚠️ {warning}")
    record("login", data)
    return result


# --- 5. verify ------------------------------------------------------------------------------


def verify_access(session: Session, *, account_id: str | None = None,
                  fail_on_error: bool = True):
    """Sites, requested vs granted scopes per site, /me, Jira, Confluence: each ok or failed."""
    report = connection.verify(session.target, account_id=account_id)
    _markdown("### Checks")
    _table([c.to_dict() for c in report.checks], ["status", "name", "detail", "hint"])
    _markdown("### Requested vs granted scopes per site")
    _table(report.scope_table)
    record("verify", report.to_dict())
    if fail_on_error and not report.ok:
        failed = [c for c in report.checks if c.ok is False]
        raise PlaybookError(
            "Verification failed: " + "; ".join(f"{c.name}: {c.detail}" for c in failed),
            failed[0].hint,
        )
    return report


# --- 6. refresh and lifecycle ---------------------------------------------------------------


def refresh_tokens(session: Session, *, account_id: str | None = None):
    """Refresh now; show the rotation (masked fingerprints) and that the new token was saved."""
    result = connection.refresh(session.target, account_id=account_id)
    _table([
        {"refresh token": "before", "fingerprint": result.previous_refresh_token},
        {"refresh token": "after (saved to the store)", "fingerprint": result.new_refresh_token},
    ])
    _markdown(
        f"Rotated: **{result.rotated}**. The access token now expires at "
        f"{result.to_dict()['expires_at']}."
    )
    record("refresh", result.to_dict())
    return result


def demonstrate_reuse(session: Session, refreshed) -> dict[str, Any]:
    """Show what reusing a rotated refresh token does (emulator only; never on a real grant).

    The emulator's clock moves past the reuse leeway, the old token is presented, Atlassian's
    theft rule revokes the whole grant, and a new consent restores it.
    """
    from .errors import ReauthorizationRequired
    from .oauth import OAuthClient

    if not session.uses_emulator:
        _markdown("Skipped against the real Atlassian: reusing a rotated refresh token would "
                  "revoke this grant for real.")
        outcome = {"demonstrated": False}
        record("reuse", outcome)
        return outcome
    session.target.emulator.advance_clock(_PAST_REUSE_LEEWAY)
    outcome: dict[str, Any] = {"demonstrated": True}
    with OAuthClient(session.settings) as oauth:
        try:
            oauth.refresh(refreshed.previous_tokens.refresh_token)
            outcome["old_token_rejected"] = False
        except ReauthorizationRequired as error:
            outcome["old_token_rejected"] = True
            _markdown(f"Old refresh token presented after the leeway: **rejected** — "
                      f"{error.message}")
        try:
            oauth.refresh(refreshed.entry.tokens.refresh_token)
            outcome["grant_revoked"] = False
        except ReauthorizationRequired as error:
            outcome["grant_revoked"] = True
            _markdown("And the *newest* refresh token is now rejected too: the reuse revoked the "
                      f"whole grant. Only a new consent fixes it. Hint: {error.hint}")
    record("reuse", outcome)
    return outcome


def lifecycle_timeline(session: Session, *, account_id: str | None = None) -> list[dict]:
    """When each credential stops working, and how a user revokes access."""
    from .tokens import TokenStore

    entry = TokenStore(session.settings.token_store).get(session.settings.client_id, account_id)
    stamp = lambda t: time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))  # noqa: E731
    rows = [
        {"what": "access token", "until": stamp(entry.tokens.expires_at),
         "why": "1 hour after issue; expired tokens get 401 (enforced since 2024-05-14)"},
        {"what": "refresh token (idle)", "until": stamp(entry.updated_at + 90 * 86400),
         "why": "90 days without use; every refresh resets it"},
        {"what": "refresh token (absolute)", "until": stamp(entry.updated_at + 365 * 86400),
         "why": "365 days, announced in 2022 (unconfirmed as in force)"},
        {"what": "rotated refresh token", "until": "10 minutes after rotation",
         "why": "reuse leeway; reuse after it revokes the whole grant"},
    ]
    _table(rows)
    _markdown("A user revokes access in their Atlassian account: **Profile → Connected apps** "
              "(https://id.atlassian.com/manage-profile/apps). There is no revocation endpoint "
              "for 3LO apps; developers rotate the client secret in the console.")
    record("timeline", rows)
    return rows


# --- 7. partner handoff ---------------------------------------------------------------------


def partner_handoff(session: Session, profile: str = "merge", *,
                    callback_url: str | None = None, extra_scopes: str = "") -> dict[str, Any]:
    """The values to paste into the partner, the secret masked with reveal-to-copy, and a final
    check that the callback URL matches the profile."""
    from .widgets import SecretReveal

    s = session.settings
    expected = callback_url or PARTNER_CALLBACKS.get(profile) or s.redirect_uri
    if profile == "merge":
        labels = ("OAuth Client Id", "OAuth Client Secret", "OAuth Redirect URI")
    elif profile == "clerk":
        labels = ("Client ID", "Client Secret", "Authorized redirect URI")
    else:
        labels = ("Client ID", "Client Secret", "Callback URL")
    rows = [{"field": labels[0], "value": s.client_id},
            {"field": labels[1], "value": f"{s.client_secret} (masked — use Reveal to copy)"},
            {"field": labels[2], "value": expected}]
    if profile == "clerk":
        extra = " ".join(parse_scopes(extra_scopes)) if extra_scopes else ""
        rows.append({"field": "Scopes (extra, also requested in Clerk)", "value": extra or "—"})
    _table(rows, ["field", "value"])
    _display(SecretReveal(labels[1], s.client_secret))
    matches = s.redirect_uri == expected
    check = {"profile": profile, "expected_callback": expected,
             "configured_callback": s.redirect_uri, "callback_matches": matches}
    record("handoff", {"fields": [r["field"] for r in rows], **check})
    if not matches:
        raise PlaybookError(
            f"The callback URL in .env ({s.redirect_uri}) is not {profile}'s ({expected}).",
            f"Set {expected} on the console's Authorization tab and as ATLASSIAN_REDIRECT_URI; "
            "scheme, host, port, path and trailing slash all count.",
        )
    _markdown(f"✔ The callback URL matches **{profile}**.")
    return check


# --- 8. personal data reporting -------------------------------------------------------------


def personal_data_report(session: Session, *, account_ids: Sequence[str] = (),
                         account_id: str | None = None) -> dict[str, Any]:
    """One reporting cycle for the stored account ids (and any given), with the action for each."""
    from .reporting import report_accounts_cycle
    from .tokens import TokenStore

    store = TokenStore(session.settings.token_store)
    stored = [e.account_id for e in store.list()
              if e.client_id == session.settings.client_id and e.account_id]
    ids = list(dict.fromkeys([*stored, *account_ids]))
    # The account's profile as we stored it: here, when we logged in.
    entry = store.get(session.settings.client_id, account_id)
    since = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(entry.updated_at - 86400 * 30))
    with connection.api_client(session.target, account_id=entry.account_id) as api:
        outcome = report_accounts_cycle(
            api, [(a, since) for a in ids],
            cycle_state_path=session.state_dir / "reporting-cycle.json",
        )
    data = outcome.to_dict()
    _table([{"account": a, "answer": "closed" if a in outcome.closed else
             "updated" if a in outcome.updated else
             "skipped (reported this cycle)" if a in outcome.skipped else "no change",
             "what to do": outcome.actions.get(a, "nothing")} for a in ids])
    _markdown(f"Cycle period: `{data['cycle_period']}`; next report due: {data['next_due']}.")
    record("personal_data", data)
    return data


# --- 9. health check ------------------------------------------------------------------------


def health_check(session: Session, *, account_id: str | None = None) -> dict[str, Any]:
    """Refresh, verify and record the result for a batch report; raise when unhealthy."""
    result: dict[str, Any] = {"account_id": account_id}
    try:
        refreshed = connection.refresh(session.target, account_id=account_id)
        result.update(refreshed=True, rotated=refreshed.rotated,
                      expires_at=refreshed.to_dict()["expires_at"],
                      account_id=refreshed.entry.account_id)
        report = connection.verify(session.target, account_id=refreshed.entry.account_id)
        result.update(verified=report.ok, checks={c.name: c.status for c in report.checks})
        failed = [c for c in report.checks if c.ok is False]
        error = PlaybookError(
            "Unhealthy: " + "; ".join(f"{c.name}: {c.detail}" for c in failed),
            failed[0].hint) if failed else None
    except PlaybookError as caught:
        result.update(refreshed=result.get("refreshed", False), verified=False,
                      error=caught.message, hint=caught.hint)
        error = caught
    result["healthy"] = error is None
    _table([{"item": k, "value": v} for k, v in result.items()], ["item", "value"])
    record("health", result)
    if error is not None:
        raise error
    return result

