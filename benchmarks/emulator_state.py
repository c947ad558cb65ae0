"""The emulator's token endpoint with a shared state file, as the state fills (issue 13, item 4).

    PYTHONPATH=src .venv/bin/python benchmarks/emulator_state.py [--refreshes 2200] [--window 200]

One emulator on the real loopback servers, one httpx connection, a refresh-grant loop: each
answer's refresh token is sent in the next request, as a client that persists its rotation. It
prints the rate in memory and with a state file, and, with the state file, the rate over the
``window`` refreshes after the first 100 and after the first 2,000, their ratio, and the state
file's size at both points.

The emulator's clock runs 600 times faster than the wall clock (one emulated hour every six
seconds). A rotated refresh token must be kept whole for its 10-minute reuse leeway, so a loop
that refreshed 2,000 times within ten emulated minutes would measure a state that cannot be
smaller; a real client refreshes about once an access-token lifetime (an hour). At this speed
the leeway passes in about a second of the loop.

Ratios within one run are what to compare; the absolute rates depend on the machine. Not a
timed test.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

SPEEDUP = 600.0


def fast_clock():
    """A ``time.time``-like clock that runs :data:`SPEEDUP` times faster than the wall."""
    origin = time.time()
    return lambda: origin + (time.time() - origin) * SPEEDUP


def refresh_loop(state_path: Path | None, refreshes: int) -> tuple[list[float], list[int]]:
    """Each refresh's wall time, and the state file's size after each (0 in memory)."""
    import httpx

    from atlassian_playbook import connection
    from atlassian_playbook.emulator import Emulator
    from atlassian_playbook.target import Target, emulator_settings

    with Emulator(auto_consent=True, state_path=state_path, clock=fast_clock()) as emu:
        settings = emulator_settings(emu, token_store=Path(tempfile.mkdtemp()) / "tokens.json")
        target = Target(settings, emu)
        refresh = connection.login(target, browser="headless",
                                   show_url=lambda url: None).entry.tokens.refresh_token.reveal()
        client = emu.default_client
        secret = client.client_secret.reveal()
        times, sizes = [], []
        with httpx.Client(base_url=emu.auth_base_url) as http:
            for _ in range(refreshes):
                started = time.perf_counter()
                response = http.post("/oauth/token", json={
                    "grant_type": "refresh_token", "client_id": client.client_id,
                    "client_secret": secret, "refresh_token": refresh})
                response.raise_for_status()
                refresh = response.json()["refresh_token"]
                times.append(time.perf_counter() - started)
                # Outside the timed request: the file's size once this refresh is answered.
                sizes.append(state_path.stat().st_size if state_path else 0)
        return times, sizes


def rate(times: list[float], start: int, window: int) -> float:
    """Refreshes per second over ``window`` refreshes from the ``start``-th on."""
    return window / sum(times[start:start + window])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refreshes", type=int, default=2200)
    parser.add_argument("--window", type=int, default=200)
    args = parser.parse_args()
    late = args.refreshes - args.window
    if late < 100 + args.window:
        parser.error("--refreshes must leave a late window after the early one")
    for name in list(os.environ):
        if name.startswith("ATLASSIAN_"):  # the emulator only, whatever the shell says
            del os.environ[name]
    memory, _ = refresh_loop(None, 100 + args.window)
    with tempfile.TemporaryDirectory() as folder:
        shared, sizes = refresh_loop(Path(folder) / "emulator-state.json", args.refreshes)
    in_memory = rate(memory, 100, args.window)
    early, later = rate(shared, 100, args.window), rate(shared, late, args.window)
    print(f"emulator token endpoint, refresh grant loop, one httpx connection, clock x{SPEEDUP:g}"
          f" (rates over {args.window} refreshes):")
    print(f"  in memory, after 100 refreshes: {in_memory:.0f} req/s")
    print(f"  state file, after 100 refreshes: {early:.0f} req/s (file {sizes[100] / 1024:.1f} "
          f"KiB); after {late}: {later:.0f} req/s (file {sizes[late] / 1024:.1f} KiB); "
          f"late/early {later / early:.2f}x; file/memory {early / in_memory:.2f}x")


if __name__ == "__main__":
    main()
