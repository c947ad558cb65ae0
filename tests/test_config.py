import os
import stat

import pytest
from dotenv import dotenv_values

from atlassian_playbook.config import load_settings, save_settings
from atlassian_playbook.errors import ConfigError
from atlassian_playbook.redact import Secret

SECRET = "cfg-secret-value-0123456789abcdef"


def test_environment_wins_over_env_file(tmp_path):
    env = tmp_path / ".env"
    env.write_text("ATLASSIAN_CLIENT_ID=from-file\nATLASSIAN_SITE=acme\n")
    settings = load_settings(env, environ={"ATLASSIAN_CLIENT_ID": "from-env"})
    assert settings.client_id == "from-env"
    assert settings.site == "acme"


def test_secret_is_masked_in_repr_and_str(tmp_path):
    settings = load_settings(None, environ={"ATLASSIAN_CLIENT_SECRET": SECRET})
    assert isinstance(settings.client_secret, Secret)
    shown = (repr(settings), str(settings), f"{settings.client_secret}", str(settings.describe()))
    for text in shown:
        assert SECRET not in text
    assert settings.client_secret.reveal() == SECRET


def test_no_credentials_selects_the_emulator():
    assert not load_settings(None, environ={}).has_credentials
    both = {"ATLASSIAN_CLIENT_ID": "id", "ATLASSIAN_CLIENT_SECRET": SECRET}
    assert load_settings(None, environ=both).has_credentials


def test_missing_client_id_names_the_setting():
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={"ATLASSIAN_CLIENT_SECRET": SECRET}).require_credentials()
    assert info.value.setting == "ATLASSIAN_CLIENT_ID"
    assert "Settings tab" in info.value.hint


@pytest.mark.parametrize("uri", ["127.0.0.1:8765/callback", "/callback", "ftp://x/y", "callback"])
def test_redirect_uri_must_be_absolute(uri):
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={"ATLASSIAN_REDIRECT_URI": uri})
    assert info.value.setting == "ATLASSIAN_REDIRECT_URI"


def test_scope_string_with_commas_is_refused_with_the_fixed_string():
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={"ATLASSIAN_SCOPES": "read:me, offline_access"})
    assert info.value.setting == "ATLASSIAN_SCOPES"
    assert "'read:me offline_access'" in info.value.hint


def test_unknown_scope_is_refused_with_a_suggestion():
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={"ATLASSIAN_SCOPES": "read:jira-usr offline_access"})
    assert "read:jira-usr" in info.value.message
    assert "read:jira-user" in info.value.hint


def test_save_settings_keeps_comments_other_keys_and_is_0600(tmp_path):
    env = tmp_path / ".env"
    env.write_text("# my comment\nOTHER_KEY=keep me\nATLASSIAN_CLIENT_ID=old\n\n# tail\n")
    os.chmod(env, 0o644)
    save_settings(
        {"ATLASSIAN_CLIENT_ID": "new-id", "ATLASSIAN_CLIENT_SECRET": Secret(SECRET),
         "ATLASSIAN_SCOPES": "read:me offline_access"},
        env,
    )
    text = env.read_text()
    assert "# my comment" in text and "# tail" in text
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    values = dotenv_values(env)
    assert values["OTHER_KEY"] == "keep me"
    assert values["ATLASSIAN_CLIENT_ID"] == "new-id"
    assert values["ATLASSIAN_CLIENT_SECRET"] == SECRET
    assert text.index("ATLASSIAN_CLIENT_ID") < text.index("# tail")  # updated in place
    settings = load_settings(env, environ={})
    assert settings.client_secret.reveal() == SECRET
    assert settings.scopes == ("read:me", "offline_access")


def test_save_settings_round_trips_awkward_values_and_removes_keys(tmp_path):
    env = tmp_path / ".env"
    awkward = "it's a \\ tricky 'value' # not a comment"
    save_settings({"ATLASSIAN_CLIENT_SECRET": awkward, "ATLASSIAN_SITE": "acme"}, env)
    assert dotenv_values(env)["ATLASSIAN_CLIENT_SECRET"] == awkward
    save_settings({"ATLASSIAN_SITE": None}, env)
    assert "ATLASSIAN_SITE" not in dotenv_values(env)


def test_save_settings_refuses_unknown_keys(tmp_path):
    with pytest.raises(ConfigError):
        save_settings({"ATLASSIAN_CLIENT_SECRT": "x"}, tmp_path / ".env")
    assert not (tmp_path / ".env").exists()
