"""Notebook 07: the values to paste into the partner, and the last check of the callback.

On a profile without a partner (``custom``: the playbook is the client) there is nothing to
hand off, and the step says so instead of showing a handoff page.
"""

from __future__ import annotations

from ..callback import is_loopback
from ..errors import PlaybookError
from ..profiles import Profile
from . import partners
from ._results import InteractiveResult, step
from .session import Session, opt

__all__ = ["partner_handoff"]


@step()
def partner_handoff(
    session: Session,
    profile: str | None = None,
    *,
    profile_file: str | None = None,
    callback_url: str | None = None,
    extra_scopes: str | None = None,
) -> InteractiveResult:
    """The exact values to paste into the partner, the secret masked with reveal-to-copy, and a
    final check that the callback URL in .env is the profile's (and, against the emulator,
    registered on the app). Without a partner, only what that means."""
    from ..widgets import SecretReveal

    profile = session.resolve_profile(profile, profile_file)
    s = session.settings
    if profile.partner is None:
        return _no_partner(session, profile)
    page = partners.handoff(profile, s, opt(callback_url), opt(extra_scopes))
    expected = page.expected_callback
    matches = s.redirect_uri == expected
    registered = None
    if session.uses_emulator:
        registered = s.redirect_uri in session.target.emulator.default_client.redirect_uris
    result = InteractiveResult(
        "handoff",
        {
            "partner": profile.partner,
            "fields": [f["field"] for f in page.fields],
            "client_id": s.client_id,
            "extra_scopes": page.extra_scopes,
            "profile": profile.name,
            "expected_callback": expected,
            "configured_callback": s.redirect_uri,
            "callback_matches": matches,
            "registered_on_app": registered,
        },
    )
    result.say(f"Paste these into **{page.where}**, copying each value as shown:")
    result.table(page.fields, ["field", "value"])
    result.control(SecretReveal(page.secret_label, s.client_secret))
    result.say(
        "**As plain text**, for a ticket to whoever enters them (the secret left out: it goes "
        "from the console straight into the partner's form):\n\n```text\n"
        + "\n".join(
            f"{f['field']}: "
            + (
                "(not here: copy it from the console's Settings tab)"
                if f["field"] == page.secret_label
                else f["value"]
            )  # fmt: skip
            for f in page.fields
        )
        + "\n```"
    )
    if not matches:
        result.error = PlaybookError(
            f"The callback URL in .env ({s.redirect_uri}) is not {profile.name}'s ({expected}).",
            f"Set {expected} on the console's Authorization tab and as ATLASSIAN_REDIRECT_URI "
            "(notebook 02 does it); scheme, host, port, path and trailing slash all count.",
        )
    elif page.needs_public_callback and is_loopback(expected):
        result.error = PlaybookError(
            f"The callback for {profile.name} is still the loopback {expected}.",
            "Run 02-create-app with profile and callback_url set to the partner's redirect URI.",
        )
    else:
        result.say(
            f"✔ The callback URL `{expected}` is {profile.name}'s, in `.env`"
            + (" and on the app's Authorization tab." if registered else ".")
        )
    return result


def _no_partner(session: Session, profile: Profile) -> InteractiveResult:
    """``custom`` and any profile without a partner: the playbook itself is the client."""
    s = session.settings
    return InteractiveResult(
        "handoff",
        {
            "partner": None,
            "fields": [],
            "client_id": s.client_id,
            "extra_scopes": [],
            "profile": profile.name,
            "expected_callback": s.redirect_uri,
            "configured_callback": s.redirect_uri,
            "callback_matches": True,
            "registered_on_app": (
                s.redirect_uri in session.target.emulator.default_client.redirect_uris
                if session.uses_emulator
                else None
            ),
        },
    ).say(
        f"The profile **{profile.name}** has no partner: your own integration is the client, "
        "so there is nothing to hand off. Its Client ID and Secret stay in `.env`, and its "
        f"callback is `.env`'s `{s.redirect_uri}`, the one on the console's Authorization tab. "
        "Working through a partner? Choose its profile in notebook 02 (`atlassian-playbook "
        "profiles list` names them) and run this notebook again."
    )
