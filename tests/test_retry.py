"""RetryPolicy: which answers and errors are sent again, after how long; the same for both hosts.

Status sequences come from ``httpx.MockTransport``; ``sleep`` records the waits instead of
waiting. The end of the file checks that the token endpoint's and the gateway's clients wait
alike for the same answers, and that their 429s and 5xx are caught as one TransientError.
"""

from __future__ import annotations

import time

import httpx
import pytest

from atlassian_playbook._retry import BACKOFF_CAP, RetryPolicy
from atlassian_playbook.api import ApiClient
from atlassian_playbook.config import Settings
from atlassian_playbook.errors import (
    ApiError,
    OAuthError,
    RateLimited,
    ServerError,
    TransientError,
)
from atlassian_playbook.oauth import OAuthClient
from atlassian_playbook.redact import Secret
from atlassian_playbook.tokens import StaticTokenSource, TokenSet


class Script:
    """Answers each call with the next item: a response, or an exception class to raise."""

    def __init__(self, *steps) -> None:
        self.steps = list(steps)
        self.calls = 0

    def __call__(self, request: httpx.Request | None = None) -> httpx.Response:
        self.calls += 1
        step = self.steps.pop(0) if self.steps else httpx.Response(200)
        if isinstance(step, type):
            raise step("scripted", request=request or httpx.Request("GET", "https://x.test/"))
        return step


def policy(**kwargs) -> tuple[RetryPolicy, list[float]]:
    sleeps: list[float] = []
    return RetryPolicy(sleep=sleeps.append, **kwargs), sleeps


def test_429_waits_its_retry_after_and_is_sent_again():
    script = Script(httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200))
    retry, sleeps = policy()
    sent = retry.send(script, what="GET /me")
    assert sent.response.status_code == 200 and sent.retries == 1
    assert sleeps == [2.0] and script.calls == 2


def test_retry_after_as_an_http_date_is_read_against_the_clock():
    script = Script(
        httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:05 GMT"}),
        httpx.Response(200),
    )
    retry, sleeps = policy(clock=lambda: 1445412480.0)  # 07:28:00 that day
    retry.send(script, what="GET /me")
    assert sleeps == [5.0]


def test_a_retry_after_beyond_the_longest_wait_is_handed_back_at_once():
    script = Script(httpx.Response(503, headers={"Retry-After": "120"}))
    retry, sleeps = policy(max_retry_wait=30)
    sent = retry.send(script, what="GET /me")
    assert (sent.response.status_code, sent.retries, sent.retry_after) == (503, 0, 120.0)
    assert sleeps == [] and script.calls == 1


def test_5xx_without_retry_after_backs_off_exponentially_up_to_the_cap():
    script = Script(*[httpx.Response(500) for _ in range(8)])
    retry, sleeps = policy(max_retries=6)
    sent = retry.send(script, what="GET /me")
    assert sent.response.status_code == 500 and sent.retries == 6
    assert sleeps == [0.5, 1.0, 2.0, 4.0, BACKOFF_CAP, BACKOFF_CAP]
    assert script.calls == 7


@pytest.mark.parametrize("status", [200, 204, 400, 401, 403, 404])
def test_answers_that_are_not_429_or_5xx_are_not_sent_again(status):
    script = Script(httpx.Response(status))
    retry, sleeps = policy()
    assert retry.send(script, what="GET /me").response.status_code == status
    assert script.calls == 1 and sleeps == []


def test_listed_errors_are_retried_with_backoff_then_raised():
    script = Script(httpx.ConnectError, httpx.ConnectError, httpx.ConnectError)
    retry, sleeps = policy(max_retries=2)
    with pytest.raises(httpx.ConnectError):
        retry.send(script, what="POST /oauth/token", retry_errors=(httpx.ConnectError,))
    assert script.calls == 3 and sleeps == [0.5, 1.0]


def test_errors_not_listed_are_raised_at_once():
    # A code exchange whose answer was lost: the code may be spent, so it is never resent.
    script = Script(httpx.ReadTimeout)
    retry, sleeps = policy()
    with pytest.raises(httpx.ReadTimeout):
        retry.send(script, what="POST /oauth/token", retry_errors=(httpx.ConnectError,))
    assert script.calls == 1 and sleeps == []


def test_a_lost_answer_is_sent_again_once_at_once_outside_the_retry_budget():
    script = Script(httpx.RemoteProtocolError, httpx.Response(200))
    retry, sleeps = policy(max_retries=0)
    sent = retry.send(script, what="POST /oauth/token", resend_once=(httpx.RemoteProtocolError,))
    assert sent.response.status_code == 200 and sent.retries == 0
    assert script.calls == 2 and sleeps == []


def test_a_second_lost_answer_is_raised():
    script = Script(httpx.ReadTimeout, httpx.Response(503), httpx.ReadTimeout)
    retry, sleeps = policy()
    with pytest.raises(httpx.ReadTimeout):
        retry.send(script, what="POST /oauth/token", resend_once=(httpx.ReadTimeout,))
    assert script.calls == 3 and sleeps == [0.5]


# -- both hosts, one policy ----------------------------------------------------------------


SETTINGS = Settings(
    client_id="unit-client-id",
    client_secret=Secret("unit-client-secret-0123456789"),
    auth_base_url="https://auth.example.test",
    api_base_url="https://api.example.test",
)


def gateway_call(script: Script, **knobs) -> tuple[list[float], object]:
    sleeps: list[float] = []
    tokens = TokenSet(Secret("access-unit-0123456789"), None, time.time() + 3600)
    with (
        httpx.Client(transport=httpx.MockTransport(script)) as http,
        ApiClient(SETTINGS, StaticTokenSource(tokens), http, sleep=sleeps.append, **knobs) as api,
    ):
        try:
            return sleeps, api.me()
        except Exception as error:  # the outcome is compared below
            return sleeps, error


def token_endpoint_call(script: Script, **knobs) -> tuple[list[float], object]:
    sleeps: list[float] = []
    with (
        httpx.Client(transport=httpx.MockTransport(script)) as http,
        OAuthClient(SETTINGS, http, sleep=sleeps.append, **knobs) as oauth,
    ):
        try:
            return sleeps, oauth.refresh("rt-unit-0123456789abcdef")
        except Exception as error:
            return sleeps, error


def answers() -> Script:
    return Script(
        httpx.Response(503),
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(502),
        httpx.Response(429, headers={"Retry-After": "3"}),
    )


def test_both_hosts_wait_alike_for_the_same_answers_with_the_same_knobs():
    gateway_sleeps, gateway_error = gateway_call(answers(), max_retries=3, max_retry_wait=5)
    token_sleeps, token_error = token_endpoint_call(answers(), max_retries=3, max_retry_wait=5)
    assert gateway_sleeps == token_sleeps == [0.5, 3.0, 2.0]
    for error in (gateway_error, token_error):
        assert isinstance(error, RateLimited) and error.retry_after == 3.0


@pytest.mark.parametrize("call", [gateway_call, token_endpoint_call], ids=["gateway", "token"])
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(429, headers={"Retry-After": "60"}), RateLimited),
        (httpx.Response(503), ServerError),
    ],
    ids=["429", "503"],
)
def test_429_and_5xx_of_either_host_are_one_transient_error(call, answer, expected):
    _, error = call(Script(answer), max_retries=0)
    assert type(error) is expected
    assert isinstance(error, TransientError)
    # Neither host's refusal: `except OAuthError` and `except ApiError` mean what they say.
    assert not isinstance(error, OAuthError | ApiError)
    assert error.status_code == answer.status_code
    assert error.url.startswith(("https://api.example.test", "https://auth.example.test"))
