"""Settings from the environment and ``.env``, validated with errors that name the fix.

The environment wins over ``.env`` (python-dotenv's convention). The two base URLs are the
seam for the emulator and any other test double: every request the package makes is built
from them. With no client id and secret configured the playbook runs against the embedded
emulator (:func:`atlassian_playbook.target.connect`).
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from ._files import atomic_write_text
from .errors import ConfigError
from .redact import Secret

__all__ = [
    "Settings",
    "load_settings",
    "load_workspace_settings",
    "save_settings",
    "parse_scopes",
    "DEFAULT_AUTH_BASE_URL",
    "DEFAULT_API_BASE_URL",
    "DEFAULT_REDIRECT_URI",
    "SETTINGS",
]

DEFAULT_AUTH_BASE_URL = "https://auth.atlassian.com"
DEFAULT_API_BASE_URL = "https://api.atlassian.com"
# A loopback callback: the CLI and the notebooks catch the code here themselves.
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8765/callback"
DEFAULT_SCOPES = "read:me read:jira-user read:confluence-space.summary offline_access"

# Every setting, with what it is for; .env.example and the README's reference mirror this.
SETTINGS: dict[str, str] = {
    "ATLASSIAN_CLIENT_ID": "Client ID from the console's Settings tab. Unset: use the emulator.",
    "ATLASSIAN_CLIENT_SECRET": "Secret from the console's Settings tab. Never commit it.",
    "ATLASSIAN_REDIRECT_URI": "Callback URL, identical to one on the console's Authorization tab.",
    "ATLASSIAN_SCOPES": f"Space-separated scopes to request (default: {DEFAULT_SCOPES}).",
    "ATLASSIAN_AUTH_BASE_URL": f"Authorization server (default {DEFAULT_AUTH_BASE_URL}).",
    "ATLASSIAN_API_BASE_URL": f"API gateway (default {DEFAULT_API_BASE_URL}).",
    "ATLASSIAN_TOKEN_STORE": "Token store file (default: tokens.json in the user config dir).",
    "ATLASSIAN_SITE": "Site to use when several are granted: cloud id, name or URL.",
    "ATLASSIAN_EMULATOR_WORLD": "Emulator only: a world file (users, sites, apps, data; "
    "docs/EMULATOR.md), relative to the .env folder. Default: the built-in world.",
}


def default_token_store() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("atlassian-playbook")) / "tokens.json"


@dataclass(frozen=True)
class Settings:
    """The resolved configuration. ``client_secret`` is a :class:`Secret`: it never prints."""

    client_id: str | None = None
    client_secret: Secret | None = None
    redirect_uri: str = DEFAULT_REDIRECT_URI
    scopes: tuple[str, ...] = tuple(DEFAULT_SCOPES.split())
    auth_base_url: str = DEFAULT_AUTH_BASE_URL
    api_base_url: str = DEFAULT_API_BASE_URL
    token_store: Path = dataclasses.field(default_factory=default_token_store)
    site: str | None = None
    env_file: Path | None = None
    emulator_world: Path | None = None

    @property
    def has_credentials(self) -> bool:
        """True when a client id and secret are configured: talk to them, not the emulator."""
        return bool(self.client_id and self.client_secret)

    @property
    def is_atlassian(self) -> bool:
        """True when the auth base URL is Atlassian's own (not the emulator or a test double)."""
        return urlsplit(self.auth_base_url).hostname == urlsplit(DEFAULT_AUTH_BASE_URL).hostname

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)

    def require_credentials(self) -> None:
        """Raise :class:`ConfigError` naming the first missing credential."""
        if not self.client_id:
            raise ConfigError(
                "ATLASSIAN_CLIENT_ID is not set.",
                "Copy the Client ID from the console's Settings tab into .env "
                "(see .env.example), or unset both credentials to use the emulator.",
                setting="ATLASSIAN_CLIENT_ID",
            )
        if not self.client_secret:
            raise ConfigError(
                "ATLASSIAN_CLIENT_SECRET is not set.",
                "Copy the Secret from the console's Settings tab into .env; never pass it on "
                "the command line or as a notebook parameter.",
                setting="ATLASSIAN_CLIENT_SECRET",
            )

    def validate(self) -> Settings:
        """Check every setting; return ``self`` so it chains after :func:`load_settings`."""
        _check_url("ATLASSIAN_REDIRECT_URI", self.redirect_uri)
        _check_url("ATLASSIAN_AUTH_BASE_URL", self.auth_base_url)
        _check_url("ATLASSIAN_API_BASE_URL", self.api_base_url)
        from .scopes import validate_scopes

        validate_scopes(self.scopes, setting="ATLASSIAN_SCOPES")
        return self

    def describe(self) -> dict[str, str]:
        """Every setting as displayable text, the secret masked."""
        return {
            "ATLASSIAN_CLIENT_ID": self.client_id or "(unset: emulator)",
            "ATLASSIAN_CLIENT_SECRET": str(self.client_secret) if self.client_secret else "(unset)",
            "ATLASSIAN_REDIRECT_URI": self.redirect_uri,
            "ATLASSIAN_SCOPES": " ".join(self.scopes),
            "ATLASSIAN_AUTH_BASE_URL": self.auth_base_url,
            "ATLASSIAN_API_BASE_URL": self.api_base_url,
            "ATLASSIAN_TOKEN_STORE": str(self.token_store),
            "ATLASSIAN_SITE": self.site or "(unset: choose when several)",
            "ATLASSIAN_EMULATOR_WORLD": str(self.emulator_world or "(unset: the built-in world)"),
        }


