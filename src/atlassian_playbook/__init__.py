"""atlassian-oauth-playbook: from "I need to talk to Atlassian Cloud" to a verified OAuth 2.0 (3LO)
connection, with a strict loopback emulator of Atlassian as the default target.

The public names below are imported on first use, so ``import atlassian_playbook`` stays close
to the cost of ``import httpx`` (papermill, ipywidgets and jupyter load only where used).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    # configuration and secrets
    "Settings": "config",
    "load_settings": "config",
    "save_settings": "config",
    "Secret": "redact",
    "redact": "redact",
    # errors
    "PlaybookError": "errors",
    "ConfigError": "errors",
    "OAuthError": "errors",
    "ApiError": "errors",
    # the flow
    "OAuthClient": "oauth",
    "ApiClient": "api",
    "TokenStore": "tokens",
    "TokenSet": "tokens",
    "connect": "target",
    "login": "connection",
    "verify": "connection",
    "refresh": "connection",
    "build_checklist": "checklist",
    "Emulator": "emulator",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover
    from .api import ApiClient
    from .checklist import build_checklist
    from .config import Settings, load_settings, save_settings
    from .connection import login, refresh, verify
    from .emulator import Emulator
    from .errors import ApiError, ConfigError, OAuthError, PlaybookError
    from .oauth import OAuthClient
    from .redact import Secret, redact
    from .target import connect
    from .tokens import TokenSet, TokenStore


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'atlassian_playbook' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
