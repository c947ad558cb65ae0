"""Settings from the environment and ``.env``, validated with errors that name the fix.

The environment wins over ``.env`` (python-dotenv's convention). The two base URLs are the
seam for the emulator and any other test double: every request the package makes is built
from them. With neither a client id nor a secret configured the playbook runs against the
embedded emulator (:func:`atlassian_playbook.target.connect`); one without the other is an
error, so nobody tests the emulator believing they test their app.

**The workspace rule.** A workspace is the folder that holds ``.env``: the folder of the CLI's
``--env-file`` (default: the current folder), the notebooks' ``workspace`` parameter, each
``batch --workspace``. Its tokens live in ``<workspace>/.playbook/tokens.json`` (the emulated
world beside them) unless ``ATLASSIAN_TOKEN_STORE`` names another file; relative paths in
settings are relative to the workspace. So a login made in a notebook is the CLI's login from
the same folder, and the reverse.
"""

from __future__ import annotations

import dataclasses
import difflib
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from ._files import STATE_FOLDER, atomic_write_text
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
    "ENVIRONMENT_ONLY",
    "UnknownSetting",
]

DEFAULT_AUTH_BASE_URL = "https://auth.atlassian.com"
DEFAULT_API_BASE_URL = "https://api.atlassian.com"
# A loopback callback: the CLI and the notebooks catch the code here themselves.
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8765/callback"
DEFAULT_SCOPES = "read:me read:jira-user read:confluence-space.summary offline_access"
# ATLASSIAN_GRANT's values (tokens.GRANTS; repeated here: settings import nothing of tokens).
GRANTS = ("authorization_code", "client_credentials")

# Every setting, with what it is for; .env.example and the README's reference mirror this.
SETTINGS: dict[str, str] = {
    "ATLASSIAN_CLIENT_ID": "Client ID from the console's Settings tab. Unset: use the emulator.",
    "ATLASSIAN_CLIENT_SECRET": "Secret from the console's Settings tab. Never commit it.",
    "ATLASSIAN_REDIRECT_URI": "Callback URL, identical to one on the console's Authorization tab.",
    "ATLASSIAN_SCOPES": f"Space-separated scopes to request (default: {DEFAULT_SCOPES}).",
    "ATLASSIAN_AUTH_BASE_URL": f"Authorization server (default {DEFAULT_AUTH_BASE_URL}).",
    "ATLASSIAN_API_BASE_URL": f"API gateway (default {DEFAULT_API_BASE_URL}).",
    "ATLASSIAN_TOKEN_STORE": "Token store file (default: .playbook/tokens.json in the .env "
    "folder, the workspace).",
    "ATLASSIAN_SITE": "Site to use when several are granted: cloud id, name or URL.",
    "ATLASSIAN_GRANT": "authorization_code (default: a 3LO app, a person consents) or "
    "client_credentials (the client id and secret are a service account's OAuth 2.0 "
    "credential). With the emulator it also picks which of its credentials to use.",
    "ATLASSIAN_EMULATOR_WORLD": "Emulator only: a world file (users, sites, apps, data; "
    "docs/EMULATOR.md), relative to the .env folder. Default: the built-in world.",
}

# ATLASSIAN_* names the package reads from the environment only (not settings of a workspace).
ENVIRONMENT_ONLY: dict[str, str] = {
    "ATLASSIAN_PLAYBOOK_DEBUG": "Any value: log the HTTP exchange to stderr, redacted.",
    "ATLASSIAN_PARITY": "1: the parity tests record from the real Atlassian.",
}


@dataclass(frozen=True)
class UnknownSetting:
    """An ``ATLASSIAN_*`` name that is no setting: most often a typo that silently does nothing."""

    name: str
    source: str  # the .env path, or "the environment"
    suggestion: str | None

    @property
    def message(self) -> str:
        guess = f"; did you mean {self.suggestion}?" if self.suggestion else "."
        return f"{self.name} in {self.source} is not a setting of atlassian-playbook{guess}"

    @property
    def hint(self) -> str:
        if self.suggestion:
            return f"Rename it to {self.suggestion}; as it is, it is ignored."
        return (f"Remove it, or unset it where you run the playbook if another tool uses it. "
                f"Settings: {', '.join(SETTINGS)}.")


