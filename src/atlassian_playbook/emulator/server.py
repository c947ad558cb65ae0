"""``serve()``: run the emulator in the foreground (``atlassian-playbook emulator``)."""

from __future__ import annotations

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
    out: TextIO | None = None,
) -> int:
    """Serve until interrupted (Ctrl-C). ``port``: the auth server's, the api server gets
    ``port + 1``; 0 picks free ports. Prints the base URLs and the demo client id; the secret
    is never printed, only where to read it.
    """
    from ._core import Emulator

    out = out or sys.stdout
    emu = Emulator(auto_consent=auto_consent, state_path=state_path)
    emu.start(auth_port=port, api_port=port + 1 if port else 0)
    client = emu.default_client
    where = f"GET {emu.auth_base_url}/_emulator/clients/{client.client_id}"
    if emu.state_path is not None:
        where += f" (or the state file {emu.state_path})"
    lines = [
        "Atlassian emulator (loopback only; not the real Atlassian)",
        f"  ATLASSIAN_AUTH_BASE_URL={emu.auth_base_url}",
        f"  ATLASSIAN_API_BASE_URL={emu.api_base_url}",
        f"  ATLASSIAN_CLIENT_ID={client.client_id}",
        f"  client secret: {where}",
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
