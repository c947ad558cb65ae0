"""``/_emulator/*`` on the auth server: drive the emulator from another process.

A papermill kernel or the CLI may not hold the :class:`Emulator` object, so faults, the clock,
revocation and client registration are also reachable over HTTP. Loopback only (the servers
bind 127.0.0.1). POSTs must be JSON, so a web page cannot drive them with a simple cross-site
form post (a JSON content type triggers a CORS preflight this server never answers).
"""

from __future__ import annotations

from ._http import Request, Response, json_response

__all__ = ["Admin"]

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


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": message})


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
            except ValueError:
                return _error(400, "The body is not valid JSON.")
            if not isinstance(body, dict):
                return _error(400, "The body must be a JSON object.")
            try:
                return handler(body)
            except (TypeError, ValueError) as exc:
                return _error(400, str(exc))
        return handler()

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
