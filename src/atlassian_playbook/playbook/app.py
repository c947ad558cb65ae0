"""Notebook 02: the app on the developer console: its checklist, its credentials, its callback.

Each widget here has a headless twin through the same function: ``completed_steps`` ticks the
checklist as its checkboxes do, and :func:`save_credentials` is the credentials form's Save.
The client secret is never a parameter (papermill writes parameters into the executed
notebook): it goes from the form, ``.env`` or the environment straight to ``.env``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from .._files import atomic_write_json, read_json
from ..checklist import build_checklist, is_placeholder
from ..config import save_settings
from ..errors import PlaybookError
from ..profiles import Profile
from ..redact import Secret
from . import partners
from ._results import InteractiveResult, StepResult, step
from .session import Session, opt, words

__all__ = ["show_checklist", "save_credentials", "capture_credentials", "register_callback"]


def _progress_path(session: Session, profile: Profile) -> Path:
    return session.state_dir / f"checklist-{profile.name}.json"


@step()
def show_checklist(
    session: Session,
    profile: str = "custom",
    *,
    profile_file: str | None = None,
    completed_steps: Iterable[str] | str = (),
    app_name: str | None = None,
    callback_url: str | None = None,
    vendor_name: str | None = None,
    privacy_policy_url: str | None = None,
    terms_url: str | None = None,
    support_contact: str | None = None,
) -> InteractiveResult:
    """The console checklist for ``profile`` (a name from the registry, or the user's own
    ``profile_file``, which wins) with the exact values; ticks persist in the workspace, and
    the profile is remembered for the later notebooks.

    The Permissions steps list the scopes chosen in notebook 03 once it ran (``.env``'s
    ``ATLASSIAN_SCOPES``), saying so when they differ from the profile's own set; before, the
    profile's. The values also print as a plain block to paste into a ticket (no secret: the
    checklist holds none).

    ``completed_steps`` (step ids separated by spaces or commas, or ``"all"``) ticks steps
    headless through the same function the checkboxes call.
    """
    from ..widgets import ChecklistWidget

    profile = session.resolve_profile(profile, profile_file)
    callback, scopes = partners.checklist_inputs(profile, session.settings, opt(callback_url))
    checklist = build_checklist(
        profile,
        app_name=opt(app_name),
        callback_url=callback,
        scopes=scopes,
        vendor_name=opt(vendor_name),
        privacy_policy_url=opt(privacy_policy_url),
        terms_url=opt(terms_url),
        support_contact=opt(support_contact),
    )
    session.remember_profile(profile, profile_file)
    path = _progress_path(session, profile)
    ids = [s.id for s in checklist.steps]
    wanted = ids if completed_steps == "all" else words(completed_steps)
    unknown = [sid for sid in wanted if sid not in ids]
    if unknown:
        raise PlaybookError(
            f"Unknown checklist step(s) for {profile.name}: {', '.join(unknown)}.",
            f"Step ids for {profile.name}: {', '.join(ids)} (or 'all').",
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
    open_required = [s.id for s in checklist.steps if s.required and s.id not in done]
    result = InteractiveResult(
        "checklist",
        {
            "profile": profile.name,
            "done": [i for i in ids if i in done],
            "total": len(ids),
            "open_required": open_required,
            "callback_url": checklist.callback_url,
            "scopes": list(checklist.scopes),
            "console_apis": list(checklist.console_apis),
            "placeholders": [f"{s}:{f}" for s, f in checklist.placeholders],
            "policy": checklist.policy_note,
            "scopes_from": "ATLASSIAN_SCOPES" if scopes is not None else "profile",
        },
    )
    result.say(_scopes_note(profile, checklist.scopes, chosen=scopes is not None))
    # The Markdown copy shows the ticks too, for executed notebooks and HTML renders (where
    # the checkboxes' widget state is not kept); each step's line ends with <!-- step id -->.
    result.say(
        "\n".join(
            line.replace("- [ ]", "- [x]", 1)
            if (m := re.search(r"<!-- (\S+) -->$", line)) and m.group(1) in done
            else line
            for line in checklist.to_markdown().splitlines()
        )
    )
    result.control(ChecklistWidget(checklist, done, tick))
    result.say(
        f"**Progress:** {len(result.data['done'])} of {len(ids)} steps ticked"
        + (f"; still to do: {', '.join(open_required)}." if open_required else "; all done.")
        + f" Saved in `{path}`."
    )
    return result.say(
        "**The values as plain text**, to paste into a ticket or a chat (no secret in it; "
        "`atlassian-playbook checklist --plain` prints the same):\n\n```text\n"
        + checklist.to_plain()
        + "```"
    )


def _scopes_note(profile: Profile, scopes: Sequence[str], *, chosen: bool) -> str:
    """Where the Permissions steps' scopes come from, and how they differ from the profile's
    set (an optional scope such as a sign-in's offline_access is no difference: it is named)."""
    listed = " ".join(f"`{s}`" for s in scopes)
    own = profile.scopes.documented
    whose = f"{profile.partner}'s set" if profile.partner else "the profile's set"
    if not chosen:
        source = whose if own is not None else "`.env`'s `ATLASSIAN_SCOPES`"
        return f"**Scopes** ({source}; notebook 03 can change them): {listed}"
    note = f"**Scopes** (chosen in notebook 03: `.env`'s `ATLASSIAN_SCOPES`): {listed}"
    if own is None:
        return note
    optional = [s for s in scopes if s in profile.scopes.optional and s not in own]
    added = [s for s in scopes if s not in own and s not in optional]
    missing = [s for s in own if s not in scopes]
    if optional:
        note += (
            f"\n\n{' '.join(f'`{s}`' for s in optional)}: optional here "
            f"({profile.scopes.offline_access_via})."
        )
    if added or missing:
        note += (
            f"\n\n⚠️ These differ from {whose}:"
            + (f" added {' '.join(f'`{s}`' for s in added)};" if added else "")
            + (f" missing {' '.join(f'`{s}`' for s in missing)};" if missing else "")
            + " run notebook 03 with `preset` and `scopes` empty to go back to it."
        )
    return note


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


@step()
def capture_credentials(
    session: Session,
    *,
    profile: str | None = None,
    profile_file: str | None = None,
    callback_url: str | None = None,
) -> InteractiveResult:
    """Save the profile's callback URL to .env, show the credentials in use (masked) and a
    form that writes new ones to .env.

    The secret is never a notebook parameter: papermill would write it into the executed
    notebook. Against the emulator the app already exists and nothing needs pasting.
    """
    from ..widgets import CredentialsForm

    profile = session.resolve_profile(profile, profile_file)
    uri = partners.callback_for(profile, session.settings, opt(callback_url))
    if uri and is_placeholder(uri):
        uri = None
    said: list[str] = []
    if uri and uri != session.settings.redirect_uri:
        save_settings({"ATLASSIAN_REDIRECT_URI": uri}, session.env_file)
        session.reload()
        said.append(f"Saved the callback URL for **{profile.name}** to `.env`: `{uri}`")
    elif uri is None and (note := partners.missing_callback_note(profile)):
        said.append(note)
    s = session.settings
    result = InteractiveResult(
        "credentials",
        {
            "target": session.target.kind,
            "profile": profile.name,
            "client_id": s.client_id,
            "secret_set": bool(s.client_secret),
            "redirect_uri": s.redirect_uri,
        },
        said,
    )
    if session.uses_emulator:
        result.say(
            f"Against the emulator the app already exists: client id `{s.client_id}`, secret "
            f"`{s.client_secret}` (masked). With a real app, paste its Client ID and Secret "
            "below: they go to `.env` (mode 0600), never into this notebook, and the next "
            "notebooks talk to the real Atlassian."
        )
    else:
        result.say(
            f"Credentials in use: client id `{s.client_id}`, secret `{s.client_secret}` "
            "(masked). Paste new ones below to replace them."
        )
    return result.control(
        CredentialsForm(
            None if session.uses_emulator else s.client_id,
            lambda client_id, secret: save_credentials(session, client_id, secret),
        )
    )


@step()
def register_callback(session: Session) -> StepResult:
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
        return StepResult(
            "callback_registration",
            {"callback_url": uri, "target": session.target.kind, "registered": None},
        ).say(
            f"On the console's **Authorization** tab, OAuth 2.0 (3LO), the callback URL must "
            f"read exactly `{uri}`: compare scheme, host, port, path and the trailing slash "
            "character by character. This notebook cannot read the console, so check it there."
        )
    emulator = session.target.emulator
    already = uri in emulator.default_client.redirect_uris
    client = emulator.add_callback_url(uri)
    result = StepResult(
        "callback_registration",
        {"callback_url": uri, "target": "emulator", "registered": list(client.redirect_uris)},
    )
    if already:
        result.say(
            f"✔ `{uri}` is already a callback URL on the emulated app's **Authorization** tab."
        )
    else:
        result.say(
            f"✔ Added `{uri}` on the emulated app's **Authorization** tab, as you would press "
            "**Add** on the console. (From a terminal: `atlassian-playbook emulator callbacks "
            "add URL`.)"
        )
    return result.table([{"callback URL on the app": u} for u in client.redirect_uris])
