"""``serve()``: run the emulator in the foreground (``atlassian-playbook emulator``)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TextIO

from ..errors import ConfigError

__all__ = ["serve"]


def serve(
    port: int = 0,
    auto_consent: bool = False,
    state_path: str | Path | None = None,
    *,
    world: str | Path | None = None,
    as_json: bool = False,
    out: TextIO | None = None,
) -> int:
    """Serve until interrupted (Ctrl-C). ``port``: the auth server's, the api server gets
    ``port + 1`` (so at most 65534); 0 picks free ports. Prints what a client under test needs
    (base URLs, the app's client id and callback URLs, the world's users and sites, the admin
    token for ``/_emulator/*``), as text or, with ``as_json``, one JSON line; the client secret
    is never printed, only where to read it.

    A port that cannot be used, a broken world or state file: a
    :class:`~atlassian_playbook.errors.PlaybookError` before anything listens.
    """
    from ._core import Emulator
    from ._http import check_port

    out = out or sys.stdout
    check_port(port)
    if port == 65535:
        raise ConfigError("Port 65535 leaves no port for the emulator's API server, which "
                          "takes the next one (port + 1).",
                          "Use --port 0 (any free ports) or a port from 1024 to 65534.")
    emu = Emulator(auto_consent=auto_consent, state_path=state_path, world=world)
    emu.start(auth_port=port, api_port=port + 1 if port else 0)
    info = emu.connection_info()
    if as_json:
        print(json.dumps(info, sort_keys=True), file=out, flush=True)
    else:
        lines = [
            "Atlassian emulator (loopback only; not the real Atlassian)",
            f"  ATLASSIAN_AUTH_BASE_URL={info['auth_base_url']}",
            f"  ATLASSIAN_API_BASE_URL={info['api_base_url']}",
            f"  ATLASSIAN_CLIENT_ID={info['client_id']}",
            f"  client secret: {info['client_secret']}",
            f"  admin token (Authorization: Bearer, for /_emulator/*): {info['admin_token']}",
            "  callback URLs (Authorization tab): " + ", ".join(info["callback_urls"]),
            "  users: " + ", ".join(u["nickname"] for u in info["users"]),
            "  sites: " + ", ".join(f"{s['name']} ({'+'.join(s['products'])})"
                                    for s in info["sites"]),
            f"  consent: {'automatic' if auto_consent else 'a consent page in the browser'}",
            "Press Ctrl-C to stop.",
        ]
        print("\n".join(lines), file=out, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0
