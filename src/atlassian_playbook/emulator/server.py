"""``serve()``: run the emulator in the foreground (``atlassian-playbook emulator``)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TextIO

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
    ``port + 1``; 0 picks free ports. Prints what a client under test needs (base URLs, the
    app's client id and callback URLs, the world's users and sites), as text or, with
    ``as_json``, one JSON line; the secret is never printed, only where to read it.
    """
    from ._core import Emulator

    out = out or sys.stdout
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
