"""The composition root: one object owns the settings, the store, the clients and the emulator."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from atlassian_playbook import connection
from atlassian_playbook.config import load_settings
from atlassian_playbook.errors import ConfigError
from atlassian_playbook.target import Target, connect, describe_settings, emulator_settings

from .conftest import loopback_callback

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "atlassian_playbook"


def _login(target: Target) -> connection.LoginResult:
    return connection.login(target, browser="headless", show_url=lambda url: None)


def test_every_client_the_target_handed_out_is_closed_with_it(emulator, tmp_path):
    settings = emulator_settings(emulator, token_store=tmp_path / "tokens.json",
                                 redirect_uri=loopback_callback(emulator))
    with Target(settings, emulator) as target:
        _login(target)
        api = target.api_client()
        api.me()  # the client is open and works
        oauth = target.oauth_client()
        oauth.http  # noqa: B018  (made on first use)
        assert not api.http.is_closed
    assert api.http.is_closed
    assert oauth._http is None or oauth._http.is_closed


def test_one_store_per_target_and_the_steps_use_it(emulator, tmp_path):
    settings = emulator_settings(emulator, token_store=tmp_path / "tokens.json",
                                 redirect_uri=loopback_callback(emulator))
    with Target(settings, emulator) as target:
        assert target.store is target.store
        result = _login(target)
        assert target.store.get(settings.client_id, result.entry.account_id).key == result.entry.key
        assert connection.refresh(target).rotated
        assert connection.verify(target).ok


def test_a_target_not_yet_connected_reads_its_store_but_hands_out_no_client(tmp_path):
    settings = load_settings(None, environ={}).replace(token_store=tmp_path / "tokens.json")
    target = Target(settings)
    assert target.kind == "emulator"
    assert "embedded Atlassian emulator" in describe_settings(settings)
    assert target.store.list() == []
    with pytest.raises(ConfigError):
        target.api_client()


def test_connect_gives_the_embedded_emulator_its_own_store_folder(tmp_path):
    settings = load_settings(None, environ={}).replace(token_store=tmp_path / "tokens.json")
    with connect(settings) as target:
        assert target.kind == "emulator"
        assert target.settings.token_store == tmp_path / "tokens.json"
        assert target.emulator.state_path == tmp_path / "emulator-state.json"


def _constructions(name: str) -> list[str]:
    """Where the package calls ``name(...)``, as ``module:line``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == name):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return found


def test_the_token_store_and_the_clients_are_built_in_the_composition_root_only():
    assert {place.split(":")[0] for place in _constructions("TokenStore")} == {"target.py"}
    assert {place.split(":")[0] for place in _constructions("OAuthClient")} <= {"target.py"}
    assert {place.split(":")[0] for place in _constructions("StoredTokenSource")} == {"target.py"}


def test_the_emulator_does_not_import_the_clients_settings():
    """It exposes URLs and registrations; ``target.emulator_settings`` makes Settings of them."""
    for path in sorted((PACKAGE / "emulator").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = {alias.name for alias in node.names}
                assert (node.module or "") not in ("config", "target"), path.name
                assert "Settings" not in names, path.name
