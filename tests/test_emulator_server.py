"""The emulator as a server on loopback: what a hostile or broken request meets.

Oversized bodies, deeply nested JSON and malformed Content-Length headers on both servers; the
admin endpoints behind a loopback Host and the per-process admin token; the headers that keep
the consent page out of frames, checked in a real chromium; and the ports it can listen on.
Malformed requests go over raw sockets, as no well-behaved client would send them.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest

from atlassian_playbook.emulator import Emulator
from atlassian_playbook.errors import ConfigError

from . import browser_support as bs
from .test_emulator import ACME, authorize_params, get_authorize, jira, login, site_id

MIB = 1024 * 1024
DEPTH = 64


def nested(levels: int) -> str:
    """A JSON array nested ``levels`` deep."""
    return "[" * levels + "]" * levels


def raw(base_url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; return the status, headers and body of the answer."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()


def post_head(path: str, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
             *headers, "", ""]
    return "\r\n".join(lines).encode()


def admin(emu: Emulator, token: str | None = "") -> dict[str, str]:
    """The headers of an admin request: the emulator's own token unless told otherwise."""
    token = emu.admin_token if token == "" else token
    return {} if token is None else {"Authorization": f"Bearer {token}"}


# --- request bodies ------------------------------------------------------------------------------


def test_a_body_over_one_mib_is_413_on_both_servers_and_one_mib_is_read(emu, http):
    token = login(emu, http, "read:me read:jira-work offline_access")["access_token"]
    search = f"{emu.api_base_url}{jira(emu, ACME, '/rest/api/3/search/jql')}"
    bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    padding = " " * (MIB - len('{"jql": "project = ACME"}'))
    fits = f'{{"jql": "project = ACME"{padding}}}'.encode()
    assert len(fits) == MIB
    assert http.post(search, content=fits, headers=bearer).status_code == 200
    for url, headers in ((f"{emu.auth_base_url}/oauth/token", {}), (search, bearer)):
        answer = http.post(url, content=fits + b" ", headers=headers)
        assert answer.status_code == 413, url
        assert answer.json() == {"code": 413, "message": "The request body is larger than "
                                 "1048576 bytes."}


def test_a_huge_content_length_is_refused_without_waiting_for_the_body(emu):
    for base in (emu.auth_base_url, emu.api_base_url):
        status, headers, body = raw(base, post_head("/oauth/token", "Content-Length: "
                                                    + str(10**12)))
        assert status == 413
        assert headers["connection"] == "close"
        assert json.loads(body)["code"] == 413


@pytest.mark.parametrize("value", ["abc", "-1", "1_0", "+1", "0x10", "1.0"])
def test_a_content_length_that_is_not_digits_is_400(emu, value):
    for base in (emu.auth_base_url, emu.api_base_url):
        status, _, body = raw(base, post_head("/oauth/token", f"Content-Length: {value}") + b"x")
        assert status == 400, value
        assert json.loads(body) == {"code": 400, "message": "Bad Content-Length"}


def test_two_different_content_lengths_are_400(emu):
    status, _, body = raw(emu.auth_base_url, post_head(
        "/oauth/token", "Content-Length: 2", "Content-Length: 3") + b"{}")
    assert (status, json.loads(body)["message"]) == (400, "Bad Content-Length")


def token_body(emu: Emulator, extra: str) -> str:
    client = emu.default_client
    return json.dumps({"grant_type": "refresh_token", "client_id": client.client_id,
                       "client_secret": client.client_secret.reveal(),
                       "refresh_token": "nope"})[:-1] + f', "extra": {extra}}}'


