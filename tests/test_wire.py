"""The wire: each step's HTTP exchanges, recorded with every secret masked and shown as panels;
and notebook 04's wait for the callback, which Cancel and an interrupt end cleanly.

Real loopback emulator, real httpx clients, real papermill runs for 04/05/06.
"""

from __future__ import annotations

import json
import threading

import httpx
import pytest

import atlassian_playbook.playbook as pb
from atlassian_playbook import _http
from atlassian_playbook import target as target_module
from atlassian_playbook.callback import CallbackListener, WaitCancelled, WaitControl, watching
from atlassian_playbook.errors import PlaybookError
from atlassian_playbook.oauth import _callback_error
from atlassian_playbook.playbook import _results
from atlassian_playbook.playbook._results import StepResult, step
from atlassian_playbook.playbook.token_exchange import partner_code_warning
from atlassian_playbook.profiles import resolve_profile
from atlassian_playbook.redact import mask
from atlassian_playbook.wire import recording, stands_for

from .notebook_helpers import (
    MERGE_CALLBACK,
    client_secrets_in_state,
    free_port,
    new_workspace,
    run,
    tokens_in_store,
)


@pytest.fixture
def shown(monkeypatch) -> list:
    displayed: list = []
    monkeypatch.setattr(_results, "show", lambda *objects: displayed.extend(objects))
    monkeypatch.setattr(_results, "record", lambda name, value: None)
    return displayed


@pytest.fixture
def session(tmp_path, shown):
    new_workspace(tmp_path)
    session = pb.start(tmp_path, quiet=True)
    yield session
    for key, emulator in list(target_module._embedded.items()):
        if str(key[0]).startswith(str(tmp_path)):
            emulator.stop()
            del target_module._embedded[key]


def _codes_sent(urls: list[str]) -> set[str]:
    return {url.split("code=", 1)[1].split("&", 1)[0] for url in urls if "code=" in url}


def test_code_exchange_and_refresh_are_recorded_with_every_secret_masked(session, tmp_path):
    seen: list[str] = []  # what the headless browser really sent: the code, in the clear
    with _http.observing({"request": [lambda request: seen.append(str(request.url))]}):
        login = pb.exchange_tokens(session)
    tokens = session.target.store.list()[0].tokens
    refreshed = pb.refresh_tokens(session)

    summaries = [e.summary for e in login.wire]
    token_call = next(e for e in login.wire if e.summary.endswith("/oauth/token → 200"))
    assert token_call.method == "POST" and token_call.stands_for == "auth.atlassian.com"
    assert any("/oauth/token/accessible-resources → 200" in s for s in summaries)
    assert any(s.endswith("/me → 200") for s in summaries)
    api = next(e for e in login.wire if "/me" in e.url)
    assert api.stands_for == "api.atlassian.com"
    assert api.request_headers["authorization"].startswith("Bearer «secret:")
    # The token response, masked by key with the fingerprints the rest of the playbook shows.
    assert token_call.response_body["access_token"] == mask(tokens.access_token.reveal())
    assert token_call.request_body["client_secret"].startswith("«secret:")
    assert token_call.request_body["code"].startswith("«secret:")
    assert token_call.request_body["grant_type"] == "authorization_code"

    refresh_call = refreshed.wire.exchanges[-1]
    assert refresh_call.request_body["grant_type"] == "refresh_token"
    assert refresh_call.response_body["refresh_token"] == mask(
        session.target.store.list()[0].tokens.refresh_token.reveal()
    )

    codes = _codes_sent(seen)
    assert codes, "the headless consent sent no code"
    secrets = tokens_in_store(tmp_path) | client_secrets_in_state(tmp_path) | codes
    secrets.add(tokens.access_token.reveal())
    for result in (login, refreshed):
        rendered = [result.to_markdown(), result._repr_markdown_(), result.wire.to_html(),
                    json.dumps(result.wire.to_list()), repr(result.wire)]
        for text in rendered:
            assert "<details class='wire-exchange'>" in text or text.startswith(("[", "Wire"))
            for secret in secrets:
                assert secret not in text


