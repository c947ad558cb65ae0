"""The ``parity`` marker's fixture: one flow, run against the real Atlassian or the emulator.

With ``ATLASSIAN_PARITY=1``, real credentials (environment or the repository's ``.env``) and a
consented connection in the token store, a test marked ``@pytest.mark.parity`` runs against
Atlassian and records the shapes it saw into ``tests/parity/snapshots/NAME.json``. Otherwise
(the default, and always in CI) it runs against a fresh emulator, and wherever a committed
snapshot exists the emulator's shapes must match it: each real run makes the emulator truer.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from atlassian_playbook.api import ApiClient
from atlassian_playbook.config import DEFAULT_SCOPES, load_settings
from atlassian_playbook.emulator import Emulator
from atlassian_playbook.errors import TokenStoreError
from atlassian_playbook.parity import Record, Recorder, diff, login_headless
from atlassian_playbook.target import Target, connect
from atlassian_playbook.tokens import TokenStore

SNAPSHOTS = Path(__file__).parent / "snapshots"
REPOSITORY = Path(__file__).resolve().parents[2]
# Read at import, before the autouse clean_environ fixture removes every ATLASSIAN_* variable.
_ENVIRON = {name: value for name, value in os.environ.items() if name.startswith("ATLASSIAN_")}


class ParityRun:
    """A logged-in target; :meth:`record` runs a flow and records or checks its shapes."""

    def __init__(self, target: Target, snapshots: Path = SNAPSHOTS) -> None:
        self.target = target
        self.snapshots = snapshots
        self.records: dict[str, Record] = {}

    @contextlib.contextmanager
    def record(self, name: str) -> Iterator[ApiClient]:
        """An API client over the stored connection whose every answer is recorded. On exit,
        against Atlassian the shapes become snapshot ``name``; against the emulator they are
        compared with that snapshot when one is committed."""
        recorder = Recorder.for_settings(self.target.settings)
        with recorder.recording(), self.target.api_client() as api:
            yield api
        shapes = self.records[name] = recorder.record(self.target.kind)
        snapshot = self.snapshots / f"{name}.json"
        if self.target.kind == "atlassian":
            shapes.save(snapshot)
        elif snapshot.exists():
            differences = diff(Record.load(snapshot), shapes)
            if differences:
                pytest.fail(f"the emulator differs from Atlassian's snapshot {snapshot.name}:\n"
                            + "\n".join(d.to_text() for d in differences), pytrace=False)


def _atlassian() -> Target:
    settings = load_settings(REPOSITORY / ".env", environ=_ENVIRON)
    if not (settings.has_credentials and settings.is_atlassian):
        pytest.fail("ATLASSIAN_PARITY=1 records from the real Atlassian: set ATLASSIAN_CLIENT_ID "
                    "and ATLASSIAN_CLIENT_SECRET of your app (environment or .env) and leave the "
                    "base URLs at Atlassian's.", pytrace=False)
    try:
        TokenStore(settings.token_store).get(settings.client_id)
    except TokenStoreError as error:
        pytest.fail(f"ATLASSIAN_PARITY=1 needs one consented connection: {error.message} "
                    "Run `atlassian-playbook login` first.", pytrace=False)
    return connect(settings)


@pytest.fixture
def parity_recorder(request) -> Iterator[ParityRun]:
    """The target of a ``@pytest.mark.parity`` test: Atlassian with ATLASSIAN_PARITY=1, else an
    emulator the fixture logs in to headless (auto consent)."""
    if request.node.get_closest_marker("parity") is None:
        pytest.fail("parity_recorder serves tests marked @pytest.mark.parity", pytrace=False)
    if _ENVIRON.get("ATLASSIAN_PARITY") == "1":
        yield ParityRun(_atlassian())
        return
    with Emulator(auto_consent=True) as emulator:
        target, _ = login_headless(emulator, DEFAULT_SCOPES.split())
        yield ParityRun(target)