def _check_url(setting: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{setting}={value!r} is not an absolute http(s) URL.",
            f"Set {setting} to a full URL such as "
            f"{DEFAULT_REDIRECT_URI if setting.endswith('REDIRECT_URI') else 'https://...'}.",
            setting=setting,
        )


def parse_scopes(value: str | None, setting: str = "ATLASSIAN_SCOPES") -> tuple[str, ...]:
    """Split a space-separated scope string; commas are a common slip and get their own error."""
    if value is None or not value.strip():
        return ()
    if "," in value:
        raise ConfigError(
            f"{setting} contains commas: {value!r}.",
            f"Separate scopes with spaces, as Atlassian's scope parameter does: "
            f"{' '.join(s.strip() for s in value.split(',') if s.strip())!r}.",
            setting=setting,
        )
    return tuple(dict.fromkeys(value.split()))


def load_settings(
    env_file: str | os.PathLike[str] | None = ".env",
    environ: Mapping[str, str] | None = None,
    *,
    validate: bool = True,
) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``) over ``env_file``.

    Raises :class:`ConfigError` for a malformed setting. Missing credentials are not an error
    here: they select the emulator; call :meth:`Settings.require_credentials` where needed.
    """
    env_path = Path(env_file) if env_file else None
    values: dict[str, str] = {}
    if env_path is not None and env_path.is_file():
        values.update({k: v for k, v in dotenv_values(env_path).items() if v is not None})
    values.update(
        {k: v for k, v in (os.environ if environ is None else environ).items() if k in SETTINGS}
    )

    def get(name: str) -> str | None:
        value = values.get(name)
        return value.strip() if value and value.strip() else None

    secret = get("ATLASSIAN_CLIENT_SECRET")
    scopes = get("ATLASSIAN_SCOPES")
    token_store = get("ATLASSIAN_TOKEN_STORE")
    world = get("ATLASSIAN_EMULATOR_WORLD")
    world_path = Path(world).expanduser() if world else None
    if world_path is not None and not world_path.is_absolute() and env_path is not None:
        world_path = env_path.parent / world_path
    settings = Settings(
        client_id=get("ATLASSIAN_CLIENT_ID"),
        client_secret=Secret(secret) if secret else None,
        redirect_uri=get("ATLASSIAN_REDIRECT_URI") or DEFAULT_REDIRECT_URI,
        scopes=parse_scopes(scopes) if scopes else tuple(DEFAULT_SCOPES.split()),
        auth_base_url=(get("ATLASSIAN_AUTH_BASE_URL") or DEFAULT_AUTH_BASE_URL).rstrip("/"),
        api_base_url=(get("ATLASSIAN_API_BASE_URL") or DEFAULT_API_BASE_URL).rstrip("/"),
        token_store=Path(token_store).expanduser() if token_store else default_token_store(),
        site=get("ATLASSIAN_SITE"),
        env_file=env_path,
        emulator_world=world_path,
    )
    return settings.validate() if validate else settings


def load_workspace_settings(
    workspace: str | os.PathLike[str], *, validate: bool = True
) -> Settings:
    """The settings of a workspace folder (its ``.env``; the environment wins).

    Against anything but the real Atlassian (the emulator, a test double) the token store is
    the workspace's own ``.playbook/tokens.json`` unless ``ATLASSIAN_TOKEN_STORE`` is set, so
    an emulated world and its tokens stay together and every kernel of a workspace shares
    them. The notebooks and the batch runner both resolve workspaces here.
    """
    workspace = Path(workspace).expanduser().resolve()
    env_file = workspace / ".env"
    settings = load_settings(env_file, validate=validate)
    configured = bool(os.environ.get("ATLASSIAN_TOKEN_STORE")) or (
        env_file.is_file() and bool(dotenv_values(env_file).get("ATLASSIAN_TOKEN_STORE"))
    )
    if (not settings.is_atlassian or not settings.has_credentials) and not configured:
        settings = settings.replace(token_store=workspace / ".playbook" / "tokens.json")
    return settings


def _quote(value: str) -> str:
    # python-dotenv's own quoting (set_key, quote_mode="always"), so dotenv_values reads it back.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def save_settings(
    updates: Mapping[str, str | Secret | None], env_file: str | os.PathLike[str] = ".env"
) -> Path:
    """Write ``updates`` into ``env_file``, keeping comments, order and other keys.

    One atomic rewrite for all keys (python-dotenv's parser, our atomic writer); the file ends
    up mode 0600 whatever it was, since it may hold the client secret. A value of ``None``
    removes the key. Unknown keys are refused, to catch typos.
    """
    unknown = sorted(set(updates) - set(SETTINGS))
    if unknown:
        raise ConfigError(
            f"Unknown setting(s): {', '.join(unknown)}.",
            f"Known settings: {', '.join(SETTINGS)}.",
            setting=unknown[0],
        )
    path = Path(env_file)
    try:
        original = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        original = ""

    pending = dict(updates)
    lines: list[str] = []
    for binding in parse_stream(io.StringIO(original)):
        if binding.key is not None and binding.key in pending:
            value = pending.pop(binding.key)
            if value is not None:
                lines.append(f"{binding.key}={_quote(_plain(value))}\n")
        else:
            lines.append(binding.original.string)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for key, value in pending.items():
        if value is not None:
            lines.append(f"{key}={_quote(_plain(value))}\n")
    atomic_write_text(path, "".join(lines))
    return path


def _plain(value: str | Secret) -> str:
    return value.reveal() if isinstance(value, Secret) else str(value)
