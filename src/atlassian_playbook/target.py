"""The composition root: which Atlassian we talk to, and everything that talks to it.

:func:`connect` resolves the settings to a :class:`Target`. With a client id and secret
configured, the settings are used as they are (the base URLs default to Atlassian's). With
neither (one alone is an error), an emulator starts in this process on loopback and the
settings are pointed at it. Its state lives beside the token store (``emulator-state.json``,
mode 0600), so separate processes (CLI invocations, notebook kernels) share one emulated world:
a token obtained by ``login`` can be refreshed by ``refresh`` later. The world comes from
``ATLASSIAN_EMULATOR_WORLD`` (default: the built-in one); the emulated app's callback URLs are
its registration's, as on the console, never copied from ``.env``. With
``ATLASSIAN_GRANT=client_credentials`` the emulated credentials are the world's first service
account's.

The target owns what the rest of the package would otherwise each build for itself: the token
store, the token endpoint's and the gateway's clients (every one it hands out is closed when
the target closes: use it as a context manager) and the embedded emulator. The CLI, the
notebook session, ``doctor`` and batch workspaces take all of these from here.
"""

from __future__ import annotations

import tempfile
import threading
import weakref
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import DEFAULT_REDIRECT_URI, Settings, load_settings

if TYPE_CHECKING:
    from .api import ApiClient
    from .emulator import Emulator
    from .oauth import OAuthClient
    from .tokens import StoredTokenSource, TokenSet, TokenStore

__all__ = ["Target", "connect", "describe_settings", "emulator_settings", "emulator_state_path"]

_embedded: dict[tuple[Path, bool | str, Path | None], Emulator] = {}
_embedded_lock = threading.Lock()


class Target:
    """Settings ready to use, the embedded emulator behind them if there is one, and the
    store and HTTP clients built from them.

    Made by :func:`connect`. ``Target(settings)`` without credentials and without an emulator
    is a target not yet connected: its store can be read (a batch's workspaces do), but it
    hands out no client.

    Clients come from :meth:`oauth_client` and :meth:`api_client`; each is made when asked
    (so an ``observing()`` block, such as the parity recorder's, sees the ones made inside it)
    and closed by :meth:`close` if its user has not closed it already.
    """

    def __init__(self, settings: Settings, emulator: Emulator | None = None) -> None:
        self.settings = settings
        self.emulator = emulator
        self._clients: list[Any] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Target({self.describe()!r})"

    @property
    def kind(self) -> str:
        """``emulator``, ``atlassian`` (the real service) or ``custom`` (another base URL)."""
        if self.emulator is not None or not self.settings.has_credentials:
            return "emulator"
        return "atlassian" if self.settings.is_atlassian else "custom"

    def describe(self) -> str:
        if self.kind == "emulator":
            where = f" on {self.settings.auth_base_url}" if self.emulator is not None else ""
            return f"the embedded Atlassian emulator{where} (no credentials set in .env)"
        if self.kind == "atlassian":
            return (f"Atlassian Cloud ({self.settings.auth_base_url}) "
                    f"as client {self.settings.client_id}")
        return f"{self.settings.auth_base_url} as client {self.settings.client_id}"

    # -- what the target owns ----------------------------------------------------------------

    @cached_property
    def store(self) -> TokenStore:
        """The token store of these settings: the one every step of this target reads."""
        from .tokens import TokenStore

        return TokenStore(self.settings.token_store)

    def oauth_client(self) -> OAuthClient:
        """A client of the token endpoint, closed with the target."""
        from .oauth import OAuthClient

        return self._own(OAuthClient(self.settings))

    def api_client(self, *, account_id: str | None = None,
                   tokens: TokenSet | None = None) -> ApiClient:
        """A gateway client, closed with the target.

        With ``tokens`` it calls with those tokens as they are (just after a login, before
        anything is stored). Otherwise it uses the stored connection of ``account_id`` (or the
        client's only one) and refreshes it, persisting the rotated token, when it expires.
        """
        from .api import ApiClient
        from .tokens import StaticTokenSource

        if tokens is not None:
            return self._own(ApiClient(self.settings, StaticTokenSource(tokens)))
        oauth = self.oauth_client()
        source = self.token_source(account_id=account_id, oauth=oauth)
        # Closing the API client closes its token endpoint client too (a notebook session's
        # target lives as long as the kernel; its steps close what they used).
        return self._own(ApiClient(self.settings, source, owns=[oauth]))

    def token_source(self, *, account_id: str | None = None,
                     oauth: OAuthClient | None = None) -> StoredTokenSource:
        """The stored connection of ``account_id`` (or the client's only one), refreshed
        under the store's lock through ``oauth`` (by default, a new client of this target):
        with its refresh token, or, for a service account's, a new token fetched with the
        client credentials."""
        from .tokens import StoredTokenSource

        self.settings.require_credentials()
        entry = self.store.get(self.settings.client_id, account_id)
        oauth = oauth or self.oauth_client()
        return StoredTokenSource(self.store, oauth.refresh, entry.client_id, entry.account_id,
                                 fetch=oauth.client_credentials)

    def _own(self, client):
        with self._lock:
            self._clients.append(client)
        return client

    def close(self) -> None:
        """Close every client this target handed out (closing one twice is harmless). The
        embedded emulator stays up: other targets of this process share it."""
        with self._lock:
            clients = list(self._clients)
            self._clients.clear()
        for client in clients:
            client.close()

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def describe_settings(settings: Settings) -> str:
    """Which Atlassian ``settings`` select, without starting anything (a batch's workspaces)."""
    return Target(settings).describe()


def emulator_state_path(settings: Settings) -> Path:
    return settings.token_store.with_name("emulator-state.json")


_scratch_folders: dict[int, tempfile.TemporaryDirectory] = {}


def _drop_scratch_folder(key: int) -> None:
    _scratch_folders.pop(key).cleanup()


def emulator_settings(emulator: Emulator, *, service_account: bool = False,
                      **overrides: Any) -> Settings:
    """Settings pointing at ``emulator``, as its default client (``service_account``: as its
    default service account's credential, ``ATLASSIAN_GRANT=client_credentials``);
    ``overrides`` go to :meth:`Settings.replace`.

    The emulator only exposes its URLs and registrations; this is where a client's settings
    are made of them. The token store defaults to one beside the emulator's state file, or to
    a temporary folder that lives as long as the emulator: emulated tokens never land in the
    user's real store.
    """
    if emulator.state_path is not None:
        token_store = Path(emulator.state_path).with_name("tokens.json")
    else:
        key = id(emulator)
        if key not in _scratch_folders:
            _scratch_folders[key] = tempfile.TemporaryDirectory(prefix="atlassian-emulator-")
            weakref.finalize(emulator, _drop_scratch_folder, key)
        token_store = Path(_scratch_folders[key].name) / "tokens.json"
    client = emulator.service_account if service_account else emulator.default_client
    return Settings(
        client_id=client.client_id,
        client_secret=client.client_secret,
        grant="client_credentials" if service_account else "authorization_code",
        redirect_uri=DEFAULT_REDIRECT_URI,
        auth_base_url=emulator.auth_base_url,
        api_base_url=emulator.api_base_url,
        token_store=token_store,
    ).replace(**overrides)


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
        emulator_settings(
            emulator,
            service_account=settings.is_service_account,
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
