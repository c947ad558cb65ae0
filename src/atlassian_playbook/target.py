"""Which Atlassian we talk to: the real one, a test double, or the embedded emulator.

With a client id and secret configured, the settings are used as they are (the base URLs
default to Atlassian's). With neither (one alone is an error), an emulator starts in this
process on loopback and the settings are pointed at it. Its state lives beside the token store
(``emulator-state.json``, mode 0600), so separate processes (CLI invocations, notebook kernels)
share one emulated world: a token obtained by ``login`` can be refreshed by ``refresh`` later.
The world comes from ``ATLASSIAN_EMULATOR_WORLD`` (default: the built-in one); the emulated
app's callback URLs are its registration's, as on the console, never copied from ``.env``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Settings, load_settings

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = ["Target", "connect", "describe_settings", "emulator_state_path"]

_embedded: dict[tuple[Path, bool | str, Path | None], Emulator] = {}
_embedded_lock = threading.Lock()


@dataclass(frozen=True)
class Target:
    """Settings ready to use, and the embedded emulator behind them if there is one."""

    settings: Settings
    emulator: Emulator | None = None

    @property
    def kind(self) -> str:
        """``emulator``, ``atlassian`` (the real service) or ``custom`` (another base URL)."""
        if self.emulator is not None:
            return "emulator"
        return "atlassian" if self.settings.is_atlassian else "custom"

    def describe(self) -> str:
        if self.kind == "emulator":
            return (
                "the embedded Atlassian emulator on "
                f"{self.settings.auth_base_url} (no credentials set in .env)"
            )
        if self.kind == "atlassian":
            return (f"Atlassian Cloud ({self.settings.auth_base_url}) "
                    f"as client {self.settings.client_id}")
        return f"{self.settings.auth_base_url} as client {self.settings.client_id}"


def describe_settings(settings: Settings) -> str:
    """Which Atlassian ``settings`` select, without starting anything (a batch's workspaces)."""
    if not settings.has_credentials:
        return "the embedded Atlassian emulator (no credentials set in .env)"
    return Target(settings).describe()


def emulator_state_path(settings: Settings) -> Path:
    return settings.token_store.with_name("emulator-state.json")


def connect(
    settings: Settings | None = None, *, env_file: str | Path | None = ".env",
    auto_consent: bool | str = True,
) -> Target:
    """Resolve the target for ``settings`` (loaded from ``env_file`` when not given).

    ``auto_consent`` only matters for the embedded emulator: on, its authorize endpoint
    consents at once (headless runs); off, it shows a consent page for a person to click;
    ``"deny"`` refuses at once (rehearsing a user who presses Deny).
    """
    settings = settings or load_settings(env_file)
    settings.check_credentials()
    if settings.has_credentials:
        return Target(settings)
    from .emulator import Emulator

    state_path = emulator_state_path(settings)
    world = settings.emulator_world
    key = (state_path, auto_consent, world)
    with _embedded_lock:
        emulator = _embedded.get(key)
        if emulator is None:
            emulator = Emulator(
                auto_consent=auto_consent, state_path=state_path, world=world
            ).start()
            _embedded[key] = emulator
    # The emulated app's callback URLs are its registration's (the world file, or the
    # `emulator callbacks` command: the console's Authorization tab), never .env's: a
    # redirect URI that differs by a slash fails here as it fails against Atlassian.
    return Target(
        emulator.settings(
            redirect_uri=settings.redirect_uri,
            scopes=settings.scopes,
            token_store=settings.token_store,
            site=settings.site,
            env_file=settings.env_file,
            emulator_world=world,
            unknown=settings.unknown,
        ),
        emulator,
    )
