"""Parity records: what `doctor --record` keeps (shapes, never a value), what `emulator compare`
reports, and the ``parity`` marker's flow against the emulator.

No record of the real Atlassian can be made here, so the comparison is tested honestly the other
way round: the emulator's own record must compare clean, and each perturbation of a copy of it
must be reported, exactly.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from atlassian_playbook import connection
from atlassian_playbook._http import new_client, observing
from atlassian_playbook.cli import main
from atlassian_playbook.parity import (
    Record,
    Recorder,
    diff,
    json_shape,
    login_headless,
    template_path,
)
from atlassian_playbook.target import connect

from .conftest import secrets_in_store
from .parity.plugin import ParityRun


def collect_values(into: set[str]):
    """A response hook keeping every header value and JSON value (strings and numbers) the
    answers carried, except a number equal to the answer's own status (recorded by design)."""

    def walk(node, status: int) -> None:
        if isinstance(node, dict):
            for item in node.values():
                walk(item, status)
        elif isinstance(node, list):
            for item in node:
                walk(item, status)
        elif isinstance(node, str) and node:
            into.add(node)
        elif isinstance(node, int | float) and not isinstance(node, bool) and node != status:
            into.add(str(node))

    def hook(response) -> None:
        response.read()
        into.update(value for value in response.headers.values() if value)
        try:
            walk(json.loads(response.content), response.status_code)
        except ValueError:
            pass

    return {"response": [hook]}


def assert_holds_no_value(text: str, values: set[str]) -> None:
    """Beside its own header (format, version, target), a record may hold no value: a long
    one (ids, tokens, emails, URLs, dates) nowhere, a short one not as a whole string, number,
    key or path segment."""
    data = json.loads(text)
    assert set(data) == {"format", "version", "target", "exchanges"}
    text = json.dumps(data["exchanges"])
    words: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            words.update(node)
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        else:
            words.add(str(node))
            if isinstance(node, str):
                words.update(node.split("/"))

    walk(data["exchanges"])
    assert values, "the scan needs values to look for"
    for value in values:
        if len(value) >= 8:
            assert value not in text, f"a response value leaked into the record: {value[:4]}..."
        else:
            assert value not in words, f"a response value is in the record: {value!r}"


@pytest.fixture
def doctor_record(tmp_path, monkeypatch):
    """A workspace without credentials (the embedded emulator), logged in headless, and what
    `doctor --record` wrote there, with every value its answers and the token store held."""
    store = tmp_path / "store" / "tokens.json"
    monkeypatch.setenv("ATLASSIAN_TOKEN_STORE", str(store))
    # A registered callback that is not loopback: the headless browser stops at the redirect
    # (nothing binds a port, the host is never contacted).
    monkeypatch.setenv("ATLASSIAN_REDIRECT_URI", "https://app.merge.dev/oauth/callback")
    env_file = tmp_path / ".env"
    target = connect(env_file=env_file)
    connection.login(target, browser="headless", show_url=lambda url: None)
    values: set[str] = set()
    path = tmp_path / "record.json"
    with observing(collect_values(values)):
        assert main(["--env-file", str(env_file), "doctor", "--record", str(path)]) == 0
    values |= secrets_in_store(store) | {target.settings.client_secret.reveal()}
    return path, values, env_file


def test_doctor_saves_what_it_recorded_when_the_api_calls_stop(doctor_record, tmp_path,
                                                               monkeypatch, capsys):
    from atlassian_playbook import parity
    from atlassian_playbook.errors import TokenStoreError

    def stop(target, **_):
        raise TokenStoreError("The token store went away.", "Log in again.")

    monkeypatch.setattr(parity, "record_read_only_calls", stop)
    _, _, env_file = doctor_record
    partial = tmp_path / "partial.json"
    capsys.readouterr()
    assert main(["--env-file", str(env_file), "doctor", "--record", str(partial)]) == 1
    out = capsys.readouterr().out
    assert "but the API calls stopped: The token store went away.  hint: Log in again." in out
    assert {e.auth for e in Record.load(partial).exchanges} == {"none"}


