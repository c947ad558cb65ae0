"""TokenAuth: the bearer token, refresh before expiry, and one refresh on an expired-token 401.

The flow is an ``httpx.Auth``, so it is tested on a plain ``httpx.Client`` over
``httpx.MockTransport`` (status sequences the emulator would need faults for); the gateway
behaviour through ApiClient is in test_api.py, against the emulator.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import httpx
import pytest

from atlassian_playbook.auth import REFRESH_LEEWAY, TokenAuth, is_scope_failure
from atlassian_playbook.errors import ReauthorizationRequired
from atlassian_playbook.redact import Secret
from atlassian_playbook.tokens import StaticTokenSource, TokenSet


def token(name: str, *, expires_in: float = 3600, refreshable: bool = True) -> TokenSet:
    return TokenSet(
        access_token=Secret(f"access-{name}-0123456789"),
        refresh_token=Secret(f"refresh-{name}-0123456789") if refreshable else None,
        expires_at=time.time() + expires_in,
    )


@dataclass
class Source:
    """Hands out ``current``; each refresh() moves to the next of ``fresh`` and is recorded."""

    current: TokenSet
    fresh: list[TokenSet] = field(default_factory=list)
    refreshed: list[TokenSet] = field(default_factory=list)

    def get(self) -> TokenSet:
        return self.current

    def refresh(self, stale: TokenSet) -> TokenSet:
        self.refreshed.append(stale)
        self.current = self.fresh.pop(0)
        return self.current


class Gateway:
    """Answers from a script of responses and records the bearer token of each request."""

    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.bearers: list[str] = []
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bearers.append(request.headers["Authorization"].removeprefix("Bearer "))
        self.bodies.append(request.content)
        return self.responses.pop(0) if self.responses else httpx.Response(200, json={})


@pytest.fixture
def send():
    clients: list[httpx.Client] = []

    def send(gateway: Gateway, auth: TokenAuth, method: str = "GET", **kwargs) -> httpx.Response:
        client = httpx.Client(transport=httpx.MockTransport(gateway))
        clients.append(client)
        return client.request(method, "https://api.example.test/me", auth=auth, **kwargs)

    yield send
    for client in clients:
        client.close()


def unauthorized(**headers: str) -> httpx.Response:
    return httpx.Response(401, json={"code": 401, "message": "Unauthorized"}, headers=headers)


def test_the_request_carries_the_sources_access_token(send):
    gateway = Gateway()
    source = Source(token("a"))
    assert send(gateway, TokenAuth(source)).status_code == 200
    assert gateway.bearers == ["access-a-0123456789"]
    assert source.refreshed == []


def test_a_token_expiring_within_the_leeway_is_refreshed_before_it_is_sent(send):
    gateway = Gateway()
    source = Source(token("a", expires_in=REFRESH_LEEWAY - 5), [token("b")])
    send(gateway, TokenAuth(source))
    assert gateway.bearers == ["access-b-0123456789"]
    assert len(source.refreshed) == 1


def test_a_token_outside_the_leeway_is_not_refreshed(send):
    gateway = Gateway()
    source = Source(token("a", expires_in=REFRESH_LEEWAY + 60), [token("b")])
    send(gateway, TokenAuth(source))
    assert gateway.bearers == ["access-a-0123456789"]


def test_an_expiring_token_without_a_refresh_token_is_used_while_it_lasts(send):
    gateway = Gateway()
    source = Source(token("a", expires_in=20, refreshable=False))
    send(gateway, TokenAuth(source))
    assert gateway.bearers == ["access-a-0123456789"]
    assert source.refreshed == []


def test_an_expired_token_without_a_refresh_token_asks_the_source(send):
    source = StaticTokenSource(token("a", expires_in=-1, refreshable=False))
    with pytest.raises(ReauthorizationRequired):
        send(Gateway(), TokenAuth(source))


def test_an_expired_token_401_is_refreshed_once_and_the_request_sent_again(send):
    gateway = Gateway(unauthorized(), httpx.Response(200, json={"ok": True}))
    source = Source(token("a"), [token("b")])
    response = send(gateway, TokenAuth(source), "POST", json={"accounts": [1]})
    assert response.json() == {"ok": True}
    assert gateway.bearers == ["access-a-0123456789", "access-b-0123456789"]
    assert [json.loads(body) for body in gateway.bodies] == [{"accounts": [1]}] * 2
    assert [stale.access_token for stale in source.refreshed] == [Secret("access-a-0123456789")]


def test_a_401_after_the_refresh_is_handed_back_without_a_second_refresh(send):
    gateway = Gateway(unauthorized(), unauthorized())
    source = Source(token("a"), [token("b"), token("c")])
    assert send(gateway, TokenAuth(source)).status_code == 401
    assert len(source.refreshed) == 1
    assert len(gateway.bearers) == 2


def test_one_auth_refreshes_once_over_all_the_sends_of_its_call(send):
    # ApiClient makes one TokenAuth per call and sends it again after a 503: the second 401
    # of the call is the answer, not a reason to rotate the refresh token again.
    source = Source(token("a"), [token("b"), token("c")])
    auth = TokenAuth(source)
    send(Gateway(unauthorized(), httpx.Response(503)), auth)
    assert send(Gateway(unauthorized()), auth).status_code == 401
    assert len(source.refreshed) == 1


def streamed(status: int, body: bytes) -> httpx.Response:
    """An answer whose body is still on the wire, as a real transport hands it over."""
    return httpx.Response(status, stream=httpx.ByteStream(body))


@pytest.mark.parametrize(
    "answer",
    [
        lambda: unauthorized(**{"X-Failure-Category": "FAILURE_CLIENT_SCOPE_CHECK"}),
        lambda: streamed(401, b'{"code": 401, "message": "Unauthorized; scope does not match"}'),
        lambda: httpx.Response(403, json={"errorMessages": ["You do not have permission."]}),
        lambda: httpx.Response(404, json={"errorMessages": ["Not found"]}),
    ],
    ids=["scope-header", "scope-body", "403", "404"],
)
def test_answers_other_than_an_expired_token_are_not_refreshed(send, answer):
    gateway = Gateway(answer())
    source = Source(token("a"), [token("b")])
    response = send(gateway, TokenAuth(source))
    assert response.status_code in (401, 403, 404)
    assert source.refreshed == []
    assert len(gateway.bearers) == 1


def test_a_refresh_that_fails_is_raised_from_the_send(send):
    gateway = Gateway(unauthorized())
    with pytest.raises(ReauthorizationRequired):
        send(gateway, TokenAuth(StaticTokenSource(token("a"))))
    assert len(gateway.bearers) == 1


def test_scope_failure_is_read_from_the_header_or_the_body():
    assert is_scope_failure(unauthorized(**{"X-Failure-Category": "failure_client_scope_check"}))
    assert is_scope_failure(httpx.Response(403, text="Scope does not match"))
    assert not is_scope_failure(unauthorized())