def _unknown(names, source: str) -> list[UnknownSetting]:
    known = [*SETTINGS, *ENVIRONMENT_ONLY]
    return [
        UnknownSetting(name, source, next(iter(difflib.get_close_matches(name, known, 1, 0.8)),
                                          None))
        for name in sorted(names)
        if name.upper().startswith("ATLASSIAN_") and name not in known
    ]


@dataclass(frozen=True)
class Settings:
    """The resolved configuration. ``client_secret`` is a :class:`Secret`: it never prints."""

    client_id: str | None = None
    client_secret: Secret | None = None
    redirect_uri: str = DEFAULT_REDIRECT_URI
    scopes: tuple[str, ...] = tuple(DEFAULT_SCOPES.split())
    auth_base_url: str = DEFAULT_AUTH_BASE_URL
    api_base_url: str = DEFAULT_API_BASE_URL
    token_store: Path = dataclasses.field(
        default_factory=lambda: Path.cwd() / STATE_FOLDER / "tokens.json")
    site: str | None = None
    # How this workspace's connection gets tokens (ATLASSIAN_GRANT): see GRANTS.
    grant: str = "authorization_code"
    env_file: Path | None = None
    emulator_world: Path | None = None
    # ATLASSIAN_* names that are no setting (typos): every command warns, doctor fails.
    unknown: tuple[UnknownSetting, ...] = ()

    @property
    def has_credentials(self) -> bool:
        """True when a client id and secret are configured: talk to them, not the emulator."""
        return bool(self.client_id and self.client_secret)

    @property
    def workspace(self) -> Path:
        """The folder holding ``.env`` (the current folder when there is no ``.env`` path)."""
        return self.env_file.parent if self.env_file is not None else Path.cwd()

    def check_credentials(self) -> None:
        """The emulator is used only when *neither* credential is set: one alone is an error
        naming the other, so a typo never turns a test of the real app into one of the
        emulator."""
        if bool(self.client_id) == bool(self.client_secret):
            return
        missing = "ATLASSIAN_CLIENT_SECRET" if self.client_id else "ATLASSIAN_CLIENT_ID"
        present = "ATLASSIAN_CLIENT_ID" if self.client_id else "ATLASSIAN_CLIENT_SECRET"
        typo = next((u for u in self.unknown if u.suggestion == missing), None)
        where = f" in {self.env_file}" if self.env_file is not None else ""
        raise ConfigError(
            f"{present} is set but {missing} is not{where}"
            + (f" ({typo.name} looks like a misspelling of it)" if typo else "")
            + ": the playbook would not know whether to use your app or the emulator.",
            (f"Rename {typo.name} to {missing}." if typo else
             f"Set {missing} too (the console's Settings tab), or remove {present} to use "
             "the emulator."),
            setting=missing,
        )

    @property
    def is_service_account(self) -> bool:
        """True when ATLASSIAN_GRANT says the credentials are a service account's."""
        return self.grant == "client_credentials"

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
        self.check_credentials()
        _check_url("ATLASSIAN_REDIRECT_URI", self.redirect_uri)
        _check_url("ATLASSIAN_AUTH_BASE_URL", self.auth_base_url)
        _check_url("ATLASSIAN_API_BASE_URL", self.api_base_url)
        from .scopes import validate_scopes

        validate_scopes(self.scopes, setting="ATLASSIAN_SCOPES")
        if self.grant not in GRANTS:
            raise ConfigError(
                f"ATLASSIAN_GRANT={self.grant!r} is not a grant the playbook uses.",
                f"Set it to {' or '.join(GRANTS)} (client_credentials for a service account), "
                "or remove it.",
                setting="ATLASSIAN_GRANT",
            )
        return self

    def describe(self) -> dict[str, str]:
        """Every setting as displayable text, the secret masked."""
        return {
            "ATLASSIAN_CLIENT_ID": self.client_id or "(unset: emulator)",
            "ATLASSIAN_CLIENT_SECRET": str(self.client_secret) if self.client_secret
            else "(unset: emulator)",
            "ATLASSIAN_REDIRECT_URI": self.redirect_uri,
            "ATLASSIAN_SCOPES": " ".join(self.scopes),
            "ATLASSIAN_AUTH_BASE_URL": self.auth_base_url,
            "ATLASSIAN_API_BASE_URL": self.api_base_url,
            "ATLASSIAN_TOKEN_STORE": str(self.token_store),
            "ATLASSIAN_SITE": self.site or "(unset: choose when several)",
            "ATLASSIAN_GRANT": self.grant,
            "ATLASSIAN_EMULATOR_WORLD": str(self.emulator_world or "(unset: the built-in world)"),
        }


