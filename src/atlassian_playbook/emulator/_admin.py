"""``/_emulator/*`` on the auth server: drive the emulator from another process.

A papermill kernel or the CLI may not hold the :class:`Emulator` object, so faults, the clock,
revocation and client registration are also reachable over HTTP. The servers bind 127.0.0.1,
but any web page the user opens can still reach loopback, so every admin request must pass,
in this order:

* ``Host``: ``127.0.0.1``, ``localhost`` or ``[::1]`` with this server's port (403 otherwise).
  A page on a name its owner points at 127.0.0.1 (DNS rebinding) is same-origin with the
  emulator in the browser's eyes, but its requests carry that name.
* ``Authorization: Bearer <admin token>``, the emulator's per-process
  :attr:`~atlassian_playbook.emulator.Emulator.admin_token`, printed by ``serve()`` (401
  otherwise, unknown paths included, so a guess learns nothing). A cross-site page cannot
  send the header without a CORS preflight, which this server never answers.
* POSTs must be JSON, for the same reason.
"""

from __future__ import annotations

import hmac

from ._http import JsonTooDeep, Request, Response, json_response

__all__ = ["Admin", "loopback_hosts"]

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")

_FAULT_KEYS = {
    "path_prefix",
    "status",
    "times",
    "retry_after",
    "delay",
    "body",
    "headers",
    "server",
}
_CLIENT_KEYS = {"client_id", "client_secret", "redirect_uris", "apis", "sharing", "name"}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, {"error": message}, headers)


def loopback_hosts(port: int) -> set[str]:
    """The ``Host`` values an admin request may carry for a server on ``port`` (lower case;
    a client leaves out port 80)."""
    hosts = {f"{name}:{port}" for name in _LOOPBACK_NAMES}
    return hosts | set(_LOOPBACK_NAMES) if port == 80 else hosts


class Admin:
    def __init__(self, emulator) -> None:
        self.emu = emulator
        self.routes = {
            ("GET", "/_emulator/health"): self.health,
            ("GET", "/_emulator/requests"): self.requests,
            ("POST", "/_emulator/faults"): self.faults,
            ("POST", "/_emulator/clock"): self.clock,
            ("POST", "/_emulator/revoke"): self.revoke,
            ("POST", "/_emulator/clients"): self.register,
        }

    def __call__(self, request: Request) -> Response:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        handler = self.routes.get((request.method, request.path))
        if (
            handler is None
            and request.method == "GET"
            and request.path.startswith("/_emulator/clients/")
        ):
            return self.client(request.path.removeprefix("/_emulator/clients/"))
        if handler is None:
            return _error(404, f"No admin endpoint {request.method} {request.path}")
        if request.method == "POST":
            if request.content_type != "application/json":
                return _error(400, "Admin requests must be JSON (Content-Type: application/json).")
            try:
                body = request.json() if request.body else {}
            except JsonTooDeep as exc:
                return _error(400, str(exc))
            except ValueError:
                return _error(400, "The body is not valid JSON.")
            if not isinstance(body, dict):
                return _error(400, "The body must be a JSON object.")
            try:
                return handler(body)
            except (TypeError, ValueError) as exc:
                return _error(400, str(exc))
        return handler()

    def refusal(self, request: Request) -> Response | None:
        """403 for a Host that is not this server's loopback address, 401 without this
        emulator's admin token; ``None`` for a request that may go on."""
        hosts = request.headers.get_all("Host") or []
        if len(hosts) != 1 or hosts[0].strip().lower() not in loopback_hosts(request.port):
            names = ", ".join(f"{name}:{request.port}" for name in _LOOPBACK_NAMES)
            return _error(403, f"The admin endpoints answer only the Host {names}.")
        token = request.bearer() or ""
        if not hmac.compare_digest(token.encode(), self.emu.admin_token.encode()):
            return _error(
                401,
                "The admin endpoints need this emulator's admin token: send "
                "Authorization: Bearer <admin token> (printed by `atlassian-playbook "
                "emulator`; Emulator.admin_token in Python).",
                {"WWW-Authenticate": 'Bearer realm="atlassian-emulator-admin"'},
            )
        return None

    def health(self) -> Response:
        emu = self.emu
        return json_response(
            200,
            {
                "status": "ok",
                "auth_base_url": emu.auth_base_url,
                "api_base_url": emu.api_base_url,
                "default_client_id": emu.default_client.client_id,
                "auto_consent": emu.auto_consent,
                "now": emu.now(),
            },
        )

    def requests(self) -> Response:
        return json_response(200, [list(entry) for entry in self.emu.request_log])

    def faults(self, body: dict) -> Response:
        unknown = set(body) - _FAULT_KEYS
        if unknown:
            raise ValueError(f"Unknown fault field(s): {', '.join(sorted(unknown))}.")
        if "path_prefix" not in body:
            raise ValueError("path_prefix is required.")
        self.emu.inject_fault(body.pop("path_prefix"), **body)
        return json_response(201, {"ok": True})

    def clock(self, body: dict) -> Response:
        advance = body.get("advance")
        if isinstance(advance, bool) or not isinstance(advance, int | float):
            raise ValueError('Send {"advance": seconds}.')
        self.emu.advance_clock(advance)
        return json_response(200, {"now": self.emu.now()})

    def revoke(self, body: dict) -> Response:
        client_id = body.get("client_id")
        if client_id is not None and not isinstance(client_id, str):
            raise ValueError("client_id must be a string.")
        return json_response(200, {"revoked_grants": self.emu.revoke(client_id)})

    def register(self, body: dict) -> Response:
        unknown = set(body) - _CLIENT_KEYS
        if unknown:
            raise ValueError(f"Unknown client field(s): {', '.join(sorted(unknown))}.")
        for key in ("redirect_uris", "apis"):
            if key in body:
                if not isinstance(body[key], list):
                    raise ValueError(f"{key} must be a list.")
                body[key] = tuple(body[key])
        registration = self.emu.register_client(**body)
        return json_response(201, registration.to_json(reveal=True))

    def client(self, client_id: str) -> Response:
        registration = self.emu.client(client_id)
        if registration is None:
            return _error(404, f"No client {client_id}.")
        return json_response(200, registration.to_json(reveal=True))
