"""The profile registry: every bundled profile against FACTS.md, a user's own file through the
CLI, validation errors that name the file and the key, and no partner in the code.

Adding a partner is its data file plus one row of ``BUNDLED``.
"""

import ast
import io
import json
import re
import tokenize
from pathlib import Path

import pytest

from atlassian_playbook import profiles as registry
from atlassian_playbook.checklist import build_checklist, is_placeholder
from atlassian_playbook.config import DEFAULT_REDIRECT_URI
from atlassian_playbook.errors import ConfigError, ProfileError
from atlassian_playbook.presets import preset, preset_names
from atlassian_playbook.profiles import (
    get_profile,
    load_profile,
    profile_names,
    resolve_profile,
)

from .test_cli import cli_env, run_cli

SRC = Path(__file__).resolve().parents[1] / "src" / "atlassian_playbook"

# FACTS.md, "Partner profiles" (Merge's partner-credentials set, in the order it lists them).
MERGE_SCOPES = (
    "read:confluence-space.summary", "read:confluence-content.summary", "search:confluence",
    "read:confluence-user", "read:confluence-groups", "readonly:content.attachment:confluence",
    "read:jira-work", "manage:jira-project", "manage:jira-configuration", "read:jira-user",
    "write:jira-work", "manage:jira-webhook", "read:space:confluence",
    "read:audit-log:confluence", "read:configuration:confluence", "report:personal-data",
    "offline_access",
)  # fmt: skip

# One row per bundled profile, from FACTS.md: name, the partner as prose names it (None: the
# playbook is the client), callback rule and URL, the documented scope set (None: yours), and
# whether it stores personal data (None: the public facts do not say).
BUNDLED = [
    ("custom", None, "yours", None, None, False),
    ("merge", "Merge", "fixed", "https://app.merge.dev/oauth/callback", MERGE_SCOPES, True),
    # Clerk: read:me at minimum; the personal data declaration its guide asks for confirms the
    # reporting API, so report:personal-data too.
    ("clerk", "Clerk", "partner-shows", None, ("read:me", "report:personal-data"), True),
    ("nango", "Nango", "fixed", "https://api.nango.dev/oauth/callback", None, None),
    ("paragon", "Paragon", "fixed", "https://passport.useparagon.com/oauth", None, None),
    ("unified-to", "Unified.to", "fixed", "https://api.unified.to/oauth/code", None, None),
    ("postman", "Postman", "fixed", "https://oauth.pstmn.io/v1/callback", None, False),
    # A service account (flow = "client-credentials"): no console app, so no callback.
    ("service-account", None, "yours", None, ("read:me", "read:jira-work", "read:jira-user"),
     False),
]


def test_the_table_has_one_row_per_bundled_profile():
    assert sorted(row[0] for row in BUNDLED) == list(profile_names())


@pytest.mark.parametrize("name, partner, rule, url, documented, stored", BUNDLED)
def test_bundled_profile_is_what_the_facts_say(name, partner, rule, url, documented, stored):
    profile = get_profile(name)
    assert (profile.name, profile.partner) == (name, partner)
    assert (profile.callback.rule, profile.callback.url) == (rule, url)
    assert profile.scopes.documented == documented
    assert profile.stores_personal_data is stored
    if documented is not None:
        assert name in preset_names() and preset(name) == documented

    checklist = build_checklist(name)
    assert checklist.profile == name
    ids = [s.id for s in checklist.steps]
    assert len(ids) == len(set(ids)) and {s.id for s in profile.steps} <= set(ids)
    assert all(s.id.startswith(f"{name}-") for s in profile.steps)
    if not profile.has_console_steps:  # client credentials: none of the console's steps
        assert not {"create-app", "authorization-callback", "distribution-sharing"} & set(ids)
        return
    callback = checklist.step("authorization-callback").values["Callback URL"]
    if rule == "fixed":
        assert callback == url
    elif rule == "partner-shows":
        assert is_placeholder(callback)
    else:
        assert callback == DEFAULT_REDIRECT_URI
    assert checklist.scopes[: len(profile.scopes.required)] == profile.scopes.required
    declaration = checklist.step("distribution-personal-data").values["Personal data declaration"]
    if stored and profile.personal_data_when:  # a condition the partner puts on it
        assert declaration == f"Yes, if {profile.personal_data_when}; otherwise No"
    else:
        assert declaration == {True: "Yes", False: "No"}.get(stored) or is_placeholder(declaration)