def _check_url(setting: str, value: str) -> None:
    example = DEFAULT_REDIRECT_URI if setting.endswith("REDIRECT_URI") else "https://..."
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{setting}={value!r} is not an absolute http(s) URL.",
            f"Set {setting} to a full URL such as {example}.",
            setting=setting,
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(
            f"{setting}={value!r} has port {parts.netloc.rpartition(':')[2]!r}, which is not a "
            "TCP port.",
            f"Use a port from 1 to 65535, or none at all, e.g. {example}.",
            setting=setting,
        )
    if setting.endswith("REDIRECT_URI") and (parts.fragment or value.endswith("#")):
        raise ConfigError(
            f"{setting}={value!r} has a #fragment, which a redirect URI cannot have "
            "(RFC 6749 §3.1.2).",
            f"Drop everything from '#' on: {value.partition('#')[0]!r}, and register exactly "
            "that on the console's Authorization tab.",
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

    Raises :class:`ConfigError` for a malformed setting, or one credential without the other.
    No credentials at all is not an error here: it selects the emulator; call
    :meth:`Settings.require_credentials` where real ones are needed. ``ATLASSIAN_*`` names that
    are no setting end up in ``Settings.unknown``, with a guess at what was meant.
    """
    env_path = Path(env_file).expanduser().absolute() if env_file else None
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    unknown: list[UnknownSetting] = []
    if env_path is not None and env_path.is_file():
        from_file = _read_env_file(env_path)
        values.update({k: v for k, v in from_file.items() if k in SETTINGS and v is not None})
        unknown += _unknown(from_file, str(env_path))
    values.update({k: v for k, v in environ.items() if k in SETTINGS})
    unknown += _unknown(environ, "the environment")
    workspace = env_path.parent if env_path is not None else Path.cwd()

    def get(name: str) -> str | None:
        value = values.get(name)
        return value.strip() if value and value.strip() else None

    secret = get("ATLASSIAN_CLIENT_SECRET")
    scopes = get("ATLASSIAN_SCOPES")
    token_store = get("ATLASSIAN_TOKEN_STORE")
    world = get("ATLASSIAN_EMULATOR_WORLD")
    settings = Settings(
        client_id=get("ATLASSIAN_CLIENT_ID"),
        client_secret=Secret(secret) if secret else None,
        redirect_uri=get("ATLASSIAN_REDIRECT_URI") or DEFAULT_REDIRECT_URI,
        scopes=parse_scopes(scopes) if scopes else tuple(DEFAULT_SCOPES.split()),
        auth_base_url=(get("ATLASSIAN_AUTH_BASE_URL") or DEFAULT_AUTH_BASE_URL).rstrip("/"),
        api_base_url=(get("ATLASSIAN_API_BASE_URL") or DEFAULT_API_BASE_URL).rstrip("/"),
        token_store=(workspace / Path(token_store).expanduser() if token_store
                     else workspace / STATE_FOLDER / "tokens.json"),
        site=get("ATLASSIAN_SITE"),
        grant=get("ATLASSIAN_GRANT") or "authorization_code",
        env_file=env_path,
        emulator_world=workspace / Path(world).expanduser() if world else None,
        unknown=tuple(unknown),
    )
    return settings.validate() if validate else settings


def _read_env_file(path: Path) -> dict[str, str | None]:
    try:
        return dotenv_values(path)
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
            f"{error.start}).",
            f"Save {path.name} as UTF-8 (most editors: 'Save with encoding'), or recreate it "
            "from .env.example.",
        ) from None
    except OSError as error:
        raise ConfigError(f"Cannot read {path}: {error.strerror or error}.",
                          f"Check that {path} is a readable file.") from None


def load_workspace_settings(
    workspace: str | os.PathLike[str], *, validate: bool = True
) -> Settings:
    """The settings of a workspace folder: its ``.env``, the environment winning (the
    workspace rule of this module's docstring; the notebooks and the batch runner use it)."""
    return load_settings(Path(workspace).expanduser().resolve() / ".env", validate=validate)


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
