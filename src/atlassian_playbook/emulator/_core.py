"""``Emulator``: two loopback servers (auth and api) over one emulated world."""

from __future__ import annotations

import copy
import secrets
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

from ..redact import Secret
from ._admin import Admin
from ._auth import AuthorizationServer, find_grant
from ._gateway import Gateway, format_seconds, gateway_error_body
from ._http import (
    LoopbackServer,
    Request,
    Response,
    html_response,
    json_response,
    log,
    stop_all,
)
from ._pages import error_page
from ._state import StateStore
from ._world import APIS, SITES, USER, public_site, site_by_ref

__all__ = ["Emulator", "ClientRegistration", "DEFAULT_REDIRECT_URIS"]

DEFAULT_REDIRECT_URIS = (
    "http://127.0.0.1:8765/callback",
    "http://localhost:8765/callback",
    "https://app.merge.dev/oauth/callback",
    "https://accounts.example-clerk.dev/v1/oauth_callback",
)
DEFAULT_CLIENT_NAME = "Atlassian OAuth Playbook (emulated app)"


@dataclass(frozen=True)
class ClientRegistration:
    """An app as registered in the (emulated) developer console."""

    client_id: str
    client_secret: Secret
    redirect_uris: tuple[str, ...]
    apis: tuple[str, ...]
    sharing: bool
    name: str

    def to_json(self, reveal: bool = False) -> dict:
        """The registration as JSON; the secret masked unless ``reveal``."""
        secret = self.client_secret
        return {
            "client_id": self.client_id,
            "client_secret": secret.reveal() if reveal else str(secret),
            "redirect_uris": list(self.redirect_uris),
            "apis": list(self.apis),
            "sharing": self.sharing,
            "name": self.name,
        }

    @classmethod
    def _from_state(cls, record: dict) -> ClientRegistration:
        return cls(
            client_id=record["client_id"],
            client_secret=Secret(record["client_secret"]),
            redirect_uris=tuple(record["redirect_uris"]),
            apis=tuple(record["apis"]),
            sharing=record["sharing"],
            name=record["name"],
        )


