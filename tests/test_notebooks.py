"""The playbook's notebooks headless (papermill, real kernels) against the emulator, and the
notebook facade (``atlassian_playbook.playbook``) in process.

Each profile's whole sequence runs once per test worker (one kernel per notebook) in a
workspace of its own; the tests then assert on what each notebook recorded and left on disk.
The failure paths each run the one notebook that must stop, and check it stopped at the right
cell with the hint in that cell's output.
"""

from __future__ import annotations

import ast
import html
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import atlassian_playbook.playbook as pb
from atlassian_playbook import target
from atlassian_playbook.config import save_settings
from atlassian_playbook.emulator import Emulator
from atlassian_playbook.errors import ConfigError, NotebookParameterError, PlaybookError
from atlassian_playbook.execute import NOTEBOOKS_DIR, run_notebook
from atlassian_playbook.manifest import notebooks
from atlassian_playbook.playbook import _results
from atlassian_playbook.presets import preset

from .conftest import assert_no_secrets
from .notebook_helpers import (
    CLERK_CALLBACK,
    MERGE_CALLBACK,
    PROFILE_PARAMETERS,
    SEQUENCE,
    Played,
    cell_source,
    cell_text,
    env_values,
    failing_cell,
    free_port,
    new_workspace,
    play,
    run,
    store_path,
)

ACTIVE_TEST_ACCOUNT = "5be24ad8b1653240376955d2"
CLOSED_TEST_ACCOUNT = "5be24ba3f91c106033269289"

_played: dict[str, Played] = {}


@pytest.fixture(
    params=[
        pytest.param(p, marks=[pytest.mark.notebook, pytest.mark.xdist_group(f"notebooks-{p}")])
        for p in PROFILE_PARAMETERS
    ]
)
def played(request, tmp_path_factory) -> Played:
    """The profile's sequence, played once per worker process (not once per test)."""
    profile = request.param
    if profile not in _played:
        _played[profile] = play(profile, tmp_path_factory.mktemp(f"workspace-{profile}"))
    return _played[profile]


# --- the notebooks as committed ---------------------------------------------------------------


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def test_the_sequence_is_complete_and_committed_without_outputs():
    assert [p.stem for p in _notebooks()] == list(SEQUENCE)
    for path in _notebooks():
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c["outputs"] and c["execution_count"] is None for c in code), path.name
        assert nb["cells"][0]["cell_type"] == "markdown", path.name
        assert cell_source(nb["cells"][0]).startswith("# "), path.name
        assert code[0]["metadata"].get("tags") == ["parameters"], path.name
        assert nb["cells"].index(code[0]) == 1, f"{path.name}: parameters come right after title"
        first = cell_source(code[1])
        assert "session = pb.start(" in first and "parameters={" in first, path.name


# --- the notebooks against the manifest (data/notebooks.toml) --------------------------------

CHECKOUT = Path(__file__).resolve().parents[1]
_NEXT = re.compile(r"\*\*Next:\*\*\s*\[([^\]]+)\]\(([^)]+)\)")


def test_every_notebook_is_in_the_manifest_and_every_entry_is_a_notebook():
    assert NOTEBOOKS_DIR == CHECKOUT / "notebooks"  # a checkout runs its own notebooks/
    committed = sorted(p.name for p in (CHECKOUT / "notebooks").glob("*.ipynb"))
    listed = [nb.file for nb in notebooks()]
    assert len(set(listed)) == len(listed), "a notebook is listed twice"
    assert sorted(listed) == committed
    assert listed == sorted(listed), "the manifest's order is the files' numbering"


def _parameters_cell(nb: dict) -> dict[str, object]:
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    assignments = ast.parse(cell_source(cell)).body
    return {a.targets[0].id: ast.literal_eval(a.value) for a in assignments}


def test_each_notebook_has_the_manifest_title_and_exactly_its_parameters():
    for entry in notebooks():
        nb = json.loads(entry.path.read_text())
        assert cell_source(nb["cells"][0]).splitlines()[0] == (
            f"# {entry.position} · {entry.title}"), entry.file
        declared = _parameters_cell(nb)
        assert list(declared) == [p.name for p in entry.parameters], entry.file
        assert declared == entry.defaults, entry.file
        assert all(p.meaning for p in entry.parameters), entry.file
        assert entry.summary and entry.records, entry.file


