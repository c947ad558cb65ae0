"""What a run's ``workspace`` parameter implies for the batch runner.

A playbook notebook opens its workspace with :func:`atlassian_playbook.playbook.start`: settings
from ``<workspace>/.env`` (the environment wins) and, against the emulator, the token store
``<workspace>/.playbook/tokens.json``. From the same rules the runner derives

* the token-store entry a run refreshes (:func:`token_entry_key`): runs of one entry must never
  overlap, because two refreshes of a rotating refresh token outside a lock can revoke the
  whole grant (FACTS.md, "Refresh tokens");
* the secrets its executed notebook must not contain (:func:`known_secrets`);
* the entries a ``--from-store`` batch runs (:func:`store_entries`).

:func:`seed_emulator_workspace` makes a workspace with one emulator login, for trying a batch,
the tests and the benchmarks.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import Settings, load_settings, load_workspace_settings, save_settings
from ..target import Target
from ..tokens import TokenEntry

__all__ = [
    "workspace_settings",
    "StoredWorkspace",
    "token_entry_key",
    "store_entries",
    "known_secrets",
    "seed_emulator_workspace",
]

EMULATOR_CLIENT = "emulator"


def workspace_settings(workspace: str | Path) -> Settings:
    """The settings a notebook started on ``workspace`` uses (the token store resolved)."""
    return load_workspace_settings(workspace, validate=False)


def _client_id(settings: Settings) -> str:
    # Without credentials the notebook uses the emulator's default client; a workspace's
    # emulator has exactly one, so one name for it is enough to tell entries apart.
    return settings.client_id if settings.has_credentials else EMULATOR_CLIENT


class StoredWorkspace:
    """What one workspace holds, each part read at most once: its settings, its token store's
    entries and its emulator's state.

    A plan over a fleet asks each workspace two things, which entries its notebooks can
    refresh and which secrets its runs may see, and both need the store and the emulator's
    state. Asked of one ``StoredWorkspace`` they cost one read of each, where asking the
    folder twice read each twice (a few milliseconds a connection, before the first check
    could start). It is a snapshot: after a run, ask a new one (rotated tokens).
    """

    def __init__(self, workspace: str | Path) -> None:
        self.settings = workspace_settings(workspace)

    @functools.cached_property
    def entries(self) -> list[TokenEntry]:
        """Every entry of the store, whatever its client; an unreadable store raises."""
        return Target(self.settings).store.list()

    @functools.cached_property
    def emulator_state(self) -> dict | None:
        """The workspace's emulator state (``emulator.read_state``), or ``None`` without one."""
        from ..emulator import read_state  # here: the emulator package is not a small import

        return read_state(self.settings.token_store.with_name("emulator-state.json"))

    def _emulator_default_client(self) -> str | None:
        """The client id a notebook uses on this workspace's emulator: its default app's, or
        with ATLASSIAN_GRANT=client_credentials its first service account's."""
        state = self.emulator_state
        if not isinstance(state, dict):
            return None
        if self.settings.is_service_account:
            accounts = (state.get("world") or {}).get("service_accounts") or [{}]
            return accounts[0].get("client_id")
        return state.get("default_client_id")

    def runnable_entries(self) -> list[TokenEntry]:
        """The entries its notebooks can refresh (its client's)."""
        settings = self.settings
        client = (settings.client_id if settings.has_credentials
                  else self._emulator_default_client())
        return [e for e in self.entries if client is None or e.client_id == client]

    def secrets(self) -> set[str]:
        """Every secret a run on it may see: the client secret, the emulator's client secrets
        and every token in the store (an unreadable store holds none we could scrub with)."""
        found: set[str] = set()
        if self.settings.client_secret:
            found.add(self.settings.client_secret.reveal())
        state = self.emulator_state
        if isinstance(state, dict):
            accounts = (state.get("world") or {}).get("service_accounts") or []
            for client in [*(state.get("clients") or {}).values(), *accounts]:
                if isinstance(client, dict) and client.get("client_secret"):
                    found.add(client["client_secret"])
        try:
            entries = self.entries
        except Exception:
            return found
        for entry in entries:
            found.add(entry.tokens.access_token.reveal())
            if entry.tokens.refresh_token:
                found.add(entry.tokens.refresh_token.reveal())
        return found


def store_entries(workspace: str | Path) -> list[TokenEntry]:
    """The entries of the workspace's store that its notebooks can refresh (its client's)."""
    return StoredWorkspace(workspace).runnable_entries()


def token_entry_key(parameters: Mapping[str, Any]) -> str | None:
    """The token-store entry a run with these parameters refreshes, or ``None`` (no workspace).

    ``store#client#account``. With no ``account_id`` the notebook takes the store's only entry
    for the client, so the key names that entry; with several (or none) the run fails before
    refreshing anything and the key is the store's wildcard.
    """
    workspace = parameters.get("workspace")
    if not isinstance(workspace, str) or not workspace:
        return None
    settings = workspace_settings(workspace)
    store = settings.token_store.expanduser().resolve()
    account = parameters.get("account_id") or None
    if account is None:
        try:
            matching = store_entries(workspace)
        except Exception:  # an unreadable store: the run will fail and say why
            matching = []
        account = matching[0].account_id if len(matching) == 1 else "*"
    return f"{store}#{_client_id(settings)}#{account}"


def known_secrets(workspace: str | Path | None) -> set[str]:
    """Every secret a run on ``workspace`` may have seen (:meth:`StoredWorkspace.secrets`).
    Read again after a run for rotated tokens."""
    return StoredWorkspace(workspace).secrets() if workspace else set()


def seed_emulator_workspace(workspace: str | Path) -> TokenEntry:
    """A workspace with one emulator login: its own emulated world and token store.

    The emulator has one user, so one workspace holds one entry; N workspaces give N entries
    (N separate grants) for a batch. The login catches its callback on a free loopback port,
    claimed until it is done (:func:`~..callback.claimed_callback_url`: no other process's
    ``bind(0)`` gets it first), saved as ``ATLASSIAN_REDIRECT_URI`` in the workspace's ``.env``.
    """
    from ..callback import claimed_callback_url

    with claimed_callback_url("http://127.0.0.1:0/callback") as redirect:
        return _seed(Path(workspace).expanduser().resolve(), redirect)


def _seed(workspace: Path, redirect: str) -> TokenEntry:
    from .. import connection
    from ..emulator import Emulator
    from ..target import emulator_settings, emulator_state_path

    save_settings({"ATLASSIAN_REDIRECT_URI": redirect}, workspace / ".env")
    settings = load_settings(workspace / ".env", environ={}).replace(
        token_store=workspace / ".playbook" / "tokens.json")
    with Emulator(auto_consent=True, state_path=emulator_state_path(settings)) as emulator:
        # The emulated console's Authorization tab: add this workspace's callback URL.
        emulator.add_callback_url(redirect)
        settings = emulator_settings(emulator, redirect_uri=redirect, scopes=settings.scopes,
                                     token_store=settings.token_store)
        with Target(settings, emulator) as target:
            result = connection.login(target, browser="headless", show_url=lambda url: None)
    return result.entry