@pytest.mark.parametrize("name", [row[0] for row in BUNDLED if row[5] is None])
def test_where_the_facts_stop_the_checklist_says_check_the_partners_dashboard(name):
    profile = get_profile(name)
    checklist = build_checklist(name)
    declaration = checklist.step("distribution-personal-data")
    assert is_placeholder(declaration.values["Personal data declaration"])
    assert f"check in {profile.partner}'s dashboard" in declaration.detail
    partner_steps = [s for s in checklist.steps if s.tab == "Partner"]
    assert partner_steps
    unlabelled = [k for s in partner_steps for k in s.values if "check the field's name" in k]
    assert unlabelled, "unknown field labels are marked, never guessed"
    assert all(f"{profile.partner}'s dashboard" in k for k in unlabelled)


def test_a_partners_known_labels_are_used_as_they_are():
    last = build_checklist("merge").steps[-1]
    assert list(last.values) == ["OAuth Client Id", "OAuth Client Secret", "OAuth Redirect URI"]
    assert not any("check the field's name" in k for k in last.values)


# What playbook.py wrote per profile before the registry (PARTNER_CALLBACKS, PROFILE_PRESETS,
# _HANDOFF_LABELS, partner_handoff's destinations and extra-scopes row): the profiles must give
# the same, so the playbook can read them instead.
PLAYBOOK_HAD = {
    "merge": ("https://app.merge.dev/oauth/callback", "merge",
              ("OAuth Client Id", "OAuth Client Secret", "OAuth Redirect URI"),
              "Merge's partner credentials page", None),
    "clerk": (None, "clerk", ("Client ID", "Client Secret", "Authorized redirect URI"),
              "Clerk's Atlassian social connection (custom credentials)",
              "Scopes (extra; enter them in Clerk too)"),
    "custom": (None, None, ("Client ID", "Client Secret", "Callback URL"),
               "your integration's settings", None),
}  # fmt: skip


@pytest.mark.parametrize("name", PLAYBOOK_HAD)
def test_the_playbooks_partner_tables_can_be_read_from_the_profile(name):
    callback, preset_name, labels, where, extra_row = PLAYBOOK_HAD[name]
    profile = get_profile(name)
    assert profile.callback.expected() == callback
    assert (preset_name is not None) == (profile.scopes.documented is not None)
    assert tuple(profile.handoff.label(f) for f in ("client_id", "client_secret",
                                                    "redirect_uri")) == labels  # fmt: skip
    assert profile.handoff.destination == where
    if extra_row is None:
        assert "extra_scopes" not in profile.handoff_fields
    else:
        assert "extra_scopes" in profile.handoff_fields
        label = profile.handoff.label("extra_scopes")
        assert f"{label} (extra; enter them in {profile.partner} too)" == extra_row
        assert profile.scopes.extra(["read:me", "offline_access"]) == ("offline_access",)


def test_a_callback_the_partner_shows_is_the_configured_one_unless_loopback():
    callback = get_profile("clerk").callback
    assert callback.expected(configured="http://127.0.0.1:8765/callback") is None
    shown = "https://clerk.acme.example/v1/oauth_callback"
    assert callback.expected(configured=shown) == shown
    assert callback.expected("https://given.example/cb", shown) == "https://given.example/cb"
    assert get_profile("custom").callback.expected(configured=shown) is None
    assert [n for n in profile_names() if not get_profile(n).callback.belongs_to_partner] == [
        "custom", "service-account"
    ]


def test_unknown_profile_name_lists_the_known_ones():
    with pytest.raises(ProfileError) as info:
        get_profile("nang")
    assert "Did you mean nango?" in info.value.hint
    for name in profile_names():
        assert name in info.value.hint
    assert isinstance(info.value, ConfigError)


def test_a_profile_without_a_documented_set_is_no_preset_and_says_so():
    with pytest.raises(ConfigError) as info:
        preset("nango")
    assert "documents no scope set" in info.value.message and "minimal" in info.value.hint
    assert "nango" not in preset_names()


def test_no_profile_shadows_the_catalogs_own_preset():
    assert "minimal" not in profile_names()


# --- a user's own profile file ------------------------------------------------------------