def test_masks_secrets_nobody_registered_by_their_keys_and_headers():
    # Values never wrapped in Secret: only the wire's own masking can hide them.
    secret, code, access, refresh = (f"{name}-never-registered-0123456789"
                                     for name in ("secret", "code", "access", "refresh"))

    def atlassian(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": access, "refresh_token": refresh,
                                         "scope": "read:me", "expires_in": 3600})

    client = _http.new_client(transport=httpx.MockTransport(atlassian))
    with recording() as wire:
        client.post("https://auth.atlassian.com/oauth/token",
                    json={"client_secret": secret, "code": code, "grant_type": "x"})
        client.post("https://auth.atlassian.com/oauth/token",
                    data={"client_secret": secret, "refresh_token": refresh})
        client.get("https://api.atlassian.com/me", headers={"Authorization": f"Bearer {access}"})
    client.get("https://api.atlassian.com/me")  # after the block: not recorded
    client.close()
    assert [e.summary for e in wire] == [
        "POST https://auth.atlassian.com/oauth/token → 200",
        "POST https://auth.atlassian.com/oauth/token → 200",
        "GET https://api.atlassian.com/me → 200",
    ]
    assert wire.exchanges[0].request_body == {"client_secret": mask(secret), "code": mask(code),
                                              "grant_type": "x"}
    assert wire.exchanges[1].request_body["refresh_token"] == mask(refresh)
    assert wire.exchanges[2].request_headers["authorization"] == f"Bearer {mask(access)}"
    assert wire.exchanges[0].stands_for is None  # the real host names itself
    text = wire.to_html() + json.dumps(wire.to_list())
    for value in (secret, code, access, refresh):
        assert value not in text


def test_loopback_urls_are_labelled_with_the_atlassian_host_they_stand_for():
    assert stands_for("http://127.0.0.1:1234/oauth/token") == "auth.atlassian.com"
    assert stands_for("http://127.0.0.1:1234/authorize?x=1") == "auth.atlassian.com"
    assert stands_for("http://127.0.0.1:99/oauth/token/accessible-resources") == "api.atlassian.com"
    assert stands_for("http://localhost:99/ex/jira/abc/rest/api/3/myself") == "api.atlassian.com"
    assert stands_for("http://127.0.0.1:99/callback") is None
    assert stands_for("https://auth.atlassian.com/oauth/token") is None


def test_a_failing_step_shows_its_wire_before_raising(session, shown):
    @step()
    def refused(session) -> StepResult:
        with session.target.oauth_client() as oauth:
            oauth.refresh("an-unknown-refresh-token-0123456789")
        return StepResult("never")

    with pytest.raises(PlaybookError):
        refused(session)
    wires = [obj for obj in shown if hasattr(obj, "exchanges")]
    assert wires and wires[0].exchanges[0].status == 403
    assert "invalid_grant" in wires[0].to_html()


def test_a_step_without_http_has_no_wire_panel(shown):
    @step()
    def quiet() -> StepResult:
        return StepResult("quiet").say("hello")

    assert "wire" not in quiet().to_markdown()


# -- the wait for the callback -----------------------------------------------------------


def test_cancel_ends_the_wait_with_a_message(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}/callback"
    control = WaitControl()
    ticks: list[float] = []
    control.on_tick = lambda left: (ticks.append(left), control.cancel())
    with CallbackListener(uri, "state") as listener, pytest.raises(WaitCancelled) as raised:
        listener.wait(timeout=300, control=control)
    assert ticks and ticks[0] <= 300
    assert "Cancel was pressed" in raised.value.message
    assert raised.value._render_traceback_()[0].startswith("⏹ Stopped waiting")
    with pytest.raises(httpx.ConnectError):  # the listener let the port go
        httpx.get(uri, timeout=5)