def test_json_deeper_than_64_levels_is_400_at_every_json_endpoint(emu, http):
    token = login(emu, http, "read:me read:jira-work write:jira-work report:personal-data "
                  "offline_access")["access_token"]
    bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    search = f"{emu.api_base_url}{jira(emu, ACME, '/rest/api/3/search/jql')}"
    create = f"{emu.api_base_url}{jira(emu, ACME, '/rest/api/3/issue')}"
    report = f"{emu.api_base_url}/app/report-accounts/"
    admin_json = {**admin(emu), "Content-Type": "application/json"}
    for levels in (DEPTH, 100_000):  # one level too deep (the object holds the array), and
        deep = nested(levels)        # deeper than Python's own recursion limit
        refused = {
            "token": http.post(f"{emu.auth_base_url}/oauth/token",
                               content=token_body(emu, deep),
                               headers={"Content-Type": "application/json"}),
            "search": http.post(search, content=f'{{"jql": "project = ACME", "x": {deep}}}',
                                headers=bearer),
            "create": http.post(create, content=f'{{"fields": {{"x": {deep}}}}}',
                                headers=bearer),
            "report": http.post(report, content=f'{{"accounts": {deep}}}', headers=bearer),
            "admin": http.post(f"{emu.auth_base_url}/_emulator/clock",
                               content=f'{{"advance": 1, "x": {deep}}}', headers=admin_json),
        }
        for name, answer in refused.items():
            assert answer.status_code == 400, (name, levels, answer.text[:200])
            assert answer.json(), name  # a JSON error body in the endpoint's own shape
    assert refused["token"].json()["error"] == "invalid_request"
    assert "64" in refused["token"].json()["error_description"]
    # 64 levels are read: the token endpoint gets to judge the (unknown) refresh token.
    fits = http.post(f"{emu.auth_base_url}/oauth/token", content=token_body(emu, nested(63)),
                     headers={"Content-Type": "application/json"})
    assert fits.status_code == 403 and fits.json()["error"] == "invalid_grant"


# --- the admin endpoints -----------------------------------------------------------------------


ADMIN_CALLS = [
    ("GET", "/_emulator/health", None),
    ("GET", "/_emulator/requests", None),
    ("GET", "/_emulator/clients/{client_id}", None),
    ("POST", "/_emulator/clock", {"advance": 0}),
    ("POST", "/_emulator/faults", {"path_prefix": "/nowhere"}),
    ("POST", "/_emulator/revoke", {}),
    ("POST", "/_emulator/clients", {"redirect_uris": ["http://127.0.0.1:4444/cb"]}),
    ("GET", "/_emulator/nothing", None),
]


def admin_call(emu, http, method, path, body, headers) -> httpx.Response:
    url = emu.auth_base_url + path.format(client_id=emu.default_client.client_id)
    return http.request(method, url, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS)
def test_every_admin_endpoint_needs_the_admin_token(emu, http, method, path, body):
    other = Emulator()
    for token in (None, "not-the-token", other.admin_token, emu.admin_token.upper()):
        answer = admin_call(emu, http, method, path, body, admin(emu, token))
        assert answer.status_code == 401, token
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert emu.default_client.client_secret.reveal() not in answer.text
    wrong_scheme = {"Authorization": f"Basic {emu.admin_token}"}
    assert admin_call(emu, http, method, path, body, wrong_scheme).status_code == 401
    answer = admin_call(emu, http, method, path, body, admin(emu))
    assert answer.status_code == (404 if path.endswith("nothing") else
                                  201 if path in ("/_emulator/faults", "/_emulator/clients")
                                  else 200)


def test_the_admin_token_is_per_emulator_and_fresh(tmp_path):
    state = tmp_path / "emulator-state.json"
    first, second = Emulator(state_path=state), Emulator(state_path=state)
    assert first.admin_token != second.admin_token
    assert len(first.admin_token) >= 32


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}",
                                  "LOCALHOST:{port}"])
def test_admin_answers_a_loopback_host_with_the_servers_port(emu, http, host):
    port = urlsplit(emu.auth_base_url).port
    answer = http.get(f"{emu.auth_base_url}/_emulator/health",
                      headers={**admin(emu), "Host": host.format(port=port)})
    assert answer.status_code == 200


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.1",
                                  "127.0.0.1:{other}", "localhost.evil.example:{port}",
                                  "127.0.0.2:{port}", "127.0.0.1:{port}@evil.example"])
def test_admin_refuses_any_other_host_even_with_the_token(emu, http, host):
    port = urlsplit(emu.auth_base_url).port
    answer = http.get(f"{emu.auth_base_url}/_emulator/health", headers={
        **admin(emu), "Host": host.format(port=port, other=port + 1)})
    assert answer.status_code == 403
    assert "Host" in answer.json()["error"]


def test_admin_refuses_a_request_without_host(emu):
    request = (f"GET /_emulator/health HTTP/1.0\r\nAuthorization: Bearer {emu.admin_token}"
               "\r\n\r\n").encode()
    status, _, _ = raw(emu.auth_base_url, request)
    assert status == 403