ACME = """\
format = 1
title = "Acme Connect"
partner = "Acme"
audience = "This checklist is for the vendor using Acme: one shared app for every customer."

[scopes]
documented = ["read:me", "read:jira-work", "offline_access"]
offline_access_via = "Acme's scope field"

[callback]
rule = "fixed"
url = "https://connect.acme.example/oauth/callback"

[handoff]
destination = "Acme's OAuth settings"

[handoff.labels]
client_id = "App key"
client_secret = "App secret"

[personal_data]
stored = false
why = "Acme keeps account ids only."

[[steps]]
id = "acme-credentials"
at = "end"
title = "In Acme, enter the app key and secret"
fields = ["client_id", "client_secret", "redirect_uri"]
"""


def write(tmp_path: Path, text: str, name: str = "acme.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_users_own_profile_file_drives_the_cli_checklist(tmp_path):
    path = write(tmp_path, ACME)
    result = run_cli(["checklist", "--profile-file", str(path), "--json"], cli_env(tmp_path),
                     tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["profile"] == "acme"
    assert data["callback_url"] == "https://connect.acme.example/oauth/callback"
    assert data["scopes"] == ["read:me", "read:jira-work", "offline_access"]
    last = data["steps"][-1]
    assert last["id"] == "acme-credentials"
    assert list(last["values"]) == [
        "App key", "App secret", "Redirect URI (check the field's name in Acme's dashboard)"
    ]  # fmt: skip
    assert "Acme Connect" in run_cli(["checklist", "--profile-file", str(path)],
                                     cli_env(tmp_path), tmp_path).stdout  # fmt: skip


def test_the_cli_names_the_file_and_key_of_a_broken_profile(tmp_path):
    path = write(tmp_path, ACME.replace("rule = ", "rul = "))
    result = run_cli(["checklist", "--profile-file", str(path)], cli_env(tmp_path), tmp_path)
    assert result.returncode == 1
    assert str(path) in result.stderr and "callback.rul" in result.stderr
    assert "Did you mean 'rule'?" in result.stderr


def test_the_cli_lists_and_shows_profiles(tmp_path):
    env = cli_env(tmp_path)
    listed = run_cli(["profiles", "list", "--json"], env, tmp_path)
    assert [p["name"] for p in json.loads(listed.stdout)] == list(profile_names())
    shown = run_cli(["profiles", "show", "--file", str(write(tmp_path, ACME)), "--json"], env,
                    tmp_path)  # fmt: skip
    assert json.loads(shown.stdout)["callback"]["url"].startswith("https://connect.acme")
    assert run_cli(["profiles", "show", "custom"], env, tmp_path).stdout.startswith("#")


def test_resolve_profile_prefers_the_file_and_defaults_to_custom(tmp_path):
    path = write(tmp_path, ACME)
    assert resolve_profile("merge", path).name == "acme"
    assert resolve_profile().name == resolve_profile(None, "").name == "custom"


@pytest.mark.parametrize(
    "change, key, hint",
    [
        (("title = ", "titel = "), "titel", "Did you mean 'title'?"),
        (('audience = "This checklist is for the vendor using Acme: one shared app for every '
          'customer."\n', ""), "audience", "Add it"),
        (("stored = false", "stored = 'no'"), "personal_data.stored", 'true, false or "unknown"'),
        (('at = "end"', 'at = "last"'), "steps[0].at", "start, end"),
        (('at = "end"', "at = 1"), "steps[0].at", "Write it as a string"),
        (('"read:jira-work"', '"read:jira-wrok"'), "scopes.documented", "read:jira-work"),
        (('rule = "fixed"', 'rule = "fix"'), "callback.rule", "Did you mean 'fixed'?"),
        (('url = "https', 'url = "http'), "callback.url", "https"),
        (('"client_secret", "redirect_uri"', '"secret"'), "steps[0].fields", "client_secret"),
        (("[handoff]\n", "[handof]\n"), "handof", "Did you mean 'handoff'?"),
    ],
)
def test_a_broken_profile_names_file_and_key_and_says_how_to_fix(tmp_path, change, key, hint):
    assert change[0] in ACME
    path = write(tmp_path, ACME.replace(*change))
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert info.value.message.startswith(f"{path}: {key} "), info.value.message
    assert info.value.key == key and info.value.path == str(path)
    assert hint in info.value.hint, info.value.hint


def test_invalid_toml_and_missing_files_name_the_file(tmp_path):
    with pytest.raises(ProfileError) as info:
        load_profile(write(tmp_path, 'title = "unterminated\n'))
    assert str(tmp_path / "acme.toml") in info.value.message and "line 1" in info.value.message
    with pytest.raises(ProfileError) as info:
        load_profile(tmp_path / "absent.toml")
    assert "absent.toml" in info.value.message and "profiles show custom" in info.value.hint


# --- no partner in the code ---------------------------------------------------------------



def _code_text(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string literal that is not a docstring, and every comment."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    found = [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and id(node) not in docstrings
    ]  # fmt: skip
    found += [
        (tok.start[0], tok.string)
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    ]
    return found


def partner_literals(files, root: Path = SRC) -> list[str]:
    """Where a bundled partner's name, display name or callback host appears in code."""
    partners = [get_profile(n) for n in profile_names() if get_profile(n).partner]
    hits = []
    for path in files:
        for line, text in _code_text(path):
            for p in partners:
                host = p.callback.url and p.callback.url.split("/")[2]
                if (
                    text == p.name
                    or re.search(rf"\b{re.escape(p.partner)}\b", text)
                    or (host and host in text)
                ):
                    hits.append(f"{path.relative_to(root)}:{line}: {p.name}: {text[:60]!r}")
    return hits


def test_no_partner_name_appears_as_a_literal_in_the_code():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20
    assert partner_literals(files) == []
    scripts = SRC.parents[1] / "scripts"
    assert partner_literals(sorted(scripts.glob("*.py")), root=scripts) == []


def test_the_partner_scan_finds_a_partner_written_in_code(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Docstrings may name Merge."""\n'
        'X = {"merge": 1}  # Clerk shows its own\n'
        'Y = "see https://api.nango.dev/oauth/callback"\n',
        encoding="utf-8",
    )
    hits = partner_literals([sample], root=tmp_path)
    assert sorted(h.split(": ")[1] for h in hits) == ["clerk", "merge", "nango"]


def test_registry_surface():
    assert set(registry.__all__) >= {
        "Profile", "profile_names", "get_profile", "load_profile", "resolve_profile",
    }  # fmt: skip


# --- the playbook reads the registry --------------------------------------------------------


@pytest.mark.parametrize("name", profile_names())
def test_every_bundled_profile_reaches_the_playbooks_handoff(name, tmp_path):
    """Notebooks 02 → 03 → 07 in process for each profile: the checklist, the preset, and the
    handoff's fields in the partner's words (a new data file needs no playbook code)."""
    import atlassian_playbook.playbook as pb
    from atlassian_playbook.playbook import _results
    from atlassian_playbook.playbook.partners import handoff

    from .notebook_helpers import new_workspace

    new_workspace(tmp_path)
    shown: list = []
    original = _results.record
    try:
        _results.record = lambda key, value: shown.append((key, value))
        session = pb.start(tmp_path, quiet=True)
        pb.show_checklist(session, name)
        assert session.profile.name == name
        pb.select_scopes(session)
        profile = get_profile(name)
        if profile.scopes.documented is not None:
            assert set(profile.scopes.documented) <= set(session.settings.scopes) | {
                "offline_access"}
        page = handoff(profile, session.settings, None, None)
        assert [f["field"] for f in page.fields][:3] == [
            profile.handoff.label(field) for field in ("client_id", "client_secret",
                                                       "redirect_uri")]
        assert page.where == profile.handoff.destination
    finally:
        _results.record = original
        session.target.close()


def test_a_users_own_profile_file_drives_notebooks_02_and_07(tmp_path):
    """``profile_file``: notebook 02 remembers it, 07 hands off in its words."""
    from .notebook_helpers import new_workspace, run

    workspace = new_workspace(tmp_path / "ws")
    path = write(tmp_path, ACME)
    created = run("02-create-app", workspace, profile_file=str(path), completed_steps="all")
    assert created.ok, created.failure
    assert created.records["checklist"]["profile"] == "acme"
    assert created.records["credentials"]["redirect_uri"] == (
        "https://connect.acme.example/oauth/callback")
    handed = run("07-partner-handoff", workspace)
    assert handed.records["handoff"]["profile"] == "acme"
    assert handed.records["handoff"]["fields"][:2] == ["App key", "App secret"]
