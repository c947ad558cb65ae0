"""HTTP plumbing: stdlib ``ThreadingHTTPServer`` on loopback, a tiny request/response model.

The handler parses the request, hands it to an ``app(request) -> Response`` callable and
writes the answer with an exact ``Content-Length`` (HTTP/1.1 keep-alive, so clients reuse
connections and the emulator serves many requests per second). http.server's own request
logging (to stderr, with query strings that carry codes) is silenced.

Anything on the machine can connect, a web page's fetch included, so the handler refuses what
no client of Atlassian sends before an endpoint sees it: a body over :data:`MAX_BODY` (413,
the body never read into memory), a ``Content-Length`` that is not plain digits or is given
twice with different values (400), and :meth:`Request.json` refuses JSON nested deeper than
:data:`MAX_JSON_DEPTH` (each endpoint answers that 400 in its own error shape).
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

from ..errors import ConfigError
from ..redact import get_logger

__all__ = [
    "Request",
    "Response",
    "LoopbackServer",
    "JsonTooDeep",
    "json_response",
    "MAX_BODY",
    "MAX_JSON_DEPTH",
    "check_port",
    "listen",
]

log = get_logger("atlassian_playbook.emulator")

LOOPBACK = "127.0.0.1"
# Every body an emulated endpoint takes is small: a token request is well under 1 KB, 90
# reported accounts about 10 KB, an issue with an ADF description a few KB. 1 MiB is a
# thousand times that, and bounds what one connection can make the emulator hold.
MAX_BODY = 1024 * 1024
# Python's JSON decoder recurses once per level and fails near 1000 levels with a
# RecursionError (a 500). ADF, the deepest JSON an emulated endpoint reads, takes two levels
# per node (the node, its content list), so 64 allows lists nested over a dozen deep.
MAX_JSON_DEPTH = 64
# A refused body is read and dropped up to this much, so a client that is still sending it
# reads the 413 rather than a reset connection; beyond that the connection is just closed.
_DRAIN_LIMIT = 16 * MAX_BODY


class JsonTooDeep(ValueError):
    """A JSON body nested deeper than :data:`MAX_JSON_DEPTH` levels."""

    def __init__(self) -> None:
        super().__init__(f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.")


def _nests_deeper(value, limit: int) -> bool:
    """Whether parsed JSON nests deeper than ``limit`` (walked without recursion)."""
    pending = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if not isinstance(node, dict | list):
            continue
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        pending.extend((child, depth + 1) for child in children)
    return False


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes = b""
    port: int = 0  # the port of the server that received the request

    def param(self, name: str) -> str | None:
        """The first value of a query parameter, or ``None``."""
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def json(self):
        """The body parsed as JSON; raises ``ValueError`` when it is not JSON, and
        :class:`JsonTooDeep` (a ``ValueError``) when it nests deeper than
        :data:`MAX_JSON_DEPTH`."""
        try:
            value = json.loads(self.body.decode("utf-8"))
        except RecursionError:  # deeper than the decoder can go: far too deep
            raise JsonTooDeep() from None
        if _nests_deeper(value, MAX_JSON_DEPTH):
            raise JsonTooDeep()
        return value

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
        # RFC 9110 §8.6: 1*DIGIT. int() would also take "+1", "1_0" and " 1 "; two lengths
        # that disagree are how requests are smuggled past a proxy.
        lengths = {value.strip() for value in self.headers.get_all("Content-Length") or ["0"]}
        declared = lengths.pop()
        if lengths or not (declared.isascii() and declared.isdigit()):
            self._write(json_response(400, {"code": 400, "message": "Bad Content-Length"}), True)
            return
        length = int(declared)
        if length > MAX_BODY:
            message = f"The request body is larger than {MAX_BODY} bytes."
            self._write(json_response(413, {"code": 413, "message": message}), close=True)
            self._drain(length)
            return
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=split.path or "/",
            query=parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
            port=self.server.server_address[1],
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

    def _drain(self, length: int) -> None:
        """Read and drop up to ``length`` bytes (at most :data:`_DRAIN_LIMIT`) of a refused
        body, until the client stops sending or closes."""
        left = min(length, _DRAIN_LIMIT)
        try:
            while left > 0:
                chunk = self.rfile.read1(min(left, 65536))
                if not chunk:
                    return
                left -= len(chunk)
        except OSError:  # a timeout or a reset: the client is gone
            return

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


def check_port(port: int) -> None:
    """Refuse a port no server can listen on (0 means any free one), before anything starts."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(
            f"Port {port!r} is not a port: give a number from 0 to 65535.",
            "Use --port 0 (the default) to take any free ports, or a port from 1024 to 65535.",
        )


def listen(port: int, app: Callable[[Request], Response], name: str) -> LoopbackServer:
    try:
        return LoopbackServer(port, app, name)
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise ConfigError(
            f"The emulator's {name} server cannot listen on 127.0.0.1:{port} ({reason}).",
            "Use --port 0 to take any free ports, or stop what holds that port (ports below "
            "1024 need root).",
        ) from None