def test_cancel_from_another_thread_reaches_a_wait_inside_watching():
    uri = f"http://127.0.0.1:{free_port()}/callback"
    control = WaitControl()
    started = threading.Event()
    control.on_tick = lambda left: started.set()
    presser = threading.Thread(target=lambda: (started.wait(), control.cancel()))
    presser.start()
    with watching(control), CallbackListener(uri, "s") as listener:
        with pytest.raises(WaitCancelled):
            listener.wait(timeout=300)
    presser.join()


def test_an_interrupt_ends_the_wait_as_a_cancellation(monkeypatch):
    uri = f"http://127.0.0.1:{free_port()}/callback"
    listener = CallbackListener(uri, "s").start()

    def interrupted(timeout=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(listener._done, "wait", interrupted)
    with pytest.raises(WaitCancelled) as raised:
        listener.wait(timeout=300, control=WaitControl())
    assert "interrupted" in raised.value.message
    assert listener._server is None


def test_the_callback_still_wins_while_watched(http):
    uri = f"http://127.0.0.1:{free_port()}/callback"
    control = WaitControl(on_tick=lambda left: None)
    with CallbackListener(uri, "s") as listener:
        threading.Thread(target=lambda: http.get(f"{uri}?code=abc&state=s")).start()
        assert "code=abc" in listener.wait(timeout=300, control=control)


# -- notebook 04's texts -------------------------------------------------------------------


def test_unauthorized_client_is_not_blamed_on_sharing():
    # FACTS.md: a non-owner of an app that is not shared gets "Something went wrong" at consent.
    assert "Sharing" not in _callback_error("unauthorized_client", None).hint


def test_notebook_04_follows_the_facts():
    from atlassian_playbook.manifest import NOTEBOOKS_DIR

    nb = json.loads((NOTEBOOKS_DIR / "04-token-exchange.ipynb").read_text())
    prose = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "invalid_scope" not in prose
    assert "8765" not in prose
    assert "Jira and Confluence" in prose and "05" in prose
    assert "single-use" in prose
    assert "What you have now" in prose


def test_a_partner_callback_is_warned_about_and_the_own_callback_is_not(session, tmp_path):
    assert partner_code_warning(session) is None
    merge = new_workspace(tmp_path / "merge", ATLASSIAN_REDIRECT_URI=MERGE_CALLBACK)
    partner = pb.start(merge, quiet=True)
    partner.remember_profile(resolve_profile("merge", None), None)
    warning = partner_code_warning(partner)
    assert warning and "Merge" in warning and "single-use" in warning
    assert MERGE_CALLBACK in warning


# -- the panels in the executed notebooks ----------------------------------------------------


def test_panels_in_notebooks_04_05_06_and_no_secret_in_them(tmp_path):
    new_workspace(tmp_path)
    outcomes = {name: run(name, tmp_path) for name in
                ("04-token-exchange", "05-verify-access", "06-refresh-lifecycle")}
    expected = {
        "04-token-exchange": "/oauth/token → 200",
        "05-verify-access": "/oauth/token/accessible-resources → 200",
        "06-refresh-lifecycle": "/oauth/token → 200",
    }
    secrets = tokens_in_store(tmp_path) | client_secrets_in_state(tmp_path)
    for name, outcome in outcomes.items():
        assert outcome.ok, outcome
        text = outcome.output_path.read_text()
        assert "<details class='wire-exchange'>" in text, name
        assert expected[name] in text, name
        assert "standing in for <b>auth.atlassian.com</b>" in text or name == "05-verify-access"
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {name}"
    text04 = outcomes["04-token-exchange"].output_path.read_text()
    assert "Authorization URL: http://127.0.0.1" in text04  # the link, printed headless
    assert "The emulator consented for you" in text04
    assert "Waiting for the consent" not in text04  # no countdown noise headless