def test_connection_info_says_how_to_read_the_secret_with_the_admin_token(emu, http):
    info = emu.connection_info()
    assert info["admin_token"] == emu.admin_token
    method, url = info["client_secret"].split()[:2]
    assert "Authorization: Bearer" in info["client_secret"]
    assert http.request(method, url).status_code == 401
    answer = http.request(method, url, headers=admin(emu))
    assert answer.json()["client_secret"] == emu.default_client.client_secret.reveal()


# --- the consent page's headers ----------------------------------------------------------------


def csp(answer: httpx.Response) -> dict[str, str]:
    policy = answer.headers["content-security-policy"]
    return {name: value for name, _, value in
            (part.strip().partition(" ") for part in policy.split(";"))}


def test_every_html_page_forbids_framing_and_everything_it_does_not_use(emu, http):
    consent = get_authorize(emu, http)
    error = get_authorize(emu, http, redirect_uri="http://127.0.0.1:1/elsewhere")
    emu.inject_fault("/authorize", status=503)
    fault = get_authorize(emu, http)
    assert (consent.status_code, error.status_code, fault.status_code) == (200, 400, 503)
    for page in (consent, error, fault):
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["content-type"].startswith("text/html")
        policy = csp(page)
        assert policy["default-src"] == "'none'"
        assert policy["frame-ancestors"] == "'none'"
        assert policy["base-uri"] == "'none'"
        assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert csp(error)["form-action"] == "'none'" and "script-src" not in csp(error)
    # The consent form posts to the emulator, which redirects to the app's callback: a
    # browser checks form-action on that redirect too.
    assert csp(consent)["form-action"] == "'self' http://127.0.0.1:8765"
    assert csp(consent)["script-src"].startswith("'sha256-")


def test_the_consent_form_may_redirect_to_each_kind_of_registered_callback(emu, http):
    for callback, origin in (("https://app.merge.dev/oauth/callback", "https://app.merge.dev"),
                             ("http://localhost:8765/callback", "http://localhost:8765"),
                             ("http://[::1]:9999/cb", "http:")):  # CSP has no IPv6 hosts
        emu.add_callback_url(callback)
        page = get_authorize(emu, http, redirect_uri=callback)
        assert page.status_code == 200
        assert csp(page)["form-action"] == f"'self' {origin}"


class _Callback(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.paths.append(self.path)
        body = b"<!DOCTYPE html><title>callback</title><p id='done'>back at the app</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def app_callback():
    """A loopback app whose callback records the paths it was sent to."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Callback)
    server.paths = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def chromium(tmp_path):
    reason = bs.skip_reason()
    if reason is not None:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = bs.launch_chromium(playwright, tmp_path / "profile")
        try:
            yield context
        finally:
            context.close()


@pytest.mark.browser
def test_chromium_completes_consent_under_the_policy_and_will_not_frame_it(
    emu, http, app_callback, chromium
):
    callback = f"http://127.0.0.1:{app_callback.server_port}/callback"
    emu.add_callback_url(callback)
    url = str(httpx.URL(f"{emu.auth_base_url}/authorize",
                        params=authorize_params(emu.default_client, "read:me",
                                                redirect_uri=callback)))
    page = chromium.new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.goto(url)
    page.select_option("#site", site_id(emu, ACME))
    page.locator("#accept:enabled").wait_for()  # the page's script ran under the policy
    page.click("#accept")
    page.locator("#done").wait_for()  # the form-action allowed the redirect to the callback
    assert violations == []
    [path] = [p for p in app_callback.paths if p.startswith("/callback")]
    assert "code=" in path and "state=state-123" in path

    # A page of another origin that frames the consent page gets nothing from it.
    framing = chromium.new_page()
    framing.goto(f"http://127.0.0.1:{app_callback.server_port}/framing")
    framing.set_content(f'<iframe src="{url}"></iframe>')  # returns once the frame loaded
    [frame] = framing.main_frame.child_frames
    frame.wait_for_load_state()
    assert frame.url != url
    assert frame.locator("#consent-form").count() == 0


# --- ports ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("port", [70000, -5, 65536])
def test_a_port_outside_0_to_65535_is_a_config_error(port):
    with pytest.raises(ConfigError, match="0 to 65535") as caught:
        Emulator().start(auth_port=port)
    assert "--port 0" in caught.value.hint
    with pytest.raises(ConfigError, match="0 to 65535"):
        Emulator().start(api_port=port)


def test_a_port_in_use_is_a_config_error_naming_it():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}") as caught:
            Emulator().start(auth_port=port)
    assert "--port 0" in caught.value.hint
