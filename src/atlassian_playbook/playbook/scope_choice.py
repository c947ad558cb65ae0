"""Notebook 03: the scopes the app asks for, saved to ``.env`` as ``ATLASSIAN_SCOPES``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .. import presets
from .. import scopes as catalog
from ..config import parse_scopes, save_settings
from . import partners
from ._results import InteractiveResult, step
from .session import Session, opt

__all__ = ["select_scopes"]


@step()
def select_scopes(
    session: Session,
    *,
    preset: str | None = None,
    scopes: str | Sequence[str] | None = None,
    offline_access: bool | None = True,
    console_apis: str | Iterable[str] | None = None,
) -> InteractiveResult:
    """Choose scopes and save them to .env as ``ATLASSIAN_SCOPES``.

    Headless: ``scopes`` (explicit, space-separated) wins over ``preset``; with neither, the
    profile's documented set or, when the scopes are yours (``custom``), the current setting.
    ``offline_access`` True adds it (a refresh token), False removes it, None keeps the choice
    as it is.
    ``console_apis`` (the APIs added on the console's Permissions tab, comma-separated, e.g.
    ``"identity, jira"`` or ``"User identity API, Jira API"``)
    turns on the check that every scope's API is added. Unknown scopes raise with "did you
    mean". The picker shown afterwards starts from the saved choice; its Save button calls the
    same save function.
    """
    from ..widgets import ScopePicker

    if isinstance(console_apis, str):  # comma-separated: console names contain spaces
        console_apis = [part.strip() for part in console_apis.split(",") if part.strip()]
    apis = list(console_apis) if console_apis else None
    if opt(scopes):
        chosen = parse_scopes(scopes) if isinstance(scopes, str) else tuple(scopes)
    elif opt(preset):
        chosen = presets.preset(preset)
    else:
        chosen = partners.preset_scopes(session.profile) or session.settings.scopes
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
    result = InteractiveResult(
        "scopes",
        {
            "scopes": list(saved),
            "warnings": [w.code for w in warnings],
            "console_apis": needed,
            "offline_access": catalog.OFFLINE_ACCESS in saved,
        },
    )
    result.say(
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
        result.say(f"⚠️ **{warning.message}** {warning.hint}")
    return result.control(ScopePicker(saved, save, console_apis=apis))