def run_compare(path: Path, capsys) -> tuple[int, dict]:
    code = main(["emulator", "compare", str(path), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_path_templates_replace_ids_and_keep_the_api():
    cloud = "3f9c1a52-7d4e-4b8a-9e21-6c0d5b7a8e14"
    assert template_path(f"/ex/jira/{cloud}/rest/api/3/issue/PROJ-12") == \
        "/ex/jira/{cloudid}/rest/api/3/issue/{issuekey}"
    assert template_path("/ex/confluence/anything/wiki/api/v2/spaces/65538") == \
        "/ex/confluence/{cloudid}/wiki/api/v2/spaces/{id}"
    assert template_path("/rest/api/3/user/5b10ac8d82e05b22cc7d4ef5") == \
        "/rest/api/3/user/{accountid}"
    assert template_path(f"/rest/api/3/user/557058:{cloud}") == "/rest/api/3/user/{accountid}"
    assert template_path(f"/webhooks/{cloud}/ada@example.com") == "/webhooks/{uuid}/{email}"
    assert template_path("/oauth/token/accessible-resources") == \
        "/oauth/token/accessible-resources"


def test_json_shape_keeps_key_paths_and_types_never_values():
    body = [{"id": "abc", "scopes": ["read:me"], "avatarUrl": None, "n": 3, "x": 1.5,
             "ok": True, "avatarUrls": {"48x48": "u"}, "5b10ac8d82e05b22cc7d4ef5": {}},
            {"id": "def", "scopes": [], "avatarUrl": "https://a", "n": 4, "x": 2.5,
             "ok": False, "avatarUrls": {}, "5b10ac8d82e05b22cc7d4ef6": {}}]
    shape = {path: "|".join(sorted(types)) for path, types in json_shape(body).items()}
    assert shape == {
        "$": "array", "$[]": "object", "$[].id": "string", "$[].scopes": "array",
        "$[].scopes[]": "string", "$[].avatarUrl": "null|string", "$[].n": "integer",
        "$[].x": "number", "$[].ok": "boolean", "$[].avatarUrls": "object",
        '$[].avatarUrls["48x48"]': "string", "$[].{accountid}": "object",
    }


def test_doctor_record_holds_every_shape_it_saw_and_no_value(doctor_record):
    path, values, _ = doctor_record
    text = path.read_text()
    record = Record.load(path)
    assert record.target == "emulator"
    seen = {(e.base, e.method, e.path, e.auth, e.status) for e in record.exchanges}
    assert {  # doctor's unauthenticated probes, then verify's calls and Jira serverInfo
        ("auth", "GET", "/authorize", "none", 400),
        ("api", "GET", "/oauth/token/accessible-resources", "none", 401),
        ("api", "GET", "/oauth/token/accessible-resources", "bearer", 200),
        ("api", "GET", "/me", "bearer", 200),
        ("api", "GET", "/ex/jira/{cloudid}/rest/api/3/myself", "bearer", 200),
        ("api", "GET", "/ex/jira/{cloudid}/rest/api/3/serverInfo", "bearer", 200),
    } <= seen
    sites = next(e for e in record.exchanges if e.path.endswith("accessible-resources")
                 and e.status == 200)
    assert sites.json_types["$[].id"] == "string" and sites.body == "json"
    assert "content-type" in sites.headers and sites.headers == tuple(sorted(sites.headers))
    me = next(e for e in record.exchanges if e.path == "/me")
    assert me.json_types["$.account_id"] == "string"
    assert_holds_no_value(text, values)
    assert text == record.to_json()  # sorted and stable: what it reads back it writes again


def test_doctor_record_is_deterministic(doctor_record, tmp_path):
    path, _, env_file = doctor_record
    again = tmp_path / "again.json"
    assert main(["--env-file", str(env_file), "doctor", "--record", str(again)]) == 0
    assert again.read_bytes() == path.read_bytes()


def test_emulator_compared_with_its_own_record_has_no_differences(doctor_record, capsys):
    path, _, _ = doctor_record
    capsys.readouterr()
    assert main(["emulator", "compare", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("no differences")
    assert "Replayed 7 request(s) of a record from emulator" in out


def test_each_perturbation_of_the_record_is_reported(doctor_record, tmp_path, capsys):
    path, _, _ = doctor_record
    data = json.loads(path.read_text())
    perturbed = copy.deepcopy(data)

    def entry(path_: str, auth: str) -> dict:
        return next(e for e in perturbed["exchanges"] if e["path"] == path_ and e["auth"] == auth)

    del entry("/me", "bearer")["json"]["$.account_id"]
    entry("/oauth/token/accessible-resources", "bearer")["json"]["$[].id"] = "integer"
    myself = entry("/ex/jira/{cloudid}/rest/api/3/myself", "bearer")
    myself["headers"] = sorted([*myself["headers"], "x-only-in-the-record"])
    entry("/oauth/token/accessible-resources", "none")["status"] = 403
    changed = tmp_path / "perturbed.json"
    changed.write_text(json.dumps(perturbed))

    code, report = run_compare(changed, capsys)
    assert code == 1 and report["ok"] is False
    found = {(d["kind"], d["request"], d["status"], d["name"], d["expected"], d["actual"])
             for d in report["differences"]}
    sites_none = "GET /oauth/token/accessible-resources [api, none]"
    assert found == {
        ("extra key", "GET /me [api, bearer]", 200, "$.account_id", None, None),
        ("type mismatch", "GET /oauth/token/accessible-resources [api, bearer]", 200,
         "$[].id", "integer", "string"),
        ("missing header", "GET /ex/jira/{cloudid}/rest/api/3/myself [api, bearer]", 200,
         "x-only-in-the-record", None, None),
        ("missing status", sites_none, 403, "", None, None),
        ("extra status", sites_none, 401, "", None, None),
    }
    assert main(["emulator", "compare", str(changed)]) == 1
    text = capsys.readouterr().out
    assert "header x-only-in-the-record in the record, not from the emulator" in text
    assert "$[].id is integer in the record, string from the emulator" in text
    assert text.rstrip().endswith("5 difference(s)")


def test_compare_skips_what_it_cannot_replay(doctor_record, tmp_path, capsys):
    path, _, _ = doctor_record
    data = json.loads(path.read_text())
    model = data["exchanges"][0]
    data["exchanges"] += [
        {**model, "base": "auth", "method": "POST", "path": "/oauth/token", "auth": "none"},
        {**model, "path": "/ex/jira/{cloudid}/rest/api/3/issue/{issuekey}", "auth": "bearer"},
    ]
    extended = tmp_path / "extended.json"
    extended.write_text(json.dumps(data))
    code, report = run_compare(extended, capsys)
    assert code == 0 and report["differences"] == []
    assert {(s["request"], s["why"]) for s in report["skipped"]} == {
        ("POST /oauth/token [auth, none]", "only read-only GET requests are replayed"),
        ("GET /ex/jira/{cloudid}/rest/api/3/issue/{issuekey} [api, bearer]",
         "the emulator has no value for {issuekey}"),
    }


@pytest.mark.parametrize("content, why", [
    ('{"hello": 1}', 'is not a parity record: no "format": "parity-record"'),
    ("not json", "is not a parity record: not JSON"),
    ('{"format": "parity-record", "version": 1, "target": "x", "exchanges": [{"base": 1}]}',
     'is not a parity record: exchange 0 has no str "base"'),
    ('{"format": "parity-record", "version": 9, "target": "x", "exchanges": []}',
     "is a parity record of version 9"),
    (json.dumps({"format": "parity-record", "version": 1, "target": "x", "exchanges": [
        {"base": "elsewhere", "method": "GET", "path": "/", "auth": "none", "status": 200,
         "query": [], "headers": [], "body": "none", "json": {}}]}),
     "is not a parity record: exchange 0 has base 'elsewhere', not \"auth\" or \"api\""),
])
def test_compare_names_a_file_that_is_not_a_record(tmp_path, capsys, content, why):
    path = tmp_path / "bogus.json"
    path.write_text(content)
    assert main(["emulator", "compare", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path} {why}") and "  hint: " in err
    assert len(err.strip().splitlines()) == 1


def test_compare_of_a_missing_file_says_so(tmp_path, capsys):
    assert main(["emulator", "compare", str(tmp_path / "nope.json")]) == 1
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'nope.json'} does not exist.")


def test_a_committed_snapshot_is_enforced_against_the_emulator(emulator, tmp_path):
    """What a maintainer's real snapshot will do: pass when the shapes match, fail naming
    each difference when they do not (here the snapshot is the emulator's own, perturbed)."""
    target, _ = login_headless(emulator, ["read:me", "offline_access"])
    run = ParityRun(target, snapshots=tmp_path)
    with run.record("me") as api:
        api.me()
    assert not (tmp_path / "me.json").exists()  # the emulator never writes a snapshot
    run.records["me"].save(tmp_path / "me.json")
    with run.record("me") as api:
        api.me()
    data = json.loads((tmp_path / "me.json").read_text())
    data["exchanges"][0]["json"]["$.only_at_atlassian"] = "string"
    (tmp_path / "me.json").write_text(json.dumps(data))
    with pytest.raises(pytest.fail.Exception, match=r"key \$\.only_at_atlassian in the record"):
        with run.record("me") as api:
            api.me()


def test_recorder_keeps_only_the_two_bases_and_clients_made_while_recording(emulator):
    recorder = Recorder(emulator.auth_base_url, emulator.api_base_url + "/prefix")
    with new_client(timeout=10) as before, recorder.recording(), new_client(timeout=10) as http:
        before.get(emulator.auth_base_url + "/oauth/token")  # made before: not observed
        http.get(emulator.api_base_url + "/me")  # outside the api base's path prefix
        http.get(emulator.auth_base_url + "/authorize")
    record = recorder.record("emulator")
    assert [(e.path, e.status) for e in record.exchanges] == [("/authorize", 400)]
    assert [d.to_text() for d in diff(record, Record("emulator"))] == [
        "GET /authorize [auth, none] -> 400: status in the record, not from the emulator"]


@pytest.mark.parity
def test_sites_identity_and_jira_myself(parity_recorder):
    """Against Atlassian (ATLASSIAN_PARITY=1) this records snapshot `identity`; against the
    emulator it runs the same flow and, once that snapshot is committed, must match it."""
    with parity_recorder.record("identity") as api:
        sites = api.accessible_resources()
        me = api.me()
        site = api.choose_site(sites, parity_recorder.target.settings.site)
        myself = api.jira_myself(site.id)
    assert me["account_id"] == myself["accountId"]
    shapes = parity_recorder.records["identity"]
    assert {e.path for e in shapes.exchanges} == {
        "/oauth/token/accessible-resources", "/me", "/ex/jira/{cloudid}/rest/api/3/myself"}
