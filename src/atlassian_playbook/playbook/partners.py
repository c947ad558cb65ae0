"""What differs per profile (merge, clerk, custom): the playbook's partner rules, in one place.

Every step that depends on who the app is for asks here: which callback the profile needs,
which scope preset it starts from, and which fields its handoff page names. Nothing else in
the playbook names a partner, so these functions are the seam where a registry of partner
profiles (one data file per partner) plugs in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..callback import is_loopback
from ..checklist import MERGE_CALLBACK_URL, PROFILES
from ..config import Settings, parse_scopes
from ..errors import PlaybookError

__all__ = [
    "is_profile",
    "check_profile",
    "callback_for",
    "checklist_inputs",
    "scope_preset",
    "Handoff",
    "handoff",
    "missing_callback_note",
]

# Which scope preset a profile starts from; ``custom`` keeps what .env asks for.
_PRESETS = {"merge": "merge", "clerk": "clerk"}


def is_profile(name: object) -> bool:
    return name in PROFILES


def check_profile(name: str) -> None:
    if not is_profile(name):
        raise PlaybookError(f"Unknown profile {name!r}.", f"Use one of: {', '.join(PROFILES)}.")


def callback_for(profile: str, settings: Settings, given: str | None) -> str | None:
    """The callback a profile needs: the one given, Merge's fixed one, the URL Clerk shows
    (a non-loopback callback in .env was set for it), or None when not known yet."""
    if given:
        return given
    if profile == "merge":
        return MERGE_CALLBACK_URL
    if profile == "clerk" and not is_loopback(settings.redirect_uri):
        return settings.redirect_uri
    return None


def checklist_inputs(
    profile: str, settings: Settings, given: str | None
) -> tuple[str | None, Sequence[str] | None]:
    """(callback, scopes) for the console checklist: ``custom`` lists .env's own; a partner's
    checklist brings its own defaults (Clerk's callback only once known)."""
    if profile == "custom":
        return given or settings.redirect_uri, settings.scopes
    if profile == "clerk":
        return callback_for(profile, settings, given), None
    return given, None


def scope_preset(profile: str) -> str | None:
    """The scope preset a profile starts from, or None to keep .env's scopes."""
    return _PRESETS.get(profile)


@dataclass
class Handoff:
    """What to paste into the partner: where, the fields in its words, and the checks."""

    where: str
    fields: list[dict[str, str]]
    secret_label: str
    expected_callback: str
    extra_scopes: list[str]
    needs_public_callback: bool  # a partner's callback is never this machine's loopback


_LABELS = {
    "merge": ("OAuth Client Id", "OAuth Client Secret", "OAuth Redirect URI"),
    "clerk": ("Client ID", "Client Secret", "Authorized redirect URI"),
    "custom": ("Client ID", "Client Secret", "Callback URL"),
}
_WHERE = {
    "merge": "Merge's partner credentials page",
    "clerk": "Clerk's Atlassian social connection (custom credentials)",
    "custom": "your integration's settings",
}


def handoff(
    profile: str, settings: Settings, callback_url: str | None, extra_scopes: str | None
) -> Handoff:
    """The handoff page for ``profile``: its field names, the callback it expects and, for
    Clerk, the extra scopes to enter there too (default: .env's other than read:me)."""
    expected = callback_for(profile, settings, callback_url) or settings.redirect_uri
    client_id, secret, callback = _LABELS[profile]
    fields = [
        {"field": client_id, "value": settings.client_id},
        {"field": secret, "value": f"{settings.client_secret} (masked: use Reveal to copy)"},
        {"field": callback, "value": expected},
    ]
    extra: list[str] = []
    if profile == "clerk":
        extra = (
            list(parse_scopes(extra_scopes))
            if extra_scopes
            else [x for x in settings.scopes if x != "read:me"]
        )
        fields.append(
            {
                "field": "Scopes (extra; enter them in Clerk too)",
                "value": " ".join(extra) or "— (read:me only)",
            }
        )
    return Handoff(_WHERE[profile], fields, secret, expected, extra, profile != "custom")


def missing_callback_note(profile: str) -> str | None:
    """What to say when the profile's callback is not known yet (only Clerk's can be)."""
    if profile != "clerk":
        return None
    return (
        "⚠️ Clerk's callback is the **Authorized redirect URI Clerk shows** for your "
        "production instance. Pass it as `callback_url` (parameters cell) so it is saved to "
        "`.env`; until then `.env` keeps the loopback callback."
    )