def test_next_links_follow_the_manifest_order():
    sequence = notebooks()
    for entry, following in zip(sequence, [*sequence[1:], None], strict=True):
        nb = json.loads(entry.path.read_text())
        markdown = "\n".join(cell_source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
        links = _NEXT.findall(markdown)
        if following is None:
            assert links == [], f"{entry.file}: the last notebook has no Next: link"
        else:
            assert links == [(following.name, following.file)], entry.file


def _first_table(markdown: str, heading: str) -> list[list[str]]:
    """The cells of the first Markdown table under ``heading`` (header rows left out)."""
    lines = markdown.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_overview_table_lists_the_manifest_after_itself(played):
    """Notebook 01 shows the sequence from the manifest, so it cannot go stale."""
    assert played.records("01-overview")["sequence"]["notebooks"] == [
        nb.name for nb in notebooks()[1:]]
    executed = json.loads(Path(played.outcomes["01-overview"].output_path).read_text())
    [cell] = [c for c in executed["cells"] if cell_source(c) == "pb.sequence(session)"]
    shown = "".join(cell_source_of(o) for o in cell["outputs"])
    for nb in notebooks()[1:]:
        assert html.escape(nb.summary) in shown, nb.name


def cell_source_of(output: dict) -> str:
    """The Markdown (or plain text) an output shows."""
    data = output.get("data", {})
    text = data.get("text/markdown", data.get("text/plain", ""))
    return "".join(text) if isinstance(text, list) else text


def test_readme_lists_the_manifest_in_order():
    """The README's table keeps its own wording; its notebooks are the manifest's, in order."""
    readme = (CHECKOUT / "README.md").read_text()
    names = [row[0].strip("`") for row in _first_table(readme, "## The playbook")]
    assert names == [nb.name for nb in notebooks()]


def test_notebook_code_cells_only_call_the_playbook():
    """No function definitions, loops, try/except or branches in notebooks: that logic lives
    in the package, where it is tested."""
    forbidden = ("def ", "for ", "while ", "try:", "except", "if ", "lambda", "class ")
    for path in _notebooks():
        nb = json.loads(path.read_text())
        code = [cell_source(c) for c in nb["cells"] if c["cell_type"] == "code"]
        parameters, steps = code[0], code[1:]
        for line in parameters.splitlines():
            assert line.startswith("#") or " = " in line, f"{path.name}: {line!r}"
        documented = parameters.splitlines()
        for index, line in enumerate(documented):
            if not line.startswith("#"):
                assert index and documented[index - 1].startswith("#"), (
                    f"{path.name}: parameter {line!r} has no comment"
                )
        assert steps[0].startswith("import atlassian_playbook.playbook as pb\n"), path.name
        for source in steps:
            for word in forbidden:
                assert word not in source, f"{path.name}: {word!r} in {source!r}"
            body = source.replace("import atlassian_playbook.playbook as pb", "")
            assert "import " not in body, f"{path.name}: only the playbook is imported"
            assert "pb." in source, f"{path.name}: a code cell that calls no step: {source!r}"


def test_overview_draws_the_flow_as_mermaid():
    nb = json.loads((NOTEBOOKS_DIR / "01-overview.ipynb").read_text())
    markdown = "\n".join(cell_source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "```mermaid\nsequenceDiagram" in markdown
    for step in ("/oauth/token", "accessible-resources", "refresh_token", "state"):
        assert step in markdown


def test_create_app_states_the_one_shared_app_policy():
    nb = json.loads((NOTEBOOKS_DIR / "02-create-app.ipynb").read_text())
    markdown = "\n".join(cell_source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "**one** distributable" in markdown and "Sharing" in markdown
    assert "does not comply" in markdown and "2026-01-01" in markdown


# --- the whole sequence, per profile ----------------------------------------------------------


def test_every_notebook_runs_headless_against_the_emulator(played):
    failed = {n: o.failure.to_dict() for n, o in played.outcomes.items() if not o.ok}
    assert not failed
    assert list(played.outcomes) == list(SEQUENCE)
    for outcome in played.outcomes.values():
        assert outcome.records["target"] == "emulator"


def test_each_notebook_records_what_the_manifest_says(played):
    for entry in notebooks():
        assert set(played.records(entry.name)) == set(entry.records), entry.file


def test_overview_detects_the_emulator_and_the_workspace_store(played):
    overview = played.records("01-overview")["overview"]
    assert overview["target"] == "emulator"
    assert overview["token_store"] == str(store_path(played.workspace))
    assert overview["connections"] == 0


def test_checklist_ticks_persist_and_partner_callback_goes_to_env(played):
    checklist = played.records("02-create-app")["checklist"]
    credentials = played.records("02-create-app")["credentials"]
    assert checklist["profile"] == played.profile
    assert "ONE distributable" in checklist["policy"]
    progress = json.loads(
        (played.workspace / ".playbook" / f"checklist-{played.profile}.json").read_text()
    )
    assert sorted(progress) == sorted(checklist["done"])
    assert credentials["secret_set"] and credentials["target"] == "emulator"
    redirect = env_values(played.workspace)["ATLASSIAN_REDIRECT_URI"]
    if played.profile == "merge":
        assert checklist["done"] and len(checklist["done"]) == checklist["total"]
        assert checklist["open_required"] == []
        assert checklist["callback_url"] == redirect == MERGE_CALLBACK
        assert checklist["placeholders"] == []  # every value given as a parameter
    elif played.profile == "clerk":
        assert checklist["done"] == ["clerk-redirect-uri", "create-app"]
        assert checklist["callback_url"] == redirect == CLERK_CALLBACK
    else:
        assert checklist["done"] == []
        assert checklist["callback_url"] == redirect
        assert redirect.startswith("http://127.0.0.1:")
    assert "ATLASSIAN_CLIENT_SECRET" not in env_values(played.workspace)


def test_scopes_are_saved_to_env(played):
    scopes = played.records("03-select-scopes")["scopes"]
    saved = env_values(played.workspace)["ATLASSIAN_SCOPES"].split()
    expected = {
        "custom": ["read:me", "read:jira-user", "read:confluence-space.summary", "offline_access"],
        "merge": list(preset("merge")),
        # the preset plus offline_access=True
        "clerk": ["read:me", "report:personal-data", "offline_access"],
    }[played.profile]
    assert scopes["scopes"] == saved == expected
    assert scopes["offline_access"]
    assert "missing-offline-access" not in scopes["warnings"]
    if played.profile == "merge":
        assert "Personal data reporting API" in scopes["console_apis"]


def test_notebook_02_registers_the_callback_and_04_rehearses_the_traps(played):
    registration = played.records("02-create-app")["callback_registration"]
    configured = env_values(played.workspace)["ATLASSIAN_REDIRECT_URI"]
    assert registration["callback_url"] == configured
    assert configured in registration["registered"]
    rehearsals = {r["name"]: r for r in played.records("04-token-exchange")["rehearsals"]}
    assert set(rehearsals) >= {"callback-mismatch", "app-not-shared", "api-not-added",
                               "site-admin", "product-not-on-site", "per-site-scopes"}
    assert all(r["as_expected"] for r in rehearsals.values()), rehearsals
    assert "Invalid authorization code" in rehearsals["callback-mismatch"]["seen"]


def test_tokens_are_stored_in_the_workspace_with_mode_0600(played):
    login = played.records("04-token-exchange")["login"]
    store = played.records("04-token-exchange")["token_store"]
    path = store_path(played.workspace)
    assert store == {
        "path": str(path),
        "mode": "0600",
        "private": True,
        "entries": 1,
        "accounts": [login["account_id"]],
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (
        stat.S_IMODE((played.workspace / ".playbook" / "emulator-state.json").stat().st_mode)
        == 0o600
    )
    assert login["headless"] and login["consent"] == "auto"
    assert login["refresh_token_issued"] is True
    assert login["granted_scopes"] == env_values(played.workspace)["ATLASSIAN_SCOPES"].split()
    # The login's entry, by its key (notebook 10 stores a service account's beside it).
    entry = json.loads(path.read_text())["entries"][f"{login['client_id']}:{login['account_id']}"]
    assert entry["client_id"] == login["client_id"]
    if played.profile == "merge":
        assert login["account_id"] is None  # Merge's scopes do not include read:me
    else:
        assert login["account_id"] == "5b10ac8d82e05b22cc7d4ef5"


def test_verification_table_compares_requested_and_granted_per_site(played):
    verify = played.records("05-verify-access")["verify"]
    assert verify["ok"]
    checks = {c["name"]: c["status"] for c in verify["checks"]}
    requested = env_values(played.workspace)["ATLASSIAN_SCOPES"].split()
    assert verify["requested_scopes"] == requested
    assert {row["scope"] for row in verify["scope_table"]} >= set(requested)
    assert all(row["requested"] for row in verify["scope_table"] if row["scope"] in requested)
    assert checks["settings vs consent"] == "ok"
    if played.profile == "clerk":
        # identity only: no site is listed, and that is expected, not a failure
        assert verify["sites"] == []
        assert checks["accessible resources"] == "skipped"
        assert checks["/me"] == "ok"
        assert checks["Jira myself"] == checks["Confluence spaces"] == "skipped"
        return
    (site,) = verify["sites"]
    assert site["name"] == "acme" and len(site["id"]) == 36
    assert verify["chosen_site"]["id"] == site["id"]
    column = "granted on acme"
    site_rows = [r for r in verify["scope_table"] if r.get(column) is not None]
    assert site_rows and all(r[column] for r in site_rows if r["requested"])
    assert checks["accessible resources"] == checks["scopes"] == "ok"
    assert checks["Jira myself"] == checks["Confluence spaces"] == "ok"
    assert checks["/me"] == ("skipped" if played.profile == "merge" else "ok")


def test_refresh_rotates_and_reuse_revokes_the_grant_then_recovers(played):
    records = played.records("06-refresh-lifecycle")
    refresh, reuse = records["refresh"], records["reuse"]
    assert refresh["rotated"]
    assert refresh["previous_refresh_token"] != refresh["new_refresh_token"]
    assert refresh["previous_refresh_token"].startswith("«secret:")
    assert reuse["demonstrated"] and reuse["old_token_rejected"] and reuse["grant_revoked"]
    assert reuse["recovered"]
    assert reuse["new_refresh_token"] not in (
        refresh["previous_refresh_token"],
        refresh["new_refresh_token"],
    )
    timeline = {row["what"]: row for row in records["timeline"]}
    assert {"access token", "refresh token: inactivity", "a rotated refresh token"} <= set(timeline)
    # 09 refreshed the recovered grant: the chain goes on from the new consent
    health = played.records("11-health-check")["health"]
    assert health["healthy"] and health["rotated"]


def test_partner_handoff_names_the_fields_and_checks_the_callback(played):
    handoff = played.records("07-partner-handoff")["handoff"]
    fields = {
        "merge": ["OAuth Client Id", "OAuth Client Secret", "OAuth Redirect URI"],
        "clerk": [
            "Client ID",
            "Client Secret",
            "Authorized redirect URI",
            "Scopes (extra; enter them in Clerk too)",
        ],
        "custom": [],  # no partner: nothing to hand off
    }[played.profile]
    assert handoff["fields"] == fields
    assert handoff["callback_matches"] and handoff["registered_on_app"]
    assert handoff["configured_callback"] == env_values(played.workspace)["ATLASSIAN_REDIRECT_URI"]
    if played.profile == "merge":
        assert handoff["expected_callback"] == MERGE_CALLBACK
    if played.profile == "clerk":
        assert handoff["expected_callback"] == CLERK_CALLBACK
        assert handoff["extra_scopes"] == ["report:personal-data"]  # offline_access: not asked


def test_webhooks_deliver_signed_then_stop_after_30_days_then_come_back(played):
    records = played.records("08-webhooks")
    opened = records["webhooks_open"]
    assert opened["url_is_loopback"] is True
    # Merge's documented set holds every scope the webhooks and the issue need, so its own
    # connection is used; the other profiles' lack some, so the rehearsal consents its own.
    assert opened["rehearsal_connection"] is (played.profile != "merge")
    registered = records["webhook_registered"]
    assert registered["jql"] == f"project = {opened['project']}"
    assert records["webhook_delivery"]["verified"] == 1
    expired = records["webhook_expired"]
    assert expired["deliveries"] == 0 and expired["expired"] == 1
    assert records["webhook_refreshed"]["verified"] == 1
    assert records["webhooks_closed"]["deleted"] == 1


def test_personal_data_report_per_profile(played):
    records = played.records("09-personal-data")
    first, repeat = records["personal_data"], records["personal_data_repeat"]
    if played.profile == "custom":  # the only profile without report:personal-data
        assert first["status"] == repeat["status"] == "skipped"
        assert "report:personal-data" in first["reason"]
        return
    assert first["status"] == "reported"
    # with read:me (clerk) the signed-in account is stored and reported too, first; then the
    # emulated world's stored accounts: Grace (profile changed since the copy), Charles (closed)
    me = played.records("04-token-exchange")["login"]["account_id"]
    grace, charles = "5c3f9b2e1d4a7e0012a4b6c8", "5d7a2c9e4b1f3a0018c6e2d4"
    stored = [a for a in (me, grace, charles, ACTIVE_TEST_ACCOUNT, CLOSED_TEST_ACCOUNT) if a]
    assert first["reported"] == stored
    assert first["closed"] == [charles, CLOSED_TEST_ACCOUNT] and first["updated"] == [grace]
    assert first["actions"] == {charles: "erase", CLOSED_TEST_ACCOUNT: "erase",
                                grace: "refresh or erase"}
    assert first["cycle_period"] == "P7D" and first["requests"] == 1
    assert first["rate_limited"] == 1  # the rehearsed 429 was waited out and the batch resent
    assert repeat["status"] == "skipped within cycle" and repeat["requests"] == 0
    assert repeat["skipped"] == first["reported"]
    state = json.loads((played.workspace / ".playbook" / "reporting-cycle.json").read_text())
    assert set(state["accounts"]) == set(stored)


def test_health_check_records_a_healthy_connection(played):
    health = played.records("11-health-check")["health"]
    assert health["healthy"] and health["refreshed"] and health["verified"]
    assert all(status != "FAILED" for status in health["checks"].values())
    # Which connection, as structured fields (verify --json's): what the batch report keys on.
    # A preset without read:me has no account id; clerk's is identity-only (no site).
    if health["account_id"]:
        assert health["account"]["account_id"] == health["account_id"]
        assert health["account"]["name"] == "Ada Lovelace"
    else:
        assert health["account"] is None
    if played.profile == "clerk":
        assert health["site"] is None
    else:
        assert health["site"]["cloud_id"] and health["site"]["url"].startswith("https://")


def test_no_secret_reaches_any_executed_notebook_or_env(played):
    assert played.secrets, "the sequence must have produced tokens and a client secret"
    assert len(played.secrets) >= 6  # a client secret and several generations of tokens
    notebooks = [o.output_path for o in played.outcomes.values()]
    env_lines = (played.workspace / ".env").read_text().splitlines()
    env_without_secret = "\n".join(
        line for line in env_lines if not line.startswith("ATLASSIAN_CLIENT_SECRET=")
    )
    side_files = [
        p
        for p in (played.workspace / ".playbook").iterdir()
        if p.is_file()
        and p.name not in ("tokens.json", "emulator-state.json")
        and not p.name.endswith(".lock")
    ]
    assert_no_secrets([*notebooks, env_without_secret, *side_files], played.secrets)
    for path in notebooks:  # metadata included: parameters, widget state
        nb = json.loads(path.read_text())
        assert "widgets" not in nb["metadata"]
        assert set(nb["metadata"]["papermill"]["parameters"]) <= {
            "workspace",
            *PROFILE_PARAMETERS[played.profile].get(path.stem, {}),
        }


# --- failure paths ------------------------------------------------------------------------------

failures = pytest.mark.xdist_group("notebooks-failures")


@pytest.fixture
def external(tmp_path):
    """An emulator run by the test, its app registered for a loopback callback."""
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    with Emulator(auto_consent=True) as emu:
        yield emu, redirect


def _external_workspace(
    path: Path, emu: Emulator, redirect: str, client_id: str, secret: str, **settings: str
) -> Path:
    return new_workspace(
        path,
        ATLASSIAN_CLIENT_ID=client_id,
        ATLASSIAN_CLIENT_SECRET=secret,
        ATLASSIAN_REDIRECT_URI=redirect,
        ATLASSIAN_AUTH_BASE_URL=emu.auth_base_url,
        ATLASSIAN_API_BASE_URL=emu.api_base_url,
        **settings,
    )


def _assert_stopped_at(outcome, call: str, *texts: str) -> str:
    assert not outcome.ok
    cell = failing_cell(outcome)
    assert call in cell_source(cell), cell_source(cell)
    shown = cell_text(cell)
    for text in texts:
        assert text in shown, f"{text!r} not in the failing cell's output:\n{shown}"
    assert outcome.failure.hint and outcome.failure.hint in shown
    return shown


@pytest.mark.notebook
@failures
def test_wrong_secret_stops_at_the_exchange_with_the_invalid_client_hint(tmp_path, external):
    emu, redirect = external
    client = emu.register_client(redirect_uris=(redirect,))
    workspace = _external_workspace(
        tmp_path / "ws", emu, redirect, client.client_id, "not-the-secret-0123456789"
    )
    outcome = run("04-token-exchange", workspace)
    assert outcome.failure.ename == "InvalidClient"
    _assert_stopped_at(
        outcome, "pb.exchange_tokens", "401 access_denied", "Consenting again will not help"
    )
    assert outcome.records["target"] == "custom"
    assert not store_path(workspace).exists()


@pytest.mark.notebook
def test_paste_mode_completes_headless_and_the_cli_sees_the_notebook_s_login(tmp_path):
    """Notebook 04 with callback="paste" against the auto-consenting emulator (nothing listens
    on the callback: the browser lands there), then `atlassian-playbook verify` from the same
    folder finds that login (one workspace rule for both)."""
    workspace = new_workspace(tmp_path / "ws")
    outcome = run("04-token-exchange", workspace, callback="paste", rehearse=False)
    assert outcome.ok, outcome.failure
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATLASSIAN_")}
    verify = subprocess.run([sys.executable, "-m", "atlassian_playbook", "verify", "--json"],
                            cwd=workspace, env=env, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["account"]["account_id"] == "5b10ac8d82e05b22cc7d4ef5"


@pytest.mark.notebook
@failures
def test_denied_consent_stops_at_the_exchange_with_what_to_do(tmp_path):
    # consent="deny": the embedded emulator refuses at once, as a user pressing Deny.
    workspace = new_workspace(tmp_path / "ws")
    outcome = run("04-token-exchange", workspace, consent="deny")
    assert outcome.failure.ename == "ConsentDenied"
    _assert_stopped_at(
        outcome, "pb.exchange_tokens", "denied", "press Accept on Atlassian's consent screen"
    )
    assert not store_path(workspace).exists()


@pytest.mark.notebook
@failures
def test_scope_of_an_api_not_added_fails_at_consent(tmp_path, external):
    emu, redirect = external
    client = emu.register_client(redirect_uris=(redirect,), apis=("identity", "jira"))
    workspace = _external_workspace(
        tmp_path / "ws",
        emu,
        redirect,
        client.client_id,
        client.client_secret.reveal(),
        ATLASSIAN_SCOPES="read:me read:confluence-space.summary offline_access",
    )
    outcome = run("04-token-exchange", workspace)
    assert outcome.failure.ename == "CallbackError"
    _assert_stopped_at(outcome, "pb.exchange_tokens", "400", "API on the console's Permissions tab")


@pytest.mark.notebook
@failures
def test_scope_added_to_env_after_consent_fails_verification(tmp_path):
    workspace = new_workspace(
        tmp_path / "ws", ATLASSIAN_SCOPES="read:me read:confluence-space.summary offline_access"
    )
    assert run("04-token-exchange", workspace).ok
    save_settings(
        {"ATLASSIAN_SCOPES": "read:me read:jira-user read:confluence-space.summary offline_access"},
        workspace / ".env",
    )
    outcome = run("05-verify-access", workspace)
    _assert_stopped_at(
        outcome,
        "pb.verify_access",
        "settings vs consent",
        "read:jira-user",
        "Scope changes need a new consent",
    )
    checks = {c["name"]: c for c in outcome.records["verify"]["checks"]}
    assert checks["settings vs consent"]["status"] == "FAILED"
    assert checks["Jira myself"]["status"] == "skipped"  # not granted: skipped, with the reason
    assert "read:jira-user" in checks["Jira myself"]["detail"]


@pytest.mark.notebook
@failures
def test_unknown_scope_stops_at_the_scope_cell_with_did_you_mean(tmp_path):
    workspace = new_workspace(tmp_path / "ws")
    outcome = run("03-select-scopes", workspace, scopes="read:me read:jira-usr")
    assert outcome.failure.ename == "ConfigError"
    _assert_stopped_at(outcome, "pb.select_scopes", "read:jira-usr", "did you mean")


def test_a_secret_parameter_is_refused_before_papermill_runs(tmp_path):
    out = tmp_path / "out.ipynb"
    with pytest.raises(NotebookParameterError):
        run_notebook(
            "04-token-exchange.ipynb",
            out,
            {"workspace": str(tmp_path), "client_secret": "s3cr3t-value-0123"},
        )
    with pytest.raises(NotebookParameterError):
        run_notebook(
            "04-token-exchange.ipynb",
            out,
            {"workspace": str(tmp_path), "note": "s3cr3t-value-0123"},
            known_secrets=["s3cr3t-value-0123"],
        )
    assert not out.exists()


def test_start_refuses_secret_parameters_even_without_run_notebook(tmp_path):
    new_workspace(
        tmp_path, ATLASSIAN_CLIENT_ID="client-1", ATLASSIAN_CLIENT_SECRET="configured-secret-0123"
    )
    with pytest.raises(NotebookParameterError):
        pb.start(tmp_path, parameters={"workspace": str(tmp_path), "client_secret": "x"})
    with pytest.raises(NotebookParameterError):  # the configured secret under another name
        pb.start(
            tmp_path, parameters={"workspace": str(tmp_path), "app_name": "configured-secret-0123"}
        )


# --- the facade in process (no kernel) ----------------------------------------------------------


@pytest.fixture
def session(tmp_path, monkeypatch):
    """A session on the embedded emulator in a fresh workspace; records collected."""
    recorded: dict = {}
    monkeypatch.setattr(_results, "record", lambda name, value: recorded.__setitem__(name, value))
    monkeypatch.setattr(_results, "show", lambda *objects: None)
    new_workspace(tmp_path)
    session = pb.start(tmp_path)
    session.recorded = recorded
    yield session
    for key, emulator in list(target._embedded.items()):
        if str(key[0]).startswith(str(tmp_path)):
            emulator.stop()
            del target._embedded[key]


def test_start_keeps_the_emulator_world_and_tokens_in_the_workspace(session, tmp_path):
    assert session.uses_emulator and session.target.kind == "emulator"
    assert session.settings.token_store == tmp_path / ".playbook" / "tokens.json"
    assert session.target.emulator.state_path == tmp_path / ".playbook" / "emulator-state.json"


def test_a_notebook_session_warns_about_a_misspelt_setting(tmp_path, monkeypatch):
    monkeypatch.setattr(_results, "show", lambda *objects: None)
    new_workspace(tmp_path, ATLASSIAN_SCOPE="read:me")
    shown = pb.start(tmp_path)._repr_markdown_()
    assert "**Target:** the embedded Atlassian emulator" in shown.splitlines()[0]
    assert "ATLASSIAN_SCOPE in " in shown and "did you mean ATLASSIAN_SCOPES?" in shown


def test_a_half_filled_env_stops_the_notebook_session(tmp_path):
    new_workspace(tmp_path, register=False, ATLASSIAN_CLIENT_ID="client-1")
    with pytest.raises(ConfigError, match="ATLASSIAN_CLIENT_SECRET is not"):
        pb.start(tmp_path)


def test_start_refuses_a_missing_workspace(tmp_path):
    with pytest.raises(PlaybookError, match="does not exist"):
        pb.start(tmp_path / "nowhere")


def test_select_scopes_offline_access_adds_or_removes_it(session):
    pb.select_scopes(session, preset="clerk", offline_access=True)
    assert session.settings.scopes == ("read:me", "report:personal-data", "offline_access")
    pb.select_scopes(session, scopes="read:me read:jira-user offline_access", offline_access=False)
    assert session.settings.scopes == ("read:me", "read:jira-user")
    assert "missing-offline-access" in session.recorded["scopes"]["warnings"]
    pb.select_scopes(session, preset="minimal", offline_access=None)
    assert session.settings.scopes == preset("minimal")


def test_select_scopes_checks_the_console_apis(session):
    pb.select_scopes(
        session, scopes="read:me read:confluence-space.summary", console_apis="identity, jira"
    )
    assert "api-not-added" in session.recorded["scopes"]["warnings"]
    with pytest.raises(ConfigError, match="commas"):
        pb.select_scopes(session, scopes="read:me,read:jira-user")
    with pytest.raises(ConfigError) as raised:
        pb.select_scopes(session, scopes="read:me read:confluence-space")
    assert "did you mean read:confluence-space.summary" in raised.value.hint


def test_select_scopes_defaults_to_the_profile_preset(session):
    pb.show_checklist(session, "merge")
    assert session.profile.name == "merge"
    pb.select_scopes(session)
    assert session.settings.scopes == preset("merge")


def test_show_checklist_ticks_persist_and_unknown_steps_are_refused(session):
    pb.show_checklist(session, "custom", completed_steps="create-app, offline-access")
    markdown = pb.show_checklist(session, "custom")._repr_markdown_()
    assert session.recorded["checklist"]["done"] == ["create-app", "offline-access"]
    assert "- [x] **1. Create an OAuth 2.0 integration**" in markdown
    assert "- [ ] **" in markdown and "- [x]" not in markdown.split("authorization-callback")[1]
    with pytest.raises(PlaybookError, match="Unknown checklist step"):
        pb.show_checklist(session, "custom", completed_steps="create-ap")
    with pytest.raises(PlaybookError, match="Unknown profile"):
        pb.show_checklist(session, "jira")


def test_save_credentials_writes_env_0600_and_switches_the_target(session, tmp_path):
    pb.save_credentials(session, "real-client-id", "real-secret-0123456789")
    env = (tmp_path / ".env").read_text()
    assert "ATLASSIAN_CLIENT_SECRET='real-secret-0123456789'" in env
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    assert session.target.kind == "atlassian" and not session.uses_emulator
    # one workspace rule whatever the target: the CLI run from this folder finds these logins
    assert session.settings.token_store == tmp_path / ".playbook" / "tokens.json"
    with pytest.raises(PlaybookError, match="Both"):
        pb.save_credentials(session, "", "x")


def test_personal_data_is_skipped_without_the_scope_unless_required(session):
    pb.exchange_tokens(session)
    pb.personal_data_report(session)
    assert session.recorded["personal_data"]["status"] == "skipped"
    with pytest.raises(PlaybookError, match="report:personal-data") as raised:
        pb.personal_data_report(session, require=True)
    assert "03-select-scopes" in raised.value.hint


def test_partner_handoff_fails_when_the_callback_is_not_the_partners(session):
    with pytest.raises(PlaybookError, match="not merge's") as raised:
        pb.partner_handoff(session, "merge")
    assert "Authorization tab" in raised.value.hint
    assert session.recorded["handoff"]["callback_matches"] is False


def test_health_check_raises_with_the_hint_when_the_grant_was_revoked(session):
    pb.exchange_tokens(session)
    session.target.emulator.revoke()
    with pytest.raises(PlaybookError) as raised:
        pb.health_check(session)
    health = session.recorded["health"]
    assert health["healthy"] is False and health["hint"] == raised.value.hint
    assert "login" in raised.value.hint


def test_consent_modes_are_checked(session):
    with pytest.raises(PlaybookError, match="consent mode"):
        pb.exchange_tokens(session, consent="yes")
