"""The callback listener against hostile or broken requests, over raw loopback sockets.

A raw socket lets a test say exactly what a browser, a rebinding page or a hung-up tab sends:
the ``Host`` header (or none), a request cut off midway, a connection closed or reset before
the answer is read.
"""

from __future__ import annotations

import logging
import secrets
import socket
import struct
import threading

import pytest

from atlassian_playbook.callback import CallbackListener
from atlassian_playbook.errors import StateMismatch

from .conftest import free_port

STATE = "state-of-this-login-0123456789"
# Generous: these are bounds on a stuck test, never on how fast the machine is.
PATIENCE = 30.0


def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` and read the whole answer (the listener closes after each one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as conn:
        conn.sendall(raw)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def request(target: str, *hosts: str) -> bytes:
    headers = "".join(f"Host: {host}\r\n" for host in hosts)
    return f"GET {target} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n".encode()


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def hang_up(port: int, raw: bytes, *, reset: bool) -> None:
    """Send ``raw`` and go away without reading: a plain close, or a reset (SO_LINGER 0)."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
    conn.sendall(raw)
    if reset:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def settle() -> None:
    """Wait until the listener's request threads have finished (and reported any error).

    Call it once a later request was answered: the listener accepts connections in order and
    starts each one's thread before accepting the next, so none is still being started.
    """
    for thread in threading.enumerate():
        if "process_request_thread" in thread.name:
            thread.join(PATIENCE)
            assert not thread.is_alive()


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def listener(port):
    with CallbackListener(f"http://127.0.0.1:{port}/callback", STATE) as listener:
        yield listener


def finish_login(listener: CallbackListener, port: int, host: str | None = None) -> None:
    """The real redirect still ends the login: the listener kept listening."""
    good = f"/callback?code=the-real-code-0123456789&state={STATE}"
    assert status(exchange(port, request(good, host or f"127.0.0.1:{port}"))) == 200
    assert listener.wait(timeout=PATIENCE).endswith(good)


# -- 1. an error redirect needs this login's state too ---------------------------------------


def test_error_redirect_without_the_state_is_refused_and_the_login_goes_on(listener, port):
    host = f"127.0.0.1:{port}"
    for forged in (
        "/callback?error=access_denied&error_description=cancelled",
        "/callback?error=access_denied&state=another-login",
    ):
        answer = exchange(port, request(forged, host))
        assert status(answer) == 400
        assert b"does not carry the state of the login in progress" in answer
    assert listener.ignored_state_mismatches == 2
    finish_login(listener, port)


def test_only_forged_error_redirects_end_in_state_mismatch_not_consent_denied(listener, port):
    answer = exchange(port, request("/callback?error=access_denied", f"127.0.0.1:{port}"))
    assert status(answer) == 400
    with pytest.raises(StateMismatch) as info:
        listener.wait(timeout=0.1)  # the forged redirect was already answered above
    assert "without this login's state" in info.value.message


# -- 2. the Host header: DNS rebinding ------------------------------------------------------


@pytest.mark.parametrize(
    ("callback_host", "host_header"),
    [
        ("127.0.0.1", "127.0.0.1:{port}"),
        ("localhost", "localhost:{port}"),
        ("localhost", "LocalHost:{port}"),
        ("localhost", "127.0.0.1:{port}"),  # the bound address, as curl or a test names it
    ],
)
def test_host_of_the_callback_or_its_bound_address_is_answered(port, callback_host, host_header):
    with CallbackListener(f"http://{callback_host}:{port}/callback", STATE) as listener:
        finish_login(listener, port, host_header.format(port=port))


@pytest.mark.parametrize(
    ("callback_host", "hosts", "expected"),
    [
        ("127.0.0.1", ["evil.example:{port}"], 421),  # a rebinding page's own name
        ("127.0.0.1", ["127.0.0.1:{other}"], 421),  # another port is another origin
        ("127.0.0.1", ["127.0.0.1"], 421),  # no port means port 80
        ("127.0.0.1", ["localhost:{port}"], 421),  # nothing sends a browser there
        ("localhost", ["evil.example:{port}"], 421),
        ("localhost", ["localhost.evil.example:{port}"], 421),
        ("localhost", ["localhost:{other}"], 421),
        ("127.0.0.1", [], 400),  # RFC 9112 §3.2: a request without Host is 400
        ("127.0.0.1", ["127.0.0.1:{port}", "evil.example:{port}"], 400),  # and with two
    ],
)
def test_a_request_for_another_host_is_refused_and_the_login_goes_on(
    port, callback_host, hosts, expected
):
    other = free_port()
    with CallbackListener(f"http://{callback_host}:{port}/callback", STATE) as listener:
        forged = f"/callback?code=forged-code-0123456789&state={STATE}"
        answer = exchange(port, request(forged, *(h.format(port=port, other=other) for h in hosts)))
        assert status(answer) == expected
        assert b"forged-code" not in answer
        finish_login(listener, port)


def test_an_http_0_9_request_has_no_host_and_is_refused(listener, port):
    # Two words, no version: http.server takes it as HTTP/0.9, which has no Host header.
    forged = f"GET /callback?code=forged-code-0123456789&state={STATE}\r\n\r\n"
    answer = exchange(port, forged.encode())
    assert b"Wrong address" in answer
    finish_login(listener, port)


# -- 3. a browser that hangs up ------------------------------------------------------------


def test_a_browser_that_resets_mid_request_prints_nothing(listener, port, capfd):
    for _ in range(3):
        hang_up(port, b"GET /callback?code=half-a-req", reset=True)
    finish_login(listener, port)
    settle()
    assert capfd.readouterr() == ("", "")


def test_a_browser_that_leaves_before_reading_the_page_prints_nothing(listener, port, capfd):
    host = f"127.0.0.1:{port}"
    for _ in range(3):
        hang_up(port, request("/callback?code=old-tab-0123456789&state=old", host), reset=False)
    # The real redirect, and the tab is closed before its page arrives: the code still counts.
    good = f"/callback?code=the-real-code-0123456789&state={STATE}"
    hang_up(port, request(good, host), reset=False)
    assert listener.wait(timeout=PATIENCE).endswith(good)
    settle()
    assert capfd.readouterr() == ("", "")


# -- 4. the code never comes back out ------------------------------------------------------


def test_a_refused_request_never_shows_its_code_in_the_answer_or_the_logs(
    listener, port, caplog, capfd
):
    code = "leak-" + secrets.token_urlsafe(24)
    host = f"127.0.0.1:{port}"
    refused = [
        request(f"/callback?code={code}&state=another-login", host),
        request(f"/callback?co%64e={code}&state=another-login", host),  # decodes to "code"
        request(f"/favicon.ico?code={code}", host),
        request(f"/callback/?code={code}&state={STATE}", host),
        request(f"/callback?code={code}&state={STATE}", f"evil.example:{port}"),
        f"GET /callback?code={code}&state={STATE} junk HTTP/1.1\r\n\r\n".encode(),
        f"POST /callback?code={code}&state={STATE} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(),
    ]
    with caplog.at_level(logging.DEBUG, logger="atlassian_playbook"):
        for raw in refused:
            answer = exchange(port, raw)
            assert status(answer) >= 400
            assert code.encode() not in answer
        finish_login(listener, port)
        settle()
    assert "callback listener" in caplog.text  # the requests were logged, without the code
    assert code not in caplog.text
    assert code not in "".join(capfd.readouterr())
