"""A pytest plugin: the Atlassian emulator as a fixture, for testing your own integration.

Installed with the package and registered through the ``pytest11`` entry point, it is opt-in:
it adds an option, an ini key and a marker, and does nothing else unless a test asks for one
of its fixtures. Importing it imports neither httpx nor the emulator; they load when a fixture
first runs.

* ``atlassian_emulator``: a started :class:`~atlassian_playbook.emulator.Emulator` with
  auto-consent (``/authorize`` redirects straight to the callback with ``code`` and
  ``state``), stopped after the test. ``connection_info()`` gives the client id, callback URLs,
  both base URLs and the authorize and token URLs; the client secret is
  ``emu.default_client.client_secret.reveal()``.
* ``atlassian_emulator_env``: the same app as ``ATLASSIAN_*`` environment values
  (``CLIENT_ID``, ``CLIENT_SECRET``, ``AUTH_BASE_URL``, ``API_BASE_URL``, ``REDIRECT_URI``),
  for code under test that reads its configuration from the environment. It returns a dict and
  leaves ``os.environ`` alone: set them with ``monkeypatch.setenv``.

The world (users, sites, apps, seeded data) is, first found: the test's
``@pytest.mark.atlassian_world("world.yaml")`` (relative to the test file's folder), the
``--atlassian-emulator-world FILE`` option (relative to the current directory), the
``atlassian_emulator_world`` ini key (relative to the ini file), or the default world.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from .emulator import Emulator

__all__ = ["atlassian_emulator", "atlassian_emulator_env"]

_OPTION = "--atlassian-emulator-world"
_INI = "atlassian_emulator_world"
_MARKER = "atlassian_world"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("atlassian-emulator", "Atlassian emulator (atlassian-oauth-playbook)")
    group.addoption(
        _OPTION,
        dest=_INI,
        metavar="FILE",
        default=None,
        help="world file (YAML or JSON) for the atlassian_emulator fixture",
    )
    parser.addini(
        _INI,
        "world file for the atlassian_emulator fixture, relative to the ini file",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(path): the world file the atlassian_emulator fixture loads for this test "
        "(relative to the test file's folder)",
    )


def _world_for(request: pytest.FixtureRequest) -> str | Path | dict | None:
    marker = request.node.get_closest_marker(_MARKER)
    if marker is not None:
        if len(marker.args) != 1 or marker.kwargs:
            raise pytest.UsageError(f"@pytest.mark.{_MARKER} takes one argument: a world file.")
        world = marker.args[0]
        if isinstance(world, dict):
            return world
        return Path(request.node.path).parent / world
    config = request.config
    option = config.getoption(_INI)
    if option:
        return config.invocation_params.dir / option
    ini = config.getini(_INI)
    if ini:
        base = config.inipath.parent if config.inipath else config.rootpath
        return base / ini
    return None


@pytest.fixture
def atlassian_emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """A started emulator of auth.atlassian.com and api.atlassian.com on loopback, with
    auto-consent, over this test's world; stopped after the test."""
    from .emulator import Emulator

    with Emulator(auto_consent=True, world=_world_for(request)) as emulator:
        yield emulator


@pytest.fixture
def atlassian_emulator_env(atlassian_emulator: Emulator) -> dict[str, str]:
    """``ATLASSIAN_*`` values pointing at the test's emulator and its default app (the secret
    in clear: keep it out of anything the test writes)."""
    info = atlassian_emulator.connection_info()
    return {
        "ATLASSIAN_CLIENT_ID": info["client_id"],
        "ATLASSIAN_CLIENT_SECRET": atlassian_emulator.default_client.client_secret.reveal(),
        "ATLASSIAN_AUTH_BASE_URL": info["auth_base_url"],
        "ATLASSIAN_API_BASE_URL": info["api_base_url"],
        "ATLASSIAN_REDIRECT_URI": info["callback_urls"][0],
    }
