"""HTTP plumbing: stdlib ``ThreadingHTTPServer`` on loopback, a tiny request/response model.

The handler parses the request, hands it to an ``app(request) -> Response`` callable and
writes the answer with an exact ``Content-Length`` (HTTP/1.1 keep-alive, so clients reuse
connections and the emulator serves many requests per second). http.server's own request
logging (to stderr, with query strings that carry codes) is silenced.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from ..redact import get_logger

__all__ = ["Request", "Response", "LoopbackServer", "json_response", "html_response"]

log = get_logger("atlassian_playbook.emulator")

LOOPBACK = "127.0.0.1"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes = b""

    def param(self, name: str) -> str | None:
        """The first value of a query parameter, or ``None``."""
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def json(self):
        """The body parsed as JSON; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {key: values[0] for key, values in parsed.items()}

    def bearer(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def set_header(self, name: str, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        self.headers.append((name, value))


def json_response(status: int, data, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data).encode("utf-8")
    response = Response(status, body, [("Content-Type", "application/json;charset=UTF-8")])
    for key, value in (headers or {}).items():
        response.set_header(key, str(value))
    return response


def html_response(status: int, page: str) -> Response:
    return Response(status, page.encode("utf-8"), [("Content-Type", "text/html; charset=utf-8")])


def redirect_response(location: str) -> Response:
    return Response(302, b"", [("Location", location), ("Cache-Control", "no-store")])


def empty_response(status: int, headers: dict[str, str] | None = None) -> Response:
    response = Response(status)
    for key, value in (headers or {}).items():
        response.set_header(key, str(value))
    return response


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AtlassianEmulator/1"
    sys_version = ""
    timeout = 60  # an idle keep-alive connection frees its thread after this
    # Headers and body go out in two writes; with Nagle's algorithm the second waits for the
    # client's delayed ACK (~40 ms a request on Linux loopback).
    disable_nagle_algorithm = True
    server: LoopbackServer

    def _dispatch(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._write(json_response(411, {"code": 411, "message": "Length Required"}), close=True)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError
        except ValueError:
            self._write(json_response(400, {"code": 400, "message": "Bad Content-Length"}), True)
            return
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=split.path or "/",
            query=parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
        )
        try:
            response = self.server.app(request)
        except Exception:  # a bug in the emulator: answer 500 rather than drop the connection
            log.exception("emulator error on %s %s", request.method, request.path)
            response = json_response(500, {"code": 500, "message": "Internal emulator error"})
        self._write(response)

    def _write(self, response: Response, close: bool = False) -> None:
        try:
            self.send_response(response.status)
            for key, value in response.headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. a timeout)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        # http.server would print every request line, query string (codes, state) included.
        pass


class LoopbackServer(ThreadingHTTPServer):
    """A threaded HTTP server on 127.0.0.1 answering with ``app(request)``, from a daemon thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, app: Callable[[Request], Response], name: str) -> None:
        super().__init__((LOOPBACK, port), _Handler)
        self.app = app
        self.name = name
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"atlassian-emulator-{self.name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        stopper = threading.Thread(target=self.shutdown)
        stopper.start()
        try:  # wake serve_forever's select() so it sees the request at once
            socket.create_connection(self.server_address, timeout=1).close()
        except OSError:
            pass
        stopper.join()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def stop_all(servers) -> None:
    """Stop several servers at once (each shutdown waits up to one poll interval)."""
    threads = [threading.Thread(target=server.stop) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
