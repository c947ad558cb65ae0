"""Named scope sets: what ``scopes preset NAME``, the picker's preset menu and notebook 03's
``preset`` parameter offer.

A preset is a profile's documented set (``data/profiles/*.toml``, ``scopes.documented``) or
one of the catalog's own (``minimal``, the playbook's default). It lives apart from both
because it reads both: the catalog (:mod:`.scopes`) knows no partner, and a profile
(:mod:`.profiles`) checks its scopes against the catalog.
"""

from __future__ import annotations

from . import scopes
from .errors import ConfigError
from .profiles import get_profile, profile_names

__all__ = ["preset", "preset_names"]


def preset_names() -> tuple[str, ...]:
    """Every preset's name: the profiles' documented sets first, then the catalog's own."""
    partners = (n for n in profile_names() if get_profile(n).scopes.documented is not None)
    return (*partners, *scopes.catalog_presets())


def preset(name: str, *, offline_access: bool | None = None) -> tuple[str, ...]:
    """The scopes of the preset ``name`` (one of :func:`preset_names`).

    ``offline_access=None`` keeps the preset's own choice (a profile that lists it only under
    ``scopes.optional``, as a sign-in provider does, leaves it out); ``True`` adds it (needed
    for a refresh token), ``False`` removes it.
    """
    names = preset_names()
    own = scopes.catalog_presets()
    if name in profile_names() and name not in names:
        raise ConfigError(
            f"The profile {name!r} documents no scope set: its scopes are yours to choose.",
            f"Start from minimal ({' '.join(own['minimal'])}), then enter the same scopes "
            f"in the partner's dashboard (`atlassian-playbook checklist --profile {name}`).",
        )
    if name not in names:
        close = scopes.close_matches(name, names)
        raise ConfigError(
            f"Unknown scope preset {name!r}.",
            (f"Did you mean {scopes.or_list(close)}? " if close else "")
            + f"Presets: {', '.join(names)}.",
        )
    listed = own[name] if name in own else get_profile(name).scopes.documented
    chosen = [s for s in listed if s != scopes.OFFLINE_ACCESS or offline_access is not False]
    if offline_access and scopes.OFFLINE_ACCESS not in chosen:
        chosen.append(scopes.OFFLINE_ACCESS)
    return tuple(chosen)
