"""The profile registry: every integration profile (a partner such as a unified-API vendor or an
auth provider, or ``custom`` for an organisation's own integration) as one TOML data file.

A partner's facts used to be code spread over many modules: its callback URL, its scope set,
its field labels, which checklist warnings its documented set makes moot. Here each profile is
one file under ``data/profiles/`` (bundled) or a user's own file (``--profile-file``, the
notebooks' ``profile_file`` parameter), validated once when read, so adding a partner is one
data file and the checklist, scopes, CLI and playbook read it generically.

Where the public facts stop (a partner's field labels, whether it stores personal data), the
file leaves the key out or says ``"unknown"``, and the checklist turns that into an explicit
"check in the partner's dashboard" instruction: a profile never carries a guessed value.
The schema is described in ``docs/PROFILES.md``; ``atlassian-playbook profiles show custom``
prints a complete example.
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path

from ..errors import ProfileError
from ._model import (
    CALLBACK_RULES,
    DEFAULT_PROFILE,
    FLOWS,
    HANDOFF_FIELDS,
    SLUG,
    TABS,
    Profile,
    ProfileCallback,
    ProfileHandoff,
    ProfileScopes,
    ProfileStep,
    is_loopback_host,
)
from ._parse import parse

_DATA_PACKAGE = "atlassian_playbook"
_DATA_DIR = "data/profiles"

__all__ = [
    "DEFAULT_PROFILE",
    "CALLBACK_RULES",
    "FLOWS",
    "HANDOFF_FIELDS",
    "TABS",
    "Profile",
    "ProfileScopes",
    "ProfileCallback",
    "ProfileHandoff",
    "ProfileStep",
    "profile_names",
    "get_profile",
    "load_profile",
    "resolve_profile",
    "is_loopback_host",
]


def _data_dir():
    from importlib.resources import files

    return files(_DATA_PACKAGE).joinpath(_DATA_DIR)


@functools.cache
def profile_names() -> tuple[str, ...]:
    """The bundled profiles' names, sorted (the file names; nothing is parsed)."""
    return tuple(
        sorted(p.name[: -len(".toml")] for p in _data_dir().iterdir() if p.name.endswith(".toml"))
    )


@functools.cache
def get_profile(name: str) -> Profile:
    """The bundled profile ``name``; :class:`ProfileError` naming the known ones otherwise."""
    names = profile_names()
    if name not in names:
        close = difflib.get_close_matches(str(name).lower(), names, n=1, cutoff=0.5)
        raise ProfileError(
            f"Unknown profile {name!r}.",
            (f"Did you mean {close[0]}? " if close else "")
            + f"Profiles: {', '.join(names)}; or give your own profile file (--profile-file).",
        )
    entry = _data_dir().joinpath(f"{name}.toml")
    return parse(entry.read_text(encoding="utf-8"), name=name, path=f"{_DATA_DIR}/{name}.toml")


def load_profile(path: str | Path) -> Profile:
    """A user's own profile file; its name is the file's stem (``acme.toml`` is ``acme``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ProfileError(
            f"The profile file {path} is unreadable ({error.strerror or error}).",
            "Give the path of a .toml profile file; `atlassian-playbook profiles show custom` "
            "prints an example to start from.",
            path=str(path),
        ) from None
    name = path.stem
    if not SLUG.fullmatch(name):
        raise ProfileError(
            f"{path}: the file name {path.name!r} is not a usable profile name.",
            "Name the file with lowercase letters, digits and dashes, e.g. acme-sync.toml: "
            "the name prefixes its step ids.",
            path=str(path),
        )
    return parse(text, name=name, path=str(path))


def resolve_profile(name: str | None = None, file: str | Path | None = None) -> Profile:
    """The one lookup the CLI (``--profile``/``--profile-file``) and the notebooks
    (``profile``/``profile_file``) use: a file wins over a name; neither is ``custom``."""
    if file:
        return load_profile(file)
    return get_profile(name or DEFAULT_PROFILE)
