"""Notebook 03: the scopes the app asks for, saved to ``.env`` as ``ATLASSIAN_SCOPES``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .. import advisor, presets
from .. import scopes as catalog
from ..config import parse_scopes, save_settings
from ..errors import PlaybookError
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
    endpoints: str | Sequence[str] | None = None,
    advised_kind: str = "classic",
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

    ``endpoints`` (the calls the integration makes, one per line or ``;``-separated, as
    ``"GET /rest/api/3/issue/{issueIdOrKey}"``) asks the scope advisor: the smallest
    ``advised_kind`` set (``classic`` or ``granular``) covering them joins the selection, and a
    table shows what each endpoint needs. The advisor widget does the same interactively.
    """
    from ..widgets import ScopeAdvisorPanel, ScopePicker

    if advised_kind not in catalog.KINDS:
        raise PlaybookError(
            f"advised_kind is {advised_kind!r}.",
            f"Set advised_kind to one of: {', '.join(catalog.KINDS)}.",
        )
    listed = advisor.split_endpoints(endpoints) if isinstance(endpoints, str) else \
        list(endpoints or ())
    advice = advisor.advise(listed) if listed else None

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
    advised = {s.kind: s.scopes for s in advice.sets} if advice else {}
    chosen = tuple(dict.fromkeys((*chosen, *advised.get(advised_kind, ()))))

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
            "advised": (
                {"kind": advised_kind, "scopes": list(advised[advised_kind]),
                 "endpoints": [e.to_dict() for e in advice.endpoints]}
                if advice else None
            ),
        },
    )
    if advice:
        added = advised[advised_kind]
        result.say(
            f"### What your endpoints need\n\nThe smallest **{advised_kind}** set covering the "
            f"{len(advice.endpoints)} endpoint(s) joined the selection: "
            + (f"`{' '.join(added)}`." if added else "nothing to add.")
        ).table(advice.rows(), ["endpoint", "matches", "classic", "granular", "note"])
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
    def add_advised(scopes: Sequence[str]) -> tuple[str, ...]:
        return save((*session.settings.scopes, *scopes))

    picker = ScopePicker(saved, save, console_apis=apis)
    panel = ScopeAdvisorPanel(add_advised, endpoints=listed, kind=advised_kind)
    return result.control(picker).say(
        "**Scope advisor**: pick or paste the endpoints your integration calls; "
        "**Add to .env** joins the smallest set of the kind chosen to `ATLASSIAN_SCOPES` "
        "(re-run this cell to see it in the picker)."
    ).control(panel)
