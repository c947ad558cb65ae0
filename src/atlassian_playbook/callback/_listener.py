"""The one-shot loopback listener: it catches exactly one redirect, shows the browser a page
without the code, and logs request lines with the query reduced to its parameter names."""

from __future__ import annotations

import errno
import hmac
import html
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from ..errors import (
    CallbackError,
    CallbackTimeout,
    ConfigError,
    StateMismatch,
    WaitCancelled,
)
from ..redact import get_logger, redact
from ._urls import LOOPBACK_HOSTS, is_loopback
from ._wait import WaitControl, current_control

logger = get_logger(__name__)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;
line-height:1.5}}h1{{font-size:1.4em}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""


def _page(title: str, *paragraphs: str) -> bytes:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return _PAGE.format(title=html.escape(title), body=body).encode("utf-8")


def _callback_page(params: dict[str, str]) -> tuple[int, bytes]:
    error = params.get("error")
    if not error:
        return 200, _page(
            "Connected to Atlassian",
            "The authorization code was received.",
            "You can close this tab and return to the playbook.",
        )
    description = redact(params.get("error_description") or "")
    if error == "access_denied":
        return 200, _page(
            "Consent was denied",
            "Atlassian reports that access was not granted"
            + (f": {description}" if description else "."),
            "To connect, run the login again from the playbook and press Accept on the "
            "consent screen (choose the site first). If the page said a site admin must "
            "authorize the app, ask an admin to allow it. You can close this tab.",
        )
    return 200, _page(
        "Atlassian returned an error",
        f"Error: {redact(error)}" + (f" — {description}" if description else ""),
        "Return to the playbook: it shows what to change. You can close this tab.",
    )


# The parameters an OAuth redirect carries (RFC 6749 §4.1.2); any other name is shown as "…".
_CALLBACK_PARAMETERS = frozenset({"code", "state", "error", "error_description", "error_uri"})
_QUERY = re.compile(r"\?(\S*)")


def _query_names(text: str) -> str:
    """``text`` with each query string reduced to its parameter names (``?code&state``).

    Shape-based redaction masks ``code=VALUE`` but not ``co%64e=VALUE``, which the listener
    decodes to the same code; not logging values at all closes that gap.
    """

    def names(match: re.Match[str]) -> str:
        pairs = parse_qsl(match.group(1), keep_blank_values=True)
        shown = [name if name in _CALLBACK_PARAMETERS else "…" for name, _ in pairs]
        return "?" + "&".join(shown)

    return _QUERY.sub(names, text)


def _host_form(address: str) -> str:
    """``address`` as it appears in a ``Host`` header: lower case, IPv6 in brackets."""
    address = address.lower()
    return f"[{address}]" if ":" in address else address


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    listener: CallbackListener

    def handle_error(self, request: object, client_address: object) -> None:
        """A browser that hangs up (closed tab, cancelled speculative connection) is routine:
        log it at debug level instead of socketserver's traceback on stderr."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            logger.debug("callback listener: %s hung up (%s)", client_address, type(exc).__name__)
            return
        super().handle_error(request, client_address)  # a bug here must stay visible


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # A browser may open a speculative connection and send nothing; don't let it hang a thread.
    timeout = 10
    server_version = "atlassian-playbook-callback"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.listener._handle(self)

    def do_HEAD(self) -> None:  # noqa: N802
        self.send_response(405)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        # http.server would print the request line, code included, to stderr.
        logger.debug("callback listener: %s", redact(_query_names(format % args)))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's messages for a malformed request quote the request line, code included,
        # in the status line and the page; the standard phrase says enough.
        if message:
            self.log_error("%s", message)
        super().send_error(code, None, explain)

    def respond(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


class CallbackListener:
    """A one-shot HTTP server on the callback URL's host and port.

    Serves only the callback's path; stops accepting callbacks after the first one that
    carries ``code`` or ``error`` and, when ``expected_state`` is given, that state. A
    redirect with another state or none (an older login tab, or a page that wants to cancel
    this login with ``?error=access_denied``) is answered 400 and ignored; the login goes on.

    Only requests addressed to this listener are answered, against DNS rebinding: a page on
    ``evil.example`` can make its name resolve to 127.0.0.1 and then call (and read) this
    listener as its own origin, but the browser still sends ``Host: evil.example:PORT``. So the
    ``Host`` must be the callback URL's own host (what Atlassian's redirect puts in the
    address bar) or the literal address the socket is bound to, with the listener's port: IP
    literals and ``localhost`` (RFC 6761: resolved by the browser itself) are names no outside
    DNS controls. ``localhost`` counts only when the callback URL says ``localhost``: nothing
    else sends a browser there. A missing or repeated ``Host`` is 400 (RFC 9112 §3.2), which
    also refuses HTTP/0.9; another host or port is 421 Misdirected Request (RFC 9110 §15.5.20).

    ``start()`` binds at once, so the listener is ready before a browser is sent anywhere.
    Use as a context manager::

        with CallbackListener(settings.redirect_uri, request.state) as listener:
            webbrowser.open(request.url)
            url = listener.wait(timeout=300)
    """

    def __init__(self, redirect_uri: str, expected_state: str | None = None) -> None:
        if not is_loopback(redirect_uri):
            raise ConfigError(
                f"The callback URL {redirect_uri} is not a plain-http loopback URL, so the "
                "playbook cannot listen on it.",
                "Use paste mode (--paste) and paste the URL the browser lands on, or set "
                "ATLASSIAN_REDIRECT_URI to http://127.0.0.1:8765/callback (and add it on the "
                "console's Authorization tab).",
                setting="ATLASSIAN_REDIRECT_URI",
            )
        parts = urlsplit(redirect_uri.strip())
        self.redirect_uri = redirect_uri.strip()
        self.expected_state = expected_state
        self.host = LOOPBACK_HOSTS[(parts.hostname or "").lower()]
        self.port = parts.port or 80
        self.path = parts.path or "/"
        names = {_host_form(parts.hostname or ""), _host_form(self.host)}
        # A Host without a port means port 80 (RFC 9110 §7.2).
        self._authorities = frozenset(
            {f"{name}:{self.port}" for name in names} | (names if self.port == 80 else set())
        )
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._result: str | None = None
        self.ignored_state_mismatches = 0

    def __repr__(self) -> str:
        running = self._server is not None
        return f"CallbackListener({self.redirect_uri!r}, running={running})"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> CallbackListener:
        """Bind the port and serve in a background thread (idempotent)."""
        if self._server is not None:
            return self
        server_class = _Server6 if ":" in self.host else _Server
        try:
            server = server_class((self.host, self.port), _Handler)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                reason = (
                    "is already in use"
                    if exc.errno == errno.EADDRINUSE
                    else "needs privileges to bind"
                )
                raise ConfigError(
                    f"Port {self.port} on {self.host} {reason}, so the callback listener for "
                    f"{self.redirect_uri} cannot start.",
                    "Stop the program holding the port (an earlier login still waiting?), or "
                    "pick a free port in ATLASSIAN_REDIRECT_URI and add that exact Callback URL "
                    "on the console's Authorization tab; or use --paste.",
                    setting="ATLASSIAN_REDIRECT_URI",
                ) from None
            raise CallbackError(
                f"Cannot listen on {self.host}:{self.port} for {self.redirect_uri}: {exc}.",
                "Use --paste, or change ATLASSIAN_REDIRECT_URI to another loopback port.",
            ) from None
        server.listener = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"callback-listener-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.debug("listening for the callback on %s", self.redirect_uri)
        return self

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> CallbackListener:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- waiting ---------------------------------------------------------------------------

    def wait(self, timeout: float, control: WaitControl | None = None) -> str:
        """Block until the callback arrives; return its full URL (code still inside).

        Raises :class:`CallbackTimeout` (or :class:`StateMismatch` when only redirects from
        another login arrived) after ``timeout`` seconds, and :class:`WaitCancelled` when
        ``control`` (default: the enclosing :func:`watching` block's) is cancelled or the
        thread is interrupted (``KeyboardInterrupt``). The server stops once a callback was
        received.
        """
        if self._server is None and not self._done.is_set():
            self.start()
        control = control or current_control()
        try:
            arrived = self._wait_for_callback(timeout, control)
        except KeyboardInterrupt:
            self.close()
            raise self._cancelled("the wait was interrupted") from None
        if not arrived:
            self.close()
            if control is not None and control.cancelled:
                raise self._cancelled("Cancel was pressed")
            if self.ignored_state_mismatches:
                raise StateMismatch(
                    f"No callback for this login arrived at {self.redirect_uri} within "
                    f"{timeout:g} s; {self.ignored_state_mismatches} redirect(s) without this "
                    "login's state (another login attempt, or not from Atlassian) were ignored.",
                )
            raise CallbackTimeout(
                f"No callback arrived at {self.redirect_uri} within {timeout:g} s.",
                "Open the authorization URL in a browser on this machine and finish consent "
                "in time; if the browser runs elsewhere (remote hub, container), use --paste "
                "and paste the URL it lands on.",
            )
        self.close()
        assert self._result is not None
        return self._result

    def _wait_for_callback(self, timeout: float, control: WaitControl | None) -> bool:
        if control is None:
            return self._done.wait(timeout)
        deadline = time.monotonic() + timeout
        last_tick: int | None = None
        while not control.cancelled:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if control.on_tick is not None and int(left) != last_tick:
                last_tick = int(left)
                control.on_tick(left)
            if self._done.wait(min(control.SLICE, left)):
                return True
        return self._done.is_set()

    def _cancelled(self, why: str) -> WaitCancelled:
        return WaitCancelled(
            f"Stopped waiting for the callback at {self.redirect_uri}: {why}. Nothing was "
            "exchanged or stored.",
            "Run the cell again when you are ready to consent; an authorization link from this "
            "attempt no longer works (its listener is closed and its state is forgotten).",
        )

    def _handle(self, handler: _Handler) -> None:
        from ..oauth import parse_callback_params

        hosts = handler.headers.get_all("Host") or []
        if len(hosts) != 1 or hosts[0].strip().lower() not in self._authorities:
            handler.respond(
                400 if len(hosts) != 1 else 421,
                _page(
                    "Wrong address",
                    f"This listener answers only requests addressed to {self._origin}.",
                ),
            )
            return
        target = urlsplit(handler.path)
        if target.path != self.path:
            handler.respond(
                404, _page("Not found", "This server only answers the Atlassian callback.")
            )
            return
        params = parse_callback_params(target.query)
        if "code" not in params and "error" not in params:
            handler.respond(
                400,
                _page(
                    "No authorization code",
                    "This address receives Atlassian's redirect after consent; it came "
                    "without a code. Start the login from the playbook.",
                ),
            )
            return
        with self._lock:
            if self._done.is_set():
                handler.respond(
                    409,
                    _page(
                        "Already done",
                        "This login has already received its callback. Return to the playbook.",
                    ),
                )
                return
            if self.expected_state is not None and not _state_matches(
                params.get("state"), self.expected_state
            ):
                self.ignored_state_mismatches += 1
                handler.respond(
                    400,
                    _page(
                        "Out-of-date sign-in link",
                        "This redirect does not carry the state of the login in progress: it "
                        "belongs to another login attempt, or did not come from Atlassian. Use "
                        "the newest authorization URL the playbook showed.",
                    ),
                )
                return
            status, body = _callback_page(params)
            self._result = f"{self._origin}{handler.path}"
            try:
                handler.respond(status, body)
            finally:
                # Set only after the page is written, so close() never cuts the browser off;
                # set even when the browser hung up first: the code did arrive.
                self._done.set()


def _state_matches(state: str | None, expected: str) -> bool:
    # Atlassian returns the state on errors too (FACTS: denial carries &state=STATE), so an
    # error without it is refused like a code without it: any page could send one.
    return state is not None and hmac.compare_digest(
        state.encode("utf-8"), expected.encode("utf-8")
    )