class Emulator:
    """A strict local stand-in for auth.atlassian.com and api.atlassian.com.

    ``auto_consent``: /authorize redirects with a code at once (for ``consent_site``, a site
    name or cloud id, default ``acme``) instead of showing the consent page; ``"deny"``
    redirects with ``error=access_denied`` at once, as a user pressing Deny. ``state_path``:
    share the world with every other Emulator on that file. ``clock``: a ``time.time``-like
    callable; :meth:`advance_clock` adds to it.
    """

    def __init__(
        self,
        auto_consent: bool | str = False,
        consent_site: str | None = None,
        state_path: str | Path | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        site = site_by_ref(consent_site or "acme")
        if site is None:
            names = ", ".join(s["name"] for s in SITES)
            raise ValueError(f"consent_site {consent_site!r} is not an emulated site ({names}).")
        self.auto_consent = auto_consent
        self._consent_site_id = site["id"]
        self._clock = clock or time.time
        self._store = StateStore(state_path)
        self._scratch: tempfile.TemporaryDirectory | None = None
        self.state_path = self._store.path
        self.request_log: list[tuple[str, str, int]] = []
        self._auth = AuthorizationServer(self, Admin(self))
        self._gateway = Gateway(self)
        self._servers: dict[str, LoopbackServer] = {}
        with self._store.transaction() as data:
            default_id = data["default_client_id"]
            if default_id not in data["clients"]:
                registration = self.register_client(name=DEFAULT_CLIENT_NAME)
                data["default_client_id"] = registration.client_id

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, *, auth_port: int = 0, api_port: int = 0) -> Emulator:
        """Start both servers (free ports unless given) and return ``self``."""
        if self._servers:
            return self
        auth = LoopbackServer(auth_port, lambda request: self._serve("auth", request), "auth")
        try:
            api = LoopbackServer(api_port, lambda request: self._serve("api", request), "api")
        except OSError:
            auth.server_close()
            raise
        self._servers = {"auth": auth, "api": api}
        auth.start()
        api.start()
        log.debug("emulator started: auth %s, api %s", auth.base_url, api.base_url)
        return self

    def stop(self) -> None:
        servers, self._servers = self._servers, {}
        stop_all(servers.values())

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.auth_base_url}, {self.api_base_url}" if self._servers else "not started"
        return f"<Emulator {where}>"

    @property
    def auth_base_url(self) -> str:
        return self._server("auth").base_url

    @property
    def api_base_url(self) -> str:
        return self._server("api").base_url

    def _server(self, kind: str) -> LoopbackServer:
        try:
            return self._servers[kind]
        except KeyError:
            raise RuntimeError("The emulator is not started: call start() first.") from None

    # --- the world --------------------------------------------------------------------------

    @property
    def user(self) -> dict:
        """The emulated Atlassian account, as ``GET /me`` returns it."""
        return copy.deepcopy(USER)

    @property
    def sites(self) -> list[dict]:
        """The account's sites: ``id`` (the cloud id), ``name``, ``url``, ``avatarUrl``,
        ``products``."""
        return [public_site(site) for site in SITES]

    @property
    def default_client(self) -> ClientRegistration:
        with self._store.transaction() as data:
            return ClientRegistration._from_state(data["clients"][data["default_client_id"]])

    def client(self, client_id: str) -> ClientRegistration | None:
        with self._store.transaction() as data:
            record = data["clients"].get(client_id)
            return ClientRegistration._from_state(record) if record else None

    def register_client(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | Secret | None = None,
        redirect_uris: Sequence[str] = DEFAULT_REDIRECT_URIS,
        apis: Sequence[str] = APIS,
        sharing: bool = True,
        name: str = "Emulated test app",
    ) -> ClientRegistration:
        """Register an app, or update the one with ``client_id`` (as editing it in the console).

        Id and secret are generated when not given. Existing grants survive an update.
        """
        if isinstance(redirect_uris, str) or isinstance(apis, str):
            raise TypeError("redirect_uris and apis are sequences of strings, not a string.")
        redirect_uris, apis = tuple(redirect_uris), tuple(apis)
        if not redirect_uris:
            raise ValueError("An app needs at least one callback URL.")
        for uri in redirect_uris:
            parts = urlsplit(uri) if isinstance(uri, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"Callback URL {uri!r} is not an absolute http(s) URL.")
        unknown = [api for api in apis if api not in APIS]
        if unknown:
            raise ValueError(f"Unknown API(s) {unknown}; known: {', '.join(APIS)}.")
        if client_id is not None and (not isinstance(client_id, str) or not client_id):
            raise ValueError("client_id must be a non-empty string.")
        if not isinstance(sharing, bool) or not isinstance(name, str) or not name:
            raise ValueError("sharing must be a bool and name a non-empty string.")
        secret = Secret(client_secret or secrets.token_urlsafe(48))
        if not secret:
            raise ValueError("client_secret must not be empty.")
        record = {
            "client_id": client_id or secrets.token_urlsafe(24),
            "client_secret": secret.reveal(),
            "redirect_uris": list(redirect_uris),
            "apis": list(apis),
            "sharing": sharing,
            "name": name,
        }
        with self._store.transaction() as data:
            data["clients"][record["client_id"]] = record
        return ClientRegistration._from_state(record)

    def settings(self, **overrides):
        """A :class:`~atlassian_playbook.config.Settings` pointing at this emulator, with the
        default client's credentials; ``overrides`` go to ``Settings.replace``.

        The token store defaults to one beside the state file, or to this emulator's own
        temporary folder: emulated tokens never land in the user's real store.
        """
        from ..config import DEFAULT_REDIRECT_URI, Settings

        if self._store.path is not None:
            token_store = Path(self._store.path).with_name("tokens.json")
        else:
            if self._scratch is None:
                self._scratch = tempfile.TemporaryDirectory(prefix="atlassian-emulator-")
            token_store = Path(self._scratch.name) / "tokens.json"
        client = self.default_client
        return Settings(
            client_id=client.client_id,
            client_secret=client.client_secret,
            redirect_uri=DEFAULT_REDIRECT_URI,
            auth_base_url=self.auth_base_url,
            api_base_url=self.api_base_url,
            token_store=token_store,
        ).replace(**overrides)

    # --- test controls -----------------------------------------------------------------------

    def now(self) -> float:
        """The emulator's clock: ``clock()`` plus every :meth:`advance_clock`."""
        with self._store.transaction() as data:
            return self._now(data)

    def _now(self, data: dict) -> float:
        return self._clock() + data["clock_offset"]

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock (expiry, idle timeouts) without sleeping."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise TypeError("seconds must be a number.")
        with self._store.transaction() as data:
            data["clock_offset"] += float(seconds)

    def revoke(self, client_id: str | None = None) -> int:
        """The user removes the app in "connected apps": the grant and all its tokens die.

        ``client_id`` defaults to the default client. Returns how many grants were removed.
        """
        with self._store.transaction() as data:
            client_id = client_id or data["default_client_id"]
            grant_id = find_grant(data, client_id, USER["account_id"])
            if grant_id is None:
                return 0
            del data["grants"][grant_id]
            return 1

    def inject_fault(
        self,
        path_prefix: str,
        *,
        status: int | None = 500,
        times: int = 1,
        retry_after: float | None = None,
        delay: float = 0.0,
        body: dict | None = None,
        headers: dict | None = None,
        server: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests whose path starts with ``path_prefix`` with
        ``status`` (after ``delay`` seconds, server side).

        A 429 carries ``Retry-After`` (``retry_after``, default 1) and, on the api server, the
        rate-limit headers. ``status=None`` answers normally, only late (``delay``).
        ``server`` (``auth``/``api``) limits the fault to one server; by default
        ``/authorize...`` and exactly ``/oauth/token`` mean the auth server (so a token-endpoint
        fault does not hit ``/oauth/token/accessible-resources``), anything else both.
        """
        if not isinstance(path_prefix, str) or not path_prefix.startswith("/"):
            raise ValueError("path_prefix must be a path starting with /.")
        if path_prefix.startswith("/_emulator"):
            raise ValueError("The admin endpoints cannot be faulted.")
        if status is not None and (isinstance(status, bool) or not 100 <= int(status) <= 599):
            raise ValueError("status must be an HTTP status code or None.")
        if not isinstance(times, int) or times < 1:
            raise ValueError("times must be a positive integer.")
        if server not in (None, "auth", "api"):
            raise ValueError("server must be 'auth', 'api' or None.")
        for name, value in (("retry_after", retry_after), ("delay", delay)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value < 0
            ):
                raise ValueError(f"{name} must be a non-negative number.")
        if body is not None and not isinstance(body, dict):
            raise ValueError("body must be a JSON object (dict).")
        if headers is not None and not isinstance(headers, dict):
            raise ValueError("headers must be a dict.")
        if server is None and (
            path_prefix.startswith("/authorize") or path_prefix == "/oauth/token"
        ):
            server = "auth"
        with self._store.transaction() as data:
            data["faults"].append(
                {
                    "path_prefix": path_prefix,
                    "server": server,
                    "status": None if status is None else int(status),
                    "remaining": times,
                    "retry_after": retry_after,
                    "delay": float(delay or 0),
                    "body": body,
                    "headers": {str(k): str(v) for k, v in (headers or {}).items()},
                }
            )

    # --- request handling ---------------------------------------------------------------------

    def _serve(self, kind: str, request: Request) -> Response:
        fault = None
        if not request.path.startswith("/_emulator/"):
            fault = self._take_fault(kind, request.path)
        if fault is not None and fault["delay"]:
            time.sleep(fault["delay"])
        if fault is not None and fault["status"] is not None:
            response = self._fault_response(kind, request, fault)
        elif kind == "auth":
            response = self._auth(request)
        else:
            response = self._gateway(request)
        self.request_log.append((request.method, request.path, response.status))
        log.debug("emulator %s %s %s -> %s", kind, request.method, request.path, response.status)
        return response

    def _take_fault(self, kind: str, path: str) -> dict | None:
        with self._store.transaction() as data:
            if not data["faults"]:
                return None
            for fault in data["faults"]:
                if path.startswith(fault["path_prefix"]) and fault["server"] in (None, kind):
                    fault["remaining"] -= 1
                    if fault["remaining"] <= 0:
                        data["faults"].remove(fault)
                    return dict(fault)
        return None

    def _fault_response(self, kind: str, request: Request, fault: dict) -> Response:
        status = fault["status"]
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        headers: dict[str, str] = {}
        if kind == "api":
            headers.update(self._gateway.fault_headers(request, status, fault["retry_after"]))
        if status == 429 or fault["retry_after"] is not None:
            wait = 1.0 if fault["retry_after"] is None else fault["retry_after"]
            headers["Retry-After"] = format_seconds(wait)
        headers.update(fault["headers"])
        if fault["body"] is not None:
            return json_response(status, fault["body"], headers)
        if kind == "api":
            return json_response(status, gateway_error_body(request.path, status, phrase), headers)
        if request.path.startswith("/authorize"):
            response = html_response(status, error_page(phrase))
            for key, value in headers.items():
                response.set_header(key, value)
            return response
        error = {429: "too_many_requests", 503: "temporarily_unavailable"}.get(
            status, "server_error" if status >= 500 else "invalid_request"
        )
        return json_response(status, {"error": error, "error_description": phrase}, headers)
