"""The workspace a notebook works in, and the notebook parameters' conventions.

Notebook parameters use ``""`` for "not set" (papermill parameters are plain literals); every
step accepts ``""`` wherever it accepts ``None`` (:func:`opt`), and space- or comma-separated
text wherever it accepts a list (:func:`words`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._files import atomic_write_json, read_json
from ..callback import is_loopback
from ..config import Settings, load_workspace_settings
from ..errors import PlaybookError, TokenStoreError
from ..notebook_parameters import check_parameters
from ..profiles import Profile, resolve_profile
from ..redact import redact
from ..target import Target, connect
from . import _results
from .rehearsal import Rehearsals, rehearsals_for

__all__ = ["Session", "start", "opt", "words"]


def opt(value: Any) -> Any:
    """A notebook parameter's "not set" (``""``) as ``None``."""
    return None if value in ("", None) else value


def words(value: str | Iterable[str] | None) -> list[str]:
    """Space- or comma-separated text (a notebook parameter) or a list, as a list."""
    if not value:
        return []
    if isinstance(value, str):
        return [part for part in re.split(r"[\s,]+", value) if part]
    return [str(part) for part in value]


@dataclass
class Session:
    """The workspace a notebook works in, and the Atlassian (real or emulated) it talks to.

    The workspace holds ``.env`` and ``.playbook/`` (the chosen profile, checklist progress,
    the reporting cycle and, against the emulator, the token store and the emulator's state).
    """

    workspace: Path
    target: Target
    auto_consent: bool | str = True  # the embedded emulator's: True, False or "deny"

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
        """True for the embedded emulator (no credentials in .env)."""
        return self.target.emulator is not None

    @property
    def rehearsals(self) -> Rehearsals:
        """What may be made to fail on purpose here: everything against the emulator,
        nothing (with the reason) against Atlassian."""
        return rehearsals_for(self.target)

    @property
    def headless_possible(self) -> bool:
        """True when the authorization server is on loopback (an emulator), so a headless
        browser can stand in for the person at the consent screen."""
        return is_loopback(self.settings.auth_base_url)

    def consents_headless(self, consent: str) -> bool:
        """Whether a headless browser stands in for the person at consent (``auto``/``deny``
        against an emulator); otherwise a person clicks the link."""
        return consent in ("auto", "deny") and self.headless_possible

    @property
    def profile(self) -> Profile:
        """The profile chosen in notebook 02 (``custom`` until one was chosen): a bundled one
        by name, or the user's own profile file."""
        saved = read_json(self.state_dir / "profile.json", default={}) or {}
        return resolve_profile(saved.get("profile"), saved.get("profile_file"))

    def resolve_profile(self, profile: str | None = None,
                        profile_file: str | None = None) -> Profile:
        """The profile a step was given (a name or a file), else the one chosen in 02."""
        if opt(profile) or opt(profile_file):
            return resolve_profile(opt(profile), opt(profile_file))
        return self.profile

    def remember_profile(self, profile: Profile, profile_file: str | None) -> None:
        """Save the choice for the later notebooks (a user's own file by its full path)."""
        atomic_write_json(self.state_dir / "profile.json", {
            "profile": profile.name,
            "profile_file": str(Path(profile.path).resolve()) if opt(profile_file) else None,
        }, mode=0o644)

    def reload(self) -> Session:
        """Re-read .env after a step changed it (credentials, scopes, callback URL)."""
        fresh = start(self.workspace, auto_consent=self.auto_consent, quiet=True)
        self.target.close()
        self.target = fresh.target
        return self

    def _repr_markdown_(self) -> str:
        """The header every notebook prints: one line (which Atlassian, the workspace, the
        profile, the connection when one is stored), then only a warning per misspelt setting.
        The callback, scopes and token store are notebook 01's table, not every header's."""
        parts = [
            f"**Target:** {self._target_label()}",
            f"**Workspace:** `{self.workspace}`",
            f"**Profile:** {self.profile.name}",
            *self._connection_label(),
        ]
        lines = [" · ".join(parts)]
        lines += [f"**Warning:** {u.message} {u.hint}" for u in self.settings.unknown]
        return redact("  \n".join(lines))

    def _target_label(self) -> str:
        s = self.settings
        if self.target.kind == "emulator":
            return "the embedded Atlassian emulator"
        if self.target.kind == "atlassian":
            return f"Atlassian Cloud as client `{s.client_id}`"
        return f"{s.auth_base_url} as client `{s.client_id}`"

    def _connection_label(self) -> list[str]:
        """The stored connection of this client: its account and chosen site (no token)."""
        try:
            entries = [e for e in self.target.store.list()
                       if e.client_id == self.settings.client_id]
        except TokenStoreError:
            return ["**Account:** the token store is unreadable (the next step says why)"]
        if len(entries) > 1:
            return [f"**Connections:** {len(entries)} stored (pass `account_id` to pick one)"]
        if not entries:
            return []
        entry = entries[0]
        account = f"`{entry.account_id}`" if entry.account_id else "unknown (no read:me)"
        site = (entry.site or {}).get("name")
        return [f"**Account:** {account}", *([f"**Site:** {site}"] if site else [])]

def start(
    workspace: str | Path = "..",
    *,
    parameters: dict[str, Any] | None = None,
    auto_consent: bool | str = True,
    quiet: bool = False,
) -> Session:
    """Open the workspace, refuse secret parameters, and connect (starting the emulator if
    no credentials are set).

    ``parameters`` is the notebook's parameter dict, checked here too in case someone ran
    papermill by hand with ``-p client_secret ...``. Against anything but the real Atlassian
    (the emulator, a test double) the token store lives in the workspace's ``.playbook/``
    unless ``ATLASSIAN_TOKEN_STORE`` says otherwise, so the emulated world and its tokens stay
    together and separate notebook kernels share them. The session shows itself (notebooks
    keep it in a variable) unless ``quiet``.
    """
    if parameters:
        check_parameters(parameters)
    workspace = Path(workspace).expanduser().resolve()
    if not workspace.is_dir():
        raise PlaybookError(
            f"The workspace {workspace} does not exist.",
            "Pass workspace= the folder holding .env (the repository root, or the folder "
            "`atlassian-playbook init` made; from its notebooks/, the default '..').",
        )
    settings = load_workspace_settings(workspace)
    if parameters and settings.client_secret:
        check_parameters(parameters, [settings.client_secret.reveal()])
    session = Session(workspace, connect(settings, auto_consent=auto_consent), auto_consent)
    if not quiet:
        _results.show(session)
        _results.record("target", session.target.kind)
    return session
