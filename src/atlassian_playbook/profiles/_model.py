"""What a profile is: the constants of the schema and the frozen dataclasses a file becomes
(``docs/PROFILES.md``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# The profile of an organisation's own integration: the playbook's default everywhere.
DEFAULT_PROFILE = "custom"
# fixed: the partner documents one URL; partner-shows: the partner's dashboard shows one per
# instance; yours: the callback is the playbook's own (ATLASSIAN_REDIRECT_URI).
CALLBACK_RULES = ("fixed", "partner-shows", "yours")
# The values handed to a partner, with the name used when the partner's own label is unknown.
HANDOFF_FIELDS = {
    "client_id": "Client ID",
    "client_secret": "Client Secret",
    "redirect_uri": "Redirect URI",
    "extra_scopes": "Scopes",
}
# Where a checklist step happens: the console's tabs, and "Partner" for the partner's dashboard.
TABS = ("Create", "Permissions", "Authorization", "Settings", "Distribution", "Partner",
        "Administration")
# How the integration gets its tokens: "3lo" (a person consents; the developer console's
# Create, Permissions, Authorization, Settings and Distribution steps), or "client-credentials"
# (a service account's credential made in Atlassian Administration: none of those steps, no
# callback, no consent; the profile's own steps are the checklist).
FLOWS = ("3lo", "client-credentials")
# Checklist warnings a partner's documented set can make moot (scopes.check_scopes, checklist).
SKIPPABLE_WARNINGS = (
    "missing-offline-access",
    "mixed-classic-granular",
    "api-not-added",
    "missing-report-personal-data",
    "callback-not-https",
)
STEP_POSITIONS = ("start", "end")
FORMAT = 1

# A profile name, and the prefix of its step ids.
SLUG = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
UNKNOWN = "unknown"


@dataclass(frozen=True)
class ProfileScopes:
    """The scope preset: the partner's documented set, or the user's own choice.

    ``documented`` is ``None`` when the partner documents no set ("yours": the scopes in
    ``ATLASSIAN_SCOPES``, the playbook's minimal set until chosen). ``optional`` scopes (such as
    ``offline_access`` for a sign-in provider) are added only when asked for; ``required`` ones
    are put first whatever the user chose. ``offline_access_via`` says where ``offline_access``
    is requested for this profile, ``without_offline_access`` what its absence means here.
    """

    documented: tuple[str, ...] | None
    optional: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    offline_access_via: str = ""
    without_offline_access: str = ""

    def extra(self, scopes: Iterable[str]) -> tuple[str, ...]:
        """``scopes`` beyond the required ones: what a partner needs entered besides them."""
        return tuple(s for s in scopes if s not in self.required)

    def for_partner(self, scopes: Iterable[str]) -> tuple[str, ...]:
        """The scopes to enter in the partner: ``scopes`` beyond the required ones, leaving out
        an ``optional`` one the profile's set does not ask for. Notebook 03 adds
        ``offline_access`` by default (the playbook's refresh notebooks need it); a sign-in
        provider needs it only when the user says so (an explicit ``extra_scopes``)."""
        asked = self.documented or ()
        return tuple(s for s in self.extra(scopes) if s not in self.optional or s in asked)


@dataclass(frozen=True)
class ProfileCallback:
    """The callback rule: a fixed URL, one the partner shows, or the playbook's own."""

    rule: str
    url: str | None = None
    shown_as: str | None = None

    @property
    def belongs_to_partner(self) -> bool:
        """True when the partner, not the playbook, receives the browser after consent."""
        return self.rule != "yours"

    def expected(self, given: str | None = None, configured: str | None = None) -> str | None:
        """The callback this profile needs: ``given`` when passed, else the fixed URL; for a URL
        the partner shows, a non-loopback ``configured`` one (it was set for the partner);
        ``None`` when not known yet, or when the callback is the playbook's own."""
        if given:
            return given
        if self.rule == "fixed":
            return self.url
        if self.rule == "partner-shows" and configured and not is_loopback_host(configured):
            return configured
        return None


@dataclass(frozen=True)
class ProfileHandoff:
    """Where the credentials go, and the labels of the fields there, as the partner names them.

    A label the public facts do not give is absent from ``labels``; :meth:`label` then says to
    check the field's name in the partner's dashboard.
    """

    destination: str
    labels: Mapping[str, str] = field(default_factory=dict)
    partner: str | None = None

    def label(self, name: str) -> str:
        """The label of handoff field ``name`` (one of :data:`HANDOFF_FIELDS`)."""
        if name in self.labels:
            return self.labels[name]
        generic = HANDOFF_FIELDS[name]
        if self.partner is None:
            return generic
        return f"{generic} (check the field's name in {self.partner}'s dashboard)"


@dataclass(frozen=True)
class ProfileStep:
    """A partner-specific checklist step, placed before the console steps (``at="start"``) or
    after them (``"end"``). ``fields`` are handoff fields whose label and value the checklist
    fills in; ``values`` are literal ones."""

    id: str
    title: str
    at: str
    tab: str = "Partner"
    detail: str = ""
    fields: tuple[str, ...] = ()
    values: Mapping[str, str] = field(default_factory=dict)
    required: bool = True


@dataclass(frozen=True)
class Profile:
    """One integration profile, as its TOML file states it (see the module docstring).

    ``partner`` is the partner's name as prose uses it (``None`` when the playbook itself is
    the client, as for ``custom``). ``stores_personal_data`` is ``None`` when the public facts
    do not say; ``personal_data_when`` is the condition a partner puts on it ("you sync Users
    and Groups through Merge"; empty: always). ``path`` is the file it was read from.
    """

    name: str
    title: str
    audience: str
    scopes: ProfileScopes
    callback: ProfileCallback
    handoff: ProfileHandoff
    stores_personal_data: bool | None
    personal_data_why: str = ""
    personal_data_when: str = ""
    partner: str | None = None
    source: str = ""
    sharing_required: bool = True
    terms_required: bool = False
    skip_warnings: frozenset[str] = frozenset()
    steps: tuple[ProfileStep, ...] = ()
    path: str = ""
    flow: str = "3lo"

    @property
    def has_console_steps(self) -> bool:
        """False for a service account's profile: no 3LO app in the developer console."""
        return self.flow == "3lo"

    @property
    def handoff_fields(self) -> tuple[str, ...]:
        """The handoff fields (:data:`HANDOFF_FIELDS` order) this profile hands to its partner:
        those it has a label for or a step of it fills in (``extra_scopes`` only where the
        partner takes scopes of its own)."""
        return tuple(
            name
            for name in HANDOFF_FIELDS
            if name in self.handoff.labels or any(name in s.fields for s in self.steps)
        )

    @property
    def scope_source(self) -> str:
        """``"partner"`` when the partner documents the scope set, ``"yours"`` otherwise."""
        return "yours" if self.scopes.documented is None else "partner"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``atlassian-playbook profiles show --json``."""
        return {
            "name": self.name,
            "title": self.title,
            "partner": self.partner,
            "audience": self.audience,
            "source": self.source,
            "scopes": {
                "source": self.scope_source,
                "documented": (
                    None if self.scopes.documented is None else list(self.scopes.documented)
                ),
                "optional": list(self.scopes.optional),
                "required": list(self.scopes.required),
                "offline_access_via": self.scopes.offline_access_via,
            },
            "callback": {
                "rule": self.callback.rule,
                "url": self.callback.url,
                "shown_as": self.callback.shown_as,
            },
            "handoff": {
                "destination": self.handoff.destination,
                # A list, not a dict keyed by field: a "client_secret" key reads as a secret.
                "fields": [
                    {"field": name, "label": self.handoff.label(name)}
                    for name in self.handoff_fields
                ],
            },
            "stores_personal_data": (
                UNKNOWN if self.stores_personal_data is None else self.stores_personal_data
            ),
            "stores_personal_data_when": self.personal_data_when or None,
            "sharing_required": self.sharing_required,
            "skip_warnings": sorted(self.skip_warnings),
            "steps": [{"id": s.id, "at": s.at, "title": s.title} for s in self.steps],
            "path": self.path,
        }


def is_loopback_host(url: str) -> bool:
    """True for a URL on this machine, whatever its scheme: no partner can reach it."""
    return (urlsplit(url).hostname or "") in ("localhost", "127.0.0.1", "::1")
