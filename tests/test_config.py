import os
import stat

import pytest
from dotenv import dotenv_values

from atlassian_playbook.config import load_settings, load_workspace_settings, save_settings
from atlassian_playbook.errors import ConfigError
from atlassian_playbook.redact import Secret

SECRET = "cfg-secret-value-0123456789abcdef"


def test_environment_wins_over_env_file(tmp_path):
    env = tmp_path / ".env"
    env.write_text("ATLASSIAN_CLIENT_ID=from-file\nATLASSIAN_SITE=acme\n")
    settings = load_settings(env, environ={"ATLASSIAN_CLIENT_ID": "from-env",
                                           "ATLASSIAN_CLIENT_SECRET": SECRET})
    assert settings.client_id == "from-env"
    assert settings.site == "acme"


def test_secret_is_masked_in_repr_and_str(tmp_path):
    settings = load_settings(None, environ={"ATLASSIAN_CLIENT_ID": "id",
                                            "ATLASSIAN_CLIENT_SECRET": SECRET})
    assert isinstance(settings.client_secret, Secret)
    shown = (repr(settings), str(settings), f"{settings.client_secret}", str(settings.describe()))
    for text in shown:
        assert SECRET not in text
    assert settings.client_secret.reveal() == SECRET


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ("ATLASSIAN_CLIENT_ID=abc\n", "ATLASSIAN_CLIENT_SECRET"),
        ("ATLASSIAN_CLIENT_SECRET=s3cr3t-value\n", "ATLASSIAN_CLIENT_ID"),
        ("ATLASSIAN_CLIENT_ID=abc\nATLASSIAN_CLIENT_SECRT=s3cr3t-value\n",
         "ATLASSIAN_CLIENT_SECRET"),
    ],
)
def test_one_credential_without_the_other_is_an_error_naming_the_missing_one(
    tmp_path, env, missing
):
    (tmp_path / ".env").write_text(env)
    with pytest.raises(ConfigError) as raised:
        load_settings(tmp_path / ".env", environ={})
    assert raised.value.setting == missing
    assert missing in raised.value.message
    assert "s3cr3t-value" not in raised.value.one_line()
    if "SECRT" in env:  # the typo is named as the likely cause
        assert "Rename ATLASSIAN_CLIENT_SECRT to ATLASSIAN_CLIENT_SECRET" in raised.value.hint


def test_unknown_atlassian_names_are_reported_with_a_guess(tmp_path):
    (tmp_path / ".env").write_text("ATLASSIAN_SCOPE=read:me\nOTHER_TOOL=x\n")
    settings = load_settings(tmp_path / ".env",
                             environ={"ATLASSIAN_REDIRECT_URL": "x", "ATLASSIAN_API_TOKEN": "y",
                                      "ATLASSIAN_PLAYBOOK_DEBUG": "1"})
    found = {u.name: u for u in settings.unknown}
    assert set(found) == {"ATLASSIAN_SCOPE", "ATLASSIAN_REDIRECT_URL", "ATLASSIAN_API_TOKEN"}
    assert found["ATLASSIAN_SCOPE"].suggestion == "ATLASSIAN_SCOPES"
    assert found["ATLASSIAN_SCOPE"].source == str(tmp_path / ".env")
    assert found["ATLASSIAN_REDIRECT_URL"].suggestion == "ATLASSIAN_REDIRECT_URI"
    assert found["ATLASSIAN_REDIRECT_URL"].source == "the environment"
    assert "did you mean ATLASSIAN_REDIRECT_URI?" in found["ATLASSIAN_REDIRECT_URL"].message
    assert found["ATLASSIAN_API_TOKEN"].suggestion is None


def test_the_token_store_is_the_workspace_s_whatever_the_target(tmp_path):
    (tmp_path / ".env").write_text(f"ATLASSIAN_CLIENT_ID=id\nATLASSIAN_CLIENT_SECRET={SECRET}\n")
    real = load_settings(tmp_path / ".env", environ={})
    assert real.is_atlassian and real.has_credentials
    assert real.token_store == tmp_path / ".playbook" / "tokens.json"
    assert load_workspace_settings(tmp_path).token_store == real.token_store
    emulated = load_settings(tmp_path / "other" / ".env", environ={})
    assert emulated.token_store == tmp_path / "other" / ".playbook" / "tokens.json"
    relative = load_settings(tmp_path / ".env", environ={"ATLASSIAN_TOKEN_STORE": "keep/t.json"})
    assert relative.token_store == tmp_path / "keep" / "t.json"


def test_an_env_file_that_is_not_utf8_gets_its_own_error(tmp_path):
    (tmp_path / ".env").write_bytes(b"ATLASSIAN_SITE=caf\xe9\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(tmp_path / ".env", environ={})
    assert "not UTF-8" in raised.value.message and "0xe9" in raised.value.message
    assert "UTF-8" in raised.value.hint


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://127.0.0.1:70000/callback", "not a TCP port"),
        ("http://127.0.0.1:0/callback", "not a TCP port"),
        ("http://localhost:8765/callback#done", "#fragment"),
        ("http://localhost:8765/callback#", "#fragment"),
    ],
)
def test_a_redirect_uri_with_a_bad_port_or_a_fragment_is_refused(uri, expected):
    with pytest.raises(ConfigError) as raised:
        load_settings(None, environ={"ATLASSIAN_REDIRECT_URI": uri})
    assert expected in raised.value.message
    assert "non-loopback" not in raised.value.one_line()


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
