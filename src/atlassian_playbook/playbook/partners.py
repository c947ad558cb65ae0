"""What differs per profile, read from the profile registry (``data/profiles/*.toml``).

Every step that depends on who the app is for asks here: which callback the profile needs,
which scopes it starts from, and which fields its handoff page names. The answers are the
profile's data (:mod:`atlassian_playbook.profiles`); nothing in the playbook names a partner,
so adding one is a data file, and a user's own profile file works the same way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from dotenv import dotenv_values

from ..config import DEFAULT_SCOPES, Settings, parse_scopes
from ..profiles import Profile

__all__ = [
    "callback_for",
    "checklist_inputs",
    "chosen_scopes",
    "preset_scopes",
    "Handoff",
    "handoff",
    "missing_callback_note",
]


def callback_for(profile: Profile, settings: Settings, given: str | None) -> str | None:
    """The callback a profile needs: the one given, the partner's fixed one, the one the
    partner shows (a non-loopback callback in .env was set for it), or None when not known
    yet or the callback is the playbook's own."""
    return profile.callback.expected(given, settings.redirect_uri)


def chosen_scopes(settings: Settings) -> tuple[str, ...] | None:
    """The scopes chosen in this workspace (notebook 03, or by hand): ``ATLASSIAN_SCOPES`` when
    the environment or .env sets it; ``None`` when nothing was chosen yet.

    The settings example's own line (what ``atlassian-playbook init`` copies into a new .env)
    is no choice: a fresh workspace shows the profile's set until 03 saves one.
    """
    value = os.environ.get("ATLASSIAN_SCOPES")
    if value is None and settings.env_file is not None and settings.env_file.is_file():
        value = dotenv_values(settings.env_file).get("ATLASSIAN_SCOPES")
    if not (value or "").strip() or parse_scopes(value) == tuple(DEFAULT_SCOPES.split()):
        return None
    return settings.scopes


def checklist_inputs(
    profile: Profile, settings: Settings, given: str | None
) -> tuple[str | None, Sequence[str] | None]:
    """(callback, scopes) for the console checklist. The callback: .env's when it is yours, the
    partner's once known. The scopes: those chosen in 03 (:func:`chosen_scopes`) when there
    are any; else .env's when they are yours, and the profile's set (``None``) for a partner
    that documents one."""
    if not profile.callback.belongs_to_partner:
        callback = given or settings.redirect_uri
    else:
        callback = callback_for(profile, settings, given)
    scopes = chosen_scopes(settings)
    if scopes is None and profile.scopes.documented is None:
        scopes = settings.scopes
    return callback, scopes


def preset_scopes(profile: Profile) -> tuple[str, ...] | None:
    """The scopes a profile starts from (the partner's documented set), or None to keep
    .env's scopes (they are yours to choose)."""
    return profile.scopes.documented


@dataclass
class Handoff:
    """What to paste into the partner: where, the fields in its words, and the checks."""

    where: str
    fields: list[dict[str, str]]
    secret_label: str
    expected_callback: str
    extra_scopes: list[str]
    needs_public_callback: bool  # a partner's callback is never this machine's loopback


def handoff(
    profile: Profile, settings: Settings, callback_url: str | None, extra_scopes: str | None
) -> Handoff:
    """The handoff page for ``profile``: its field names, the callback it expects and, where
    the partner takes scopes of its own, the extra scopes to enter there too (default: .env's
    beyond the profile's required ones, an optional one only when the profile asks for it)."""
    expected = callback_for(profile, settings, callback_url) or settings.redirect_uri
    label = profile.handoff.label
    secret = label("client_secret")
    fields = [
        {"field": label("client_id"), "value": settings.client_id},
        {"field": secret, "value": f"{settings.client_secret} (masked: use Reveal to copy)"},
        {"field": label("redirect_uri"), "value": expected},
    ]
    extra: list[str] = []
    if "extra_scopes" in profile.handoff_fields:
        extra = (list(parse_scopes(extra_scopes)) if extra_scopes
                 else list(profile.scopes.for_partner(settings.scopes)))
        required = " ".join(profile.scopes.required)
        fields.append(
            {
                "field": f"{label('extra_scopes')} (extra; enter them in {profile.partner} too)",
                "value": " ".join(extra) or (f"— ({required} only)" if required else "—"),
            }
        )
    return Handoff(profile.handoff.destination, fields, secret, expected, extra,
                   profile.callback.belongs_to_partner)


def missing_callback_note(profile: Profile) -> str | None:
    """What to say when the profile's callback is not known yet (one the partner shows)."""
    if profile.callback.rule != "partner-shows":
        return None
    return (
        f"⚠️ {profile.partner}'s callback is **{profile.callback.shown_as}**. Pass it as "
        "`callback_url` (parameters cell) so it is saved to `.env`; until then `.env` keeps "
        "the loopback callback."
    )

