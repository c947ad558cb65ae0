"""The loopback callback listener, paste mode, and obtain_code."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest

from atlassian_playbook.callback import (
    CallbackListener,
    is_loopback,
    obtain_code,
    read_pasted_url,
)
from atlassian_playbook.config import Settings
from atlassian_playbook.errors import (
    CallbackTimeout,
    ConfigError,
    ConsentDenied,
    MissingCode,
    StateMismatch,
)
from atlassian_playbook.oauth import OAuthClient
from atlassian_playbook.redact import Secret
from atlassian_playbook.target import emulator_settings

from .conftest import free_port

CODE = "code-in-the-redirect-0123456789"


@pytest.fixture
def redirect_uri() -> str:
    return f"http://127.0.0.1:{free_port()}/callback"


def oauth_for(redirect_uri: str) -> OAuthClient:
    return OAuthClient(
        Settings(
            client_id="cb-client",
            client_secret=Secret("cb-client-secret-0123456789"),
            redirect_uri=redirect_uri,
            scopes=("read:me", "offline_access"),
            auth_base_url="http://127.0.0.1:9",
            api_base_url="http://127.0.0.1:9",
        )
    )


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://127.0.0.1:8765/callback", True),
        ("http://localhost:3000/cb", True),
        ("http://LOCALHOST:3000/", True),
        ("http://[::1]:3000/cb", True),
        ("https://127.0.0.1:8765/callback", False),
        ("https://app.merge.dev/oauth/callback", False),
        ("http://example.com:8765/callback", False),
        ("http://127.0.0.1:notaport/cb", False),
        ("not a url", False),
    ],
)
def test_is_loopback(uri, expected):
    assert is_loopback(uri) is expected


def test_listener_catches_the_redirect_and_answers_a_page_without_the_code(redirect_uri):
    with CallbackListener(redirect_uri, "S1") as listener:
        response = httpx.get(f"{redirect_uri}?code={CODE}&state=S1")
        url = listener.wait(timeout=5)
    assert url == f"{redirect_uri}?code={CODE}&state=S1"
    assert response.status_code == 200
    assert "You can close this tab and return to the playbook" in response.text
    assert CODE not in response.text
    assert response.headers["cache-control"] == "no-store"


def test_listener_is_one_shot_and_releases_the_port(redirect_uri):
    with CallbackListener(redirect_uri) as listener:
        httpx.get(f"{redirect_uri}?code={CODE}&state=S1")
        listener.wait(timeout=5)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{redirect_uri}?code=again-0123456789&state=S1")
    # the port is free again: a new listener can bind it
    with CallbackListener(redirect_uri):
        pass


def test_listener_serves_only_the_redirect_path(redirect_uri):
    base = redirect_uri.rsplit("/", 1)[0]
    with CallbackListener(redirect_uri) as listener:
        assert httpx.get(f"{base}/favicon.ico").status_code == 404
        assert httpx.get(f"{base}/callback/?code=x&state=S1").status_code == 404
        assert httpx.get(redirect_uri).status_code == 400  # no code: keep waiting
        with pytest.raises(CallbackTimeout):
            listener.wait(timeout=0.2)


def test_listener_denied_page_explains_what_to_do(redirect_uri):
    with CallbackListener(redirect_uri, "S1") as listener:
        response = httpx.get(
            f"{redirect_uri}?error=access_denied&error_description=User%20said%20no&state=S1"
        )
        url = listener.wait(timeout=5)
    assert response.status_code == 200
    assert "Consent was denied" in response.text
    assert "Accept" in response.text
    with pytest.raises(ConsentDenied):
        oauth_for(redirect_uri).parse_callback(url, "S1")


def test_listener_error_page_escapes_the_description(redirect_uri):
    with CallbackListener(redirect_uri, "S1") as listener:
        response = httpx.get(
            f"{redirect_uri}?error=invalid_scope&error_description=%3Cscript%3Ex%3C/script%3E&state=S1"
        )
        listener.wait(timeout=5)
    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text


def test_listener_ignores_redirects_for_another_state(redirect_uri):
    with CallbackListener(redirect_uri, "NEW") as listener:
        old = httpx.get(f"{redirect_uri}?code={CODE}&state=OLD")
        assert old.status_code == 400
        assert CODE not in old.text
        ok = httpx.get(f"{redirect_uri}?code=right-code-0123456789&state=NEW")
        assert ok.status_code == 200
        assert listener.wait(timeout=5).endswith("code=right-code-0123456789&state=NEW")


def test_listener_only_forged_redirects_ends_in_state_mismatch(redirect_uri):
    with CallbackListener(redirect_uri, "NEW") as listener:
        httpx.get(f"{redirect_uri}?code={CODE}&state=OLD")
        with pytest.raises(StateMismatch):
            listener.wait(timeout=0.2)


def test_listener_timeout_raises_callback_timeout_with_a_hint(redirect_uri):
    with CallbackListener(redirect_uri) as listener:
        with pytest.raises(CallbackTimeout) as info:
            listener.wait(timeout=0.2)
    assert redirect_uri in info.value.message
    assert "--paste" in info.value.hint


def test_listener_port_in_use_names_the_setting(redirect_uri):
    port = int(redirect_uri.split(":")[2].split("/")[0])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(ConfigError) as info:
            CallbackListener(redirect_uri).start()
    assert info.value.setting == "ATLASSIAN_REDIRECT_URI"
    assert str(port) in info.value.message
    assert "in use" in info.value.message


def test_listener_for_localhost_binds_loopback():
    port = free_port()
    uri = f"http://localhost:{port}/cb"
    with CallbackListener(uri) as listener:
        httpx.get(f"http://127.0.0.1:{port}/cb?code={CODE}&state=S")
        assert listener.wait(timeout=5) == f"{uri}?code={CODE}&state=S"


def test_listener_refuses_a_non_loopback_callback():
    with pytest.raises(ConfigError) as info:
        CallbackListener("https://app.merge.dev/oauth/callback")
    assert "--paste" in info.value.hint


@pytest.mark.parametrize(
    "text",
    [
        "  https://app.merge.dev/oauth/callback?code=abc&state=S \n",
        '"https://app.merge.dev/oauth/callback?code=abc&state=S"',
        "'https://app.merge.dev/oauth/callback?code=abc&state=S'",
        "<https://app.merge.dev/oauth/callback?code=abc&state=S>",
        "https://app.merge.dev/oauth/callback?code=abc\n&state=S",
    ],
)
def test_read_pasted_url_trims(text):
    assert read_pasted_url(text) == "https://app.merge.dev/oauth/callback?code=abc&state=S"


def test_read_pasted_url_empty_is_missing_code():
    with pytest.raises(MissingCode):
        read_pasted_url("  \n")


def test_obtain_code_paste_mode_checks_the_state():
    oauth = oauth_for("https://app.merge.dev/oauth/callback")
    request = oauth.authorization_request()
    opened = []
    code = obtain_code(
        oauth,
        request,
        mode="paste",
        open_browser=opened.append,
        paste=lambda: f" {request.redirect_uri}?code={CODE}&state={request.state}\n",
        timeout=1,
    )
    assert code == CODE
    assert opened == [request.url]
    with pytest.raises(StateMismatch):
        obtain_code(
            oauth,
            request,
            mode="paste",
            open_browser=None,
            paste=lambda: f"{request.redirect_uri}?code={CODE}&state=forged",
            timeout=1,
        )


def test_obtain_code_listen_mode_binds_before_opening_the_browser(redirect_uri):
    oauth = oauth_for(redirect_uri)
    request = oauth.authorization_request()

    def browser(url: str) -> None:
        # Called synchronously: the listener must already be bound, or this GET fails.
        assert url == request.url
        response = httpx.get(f"{request.redirect_uri}?code={CODE}&state={request.state}")
        assert response.status_code == 200

    code = obtain_code(oauth, request, mode="listen", open_browser=browser, timeout=5)
    assert code == CODE


def test_obtain_code_listen_mode_from_a_browser_in_another_thread(redirect_uri):
    oauth = oauth_for(redirect_uri)
    request = oauth.authorization_request()
    threads = []

    def browser(url: str) -> None:
        t = threading.Thread(
            target=httpx.get, args=(f"{request.redirect_uri}?code={CODE}&state={request.state}",)
        )
        t.start()
        threads.append(t)

    assert obtain_code(oauth, request, mode="listen", open_browser=browser, timeout=5) == CODE
    threads[0].join(5)


def test_obtain_code_paste_mode_needs_a_paste_function():
    from atlassian_playbook.errors import CallbackError

    oauth = oauth_for("https://app.merge.dev/oauth/callback")
    with pytest.raises(CallbackError):
        obtain_code(oauth, oauth.authorization_request(), mode="paste", paste=None, timeout=1)


# -- the whole browser round trip against the emulator -------------------------------------


def emulator_oauth(emulator, redirect_uri: str) -> OAuthClient:
    registration = emulator.register_client(redirect_uris=[redirect_uri])
    return OAuthClient(
        emulator_settings(emulator, 
            client_id=registration.client_id,
            client_secret=registration.client_secret,
            redirect_uri=redirect_uri,
        )
    )


def test_listener_catches_the_emulator_redirect_and_the_code_exchanges(emulator, redirect_uri):
    with emulator_oauth(emulator, redirect_uri) as oauth:
        request = oauth.authorization_request()
        pages = []

        def browser(url: str) -> None:
            pages.append(httpx.get(url, follow_redirects=True))

        code = obtain_code(oauth, request, mode="listen", open_browser=browser, timeout=10)
        tokens = oauth.exchange_code(code)
    assert tokens.refresh_token is not None
    (page,) = pages
    assert page.status_code == 200
    assert str(page.url).startswith(redirect_uri)
    assert "return to the playbook" in page.text
    assert code not in page.text


def test_denied_consent_on_the_emulator_page_raises_consent_denied(redirect_uri):
    import re

    from atlassian_playbook.emulator import Emulator

    with Emulator(auto_consent=False) as emu, emulator_oauth(emu, redirect_uri) as oauth:
        request = oauth.authorization_request()
        pages = []

        def person_presses_deny(url: str) -> None:
            with httpx.Client(follow_redirects=True) as browser:
                consent = browser.get(url)
                consent_id = re.search(r'name="consent_request" value="([^"]+)"', consent.text)
                pages.append(
                    browser.post(
                        f"{emu.auth_base_url}/authorize/decision",
                        data={"consent_request": consent_id.group(1), "decision": "deny"},
                    )
                )

        with pytest.raises(ConsentDenied) as info:
            obtain_code(oauth, request, mode="listen", open_browser=person_presses_deny, timeout=10)
    assert "denied" in info.value.message
    assert "Consent was denied" in pages[0].text


def test_paste_mode_with_the_emulator_redirect(emulator):
    # A partner callback (Merge): nothing listens there; the person pastes where they landed.
    with OAuthClient(
        emulator_settings(emulator, redirect_uri="https://app.merge.dev/oauth/callback")
    ) as oauth:
        request = oauth.authorization_request()
        landed: list[str] = []

        def browser(url: str) -> None:
            landed.append(httpx.get(url).headers["location"])

        code = obtain_code(
            oauth,
            request,
            mode="paste",
            open_browser=browser,
            paste=lambda: f"'{landed[0]}'\n",
            timeout=1,
        )
        assert oauth.exchange_code(code).refresh_token is not None
