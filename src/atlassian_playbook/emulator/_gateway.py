"""The API gateway (api.atlassian.com): accessible-resources, /me, Jira, Confluence, reporting.

Every answer carries the rate-limit headers; a per-token budget of :data:`RATE_LIMIT` requests
per minute of emulator time is enforced with 429. Scopes for ``/ex/{product}/{cloudid}/...``
are checked against the scopes granted **on that site**; ``/me`` and the reporting API against
the token's own scopes.

Which product paths exist and which scopes each takes come from ``operations.json``
(:mod:`._operations`, derived from Atlassian's OpenAPI documents); the answers come from
:mod:`._jira` and :mod:`._confluence`. A handler without scope data, or scope data without a
handler, stops the emulator at start.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from ._call import REPORT_PATH, Call, Handler, gateway_error_body, iso
from ._confluence import ConfluenceApi
from ._http import Request, Response, empty_response, json_response
from ._jira import JiraApi
from ._operations import OPERATIONS_FILE, operation_table
from ._scopes import CONFLUENCE, JIRA, scopes_of_api
from ._state import digest
from ._token_records import access_token_valid
from ._world import CLOSED_TEST_ACCOUNT, account_by_id, profile

__all__ = ["Gateway", "RATE_LIMIT", "gateway_error_body", "iso"]

RATE_LIMIT = 500
RATE_WINDOW = 60
MAX_REPORTED_ACCOUNTS = 90
CYCLE_PERIOD = "P7D"

UNAUTHORIZED = {"code": 401, "message": "Unauthorized"}
SCOPE_MISMATCH = {"code": 401, "message": "Unauthorized; scope does not match"}
SCOPE_HEADERS = {"X-Failure-Category": "FAILURE_CLIENT_SCOPE_CHECK"}

class _Budget:
    """Per-token request counts in fixed windows of emulator time (in memory, per process)."""

    def __init__(self, limit: int = RATE_LIMIT, window: int = RATE_WINDOW) -> None:
        self.limit, self.window = limit, window
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def spend(self, key: str, now: float, cost: int = 1) -> tuple[int, float]:
        """Count a request; return (remaining after it, end of the window)."""
        window = int(now // self.window)
        with self._lock:
            if len(self._counts) > 10_000:
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            start, count = self._counts.get(key, (window, 0))
            if start != window:
                count = 0
            count += cost
            self._counts[key] = (window, count)
        return self.limit - count, (window + 1) * self.window

    def headers(self, remaining: int, reset: float) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(remaining, 0)),
            "X-RateLimit-Reset": iso(reset),
        }
        if remaining < self.limit * 0.2:
            headers["X-RateLimit-NearLimit"] = "true"
        return headers


def rate_limit_reason(path: str) -> str:
    if path.startswith("/ex/jira/"):
        return "jira-burst-based"
    if path.startswith("/ex/confluence/"):
        return "confluence-burst-based"
    return "gateway-burst-based"


def format_seconds(seconds: float) -> str:
    return f"{seconds:g}" if seconds != int(seconds) else str(int(seconds))


class Gateway:
    def __init__(self, emulator) -> None:
        self.emu = emulator
        self.budget = _Budget()
        self.operations = operation_table()
        self.handlers: dict[tuple[str, str, str], Handler] = {}
        for product, api in ((JIRA, JiraApi(emulator)), (CONFLUENCE, ConfluenceApi(emulator))):
            for (method, path), handler in api.handlers().items():
                self.handlers[(product, method, path)] = handler
        served, known = set(self.handlers), self.operations.keys()
        if served != known:  # the code and operations.json disagree: regenerate or fix
            raise RuntimeError(
                f"{OPERATIONS_FILE.name} and the emulator's handlers disagree: without scope "
                f"data {sorted(served - known)}, without a handler {sorted(known - served)}; "
                "run scripts/build_gateway_operations.py."
            )

    # --- entry point ---------------------------------------------------------------------

    def __call__(self, request: Request) -> Response:
        token = request.bearer()
        with self.emu._store.transaction() as data:
            now = self.emu._now(data)
            remaining, reset = self.budget.spend(digest(token) if token else "anonymous", now)
            headers = self.budget.headers(remaining, reset)
            if remaining < 0:
                retry = max(1, int(reset - now + 0.999))
                response = json_response(
                    429,
                    gateway_error_body(request.path, 429, "Rate limit exceeded"),
                    {
                        "Retry-After": str(retry),
                        "RateLimit-Reason": rate_limit_reason(request.path),
                    },
                )
            else:
                response = self._route(data, request, token, now)
        for key, value in headers.items():
            if response.header(key) is None:
                response.set_header(key, value)
        if request.path == REPORT_PATH:
            response.set_header("Cycle-Period", CYCLE_PERIOD)
        return response

    def fault_headers(self, request: Request, status: int, retry_after: float | None) -> dict:
        """Headers for an injected fault: the budget as it stands, exhausted for a 429."""
        token = request.bearer()
        now = self.emu.now()
        remaining, reset = self.budget.spend(digest(token) if token else "anonymous", now, 0)
        headers = self.budget.headers(remaining, reset)
        if status == 429:
            wait = 1.0 if retry_after is None else retry_after
            headers.update(
                {
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-NearLimit": "true",
                    "X-RateLimit-Reset": iso(now + wait),
                    "RateLimit-Reason": rate_limit_reason(request.path),
                }
            )
        if request.path == REPORT_PATH:
            headers["Cycle-Period"] = CYCLE_PERIOD
        return headers

    def _route(self, data: dict, request: Request, token: str | None, now: float) -> Response:
        path = request.path
        if path == "/oauth/token/accessible-resources":
            handler, method = self.accessible_resources, "GET"
        elif path == "/me":
            handler, method = self.me, "GET"
        elif path == REPORT_PATH:
            handler, method = self.report_accounts, "POST"
        elif path.startswith(("/ex/jira/", "/ex/confluence/")):
            handler, method = self.product, request.method
        else:
            return json_response(404, {"code": 404, "message": "Not Found"})
        if request.method != method:
            return json_response(
                405, {"code": 405, "message": "Method Not Allowed"}, {"Allow": method}
            )
        access = data["access_tokens"].get(digest(token)) if token else None
        if not access_token_valid(access, data, now):
            return json_response(401, UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})
        grant = data["grants"][access["grant_id"]]
        user = account_by_id(data["world"], grant["account_id"])  # a user or a service account
        return handler(Call(request, data, access, grant, user, now))

    # --- identity and sites ----------------------------------------------------------------

    def accessible_resources(self, call: Call) -> Response:
        resources = []
        for cloud_id, scopes in call.grant["sites"].items():
            site = call.site(cloud_id)
            for product in (JIRA, CONFLUENCE):
                product_scopes = scopes_of_api(scopes, product)
                if product in site["products"] and product_scopes:
                    resources.append(
                        {
                            "id": site["id"],
                            "name": site["name"],
                            "url": site["url"],
                            "scopes": product_scopes,
                            "avatarUrl": site["avatarUrl"],
                        }
                    )
        return json_response(200, resources)

    def me(self, call: Call) -> Response:
        if "read:me" not in call.access["scopes"]:
            return json_response(401, SCOPE_MISMATCH, SCOPE_HEADERS)
        return json_response(200, profile(call.user))

    # --- Jira and Confluence ---------------------------------------------------------------

    def product(self, call: Call) -> Response:
        request = call.request
        _, _, product, cloud_id, *rest = request.path.split("/", 4)
        sub_path = "/" + (rest[0] if rest else "")
        site_scopes = call.grant["sites"].get(cloud_id)
        site = call.site(cloud_id)
        if site_scopes is None or site is None:
            return json_response(401, SCOPE_MISMATCH, SCOPE_HEADERS)
        if product not in site["products"]:
            return json_response(404, {"code": 404, "message": "Not Found"})
        match = self.operations.match(product, sub_path, request.method)
        operation = match.operation
        if operation is None and not match.allowed:
            return json_response(
                404, gateway_error_body(request.path, 404, f"No API at {sub_path}")
            )
        if operation is None:
            return json_response(
                405,
                gateway_error_body(request.path, 405, "Method Not Allowed"),
                {"Allow": ", ".join(match.allowed)},
            )
        if not operation.allows(site_scopes):
            return json_response(401, SCOPE_MISMATCH, SCOPE_HEADERS)
        handler = self.handlers[(product, operation.method, operation.path)]
        return handler(call, site, match.params)

    # --- personal data reporting ---------------------------------------------------------

    def report_accounts(self, call: Call) -> Response:
        request = call.request
        if "report:personal-data" not in call.access["scopes"]:
            return json_response(401, SCOPE_MISMATCH, SCOPE_HEADERS)

        def bad(message: str) -> Response:
            return json_response(400, {"errorType": "INVALID_REQUEST", "errorMessage": message})

        if request.content_type != "application/json":
            return bad("The body must be JSON (Content-Type: application/json).")
        try:
            body = request.json()
        except ValueError:
            return bad("The body is not valid JSON.")
        accounts = body.get("accounts") if isinstance(body, dict) else None
        if not isinstance(accounts, list) or not accounts:
            return bad(
                'The body must be {"accounts": [{"accountId": ..., "updatedAt": ...}]} '
                "with at least one account."
            )
        if len(accounts) > MAX_REPORTED_ACCOUNTS:
            return bad(
                f"At most {MAX_REPORTED_ACCOUNTS} accounts per request ({len(accounts)} sent)."
            )
        users = call.data["world"]["users"]
        updated_at_of = {u["account_id"]: _parse_time(u["profile_updated_at"]) for u in users}
        closed = {CLOSED_TEST_ACCOUNT} | {u["account_id"] for u in users if u.get("closed")}
        answers = []
        for index, entry in enumerate(accounts):
            account_id = entry.get("accountId") if isinstance(entry, dict) else None
            updated_at = entry.get("updatedAt") if isinstance(entry, dict) else None
            when = _parse_time(updated_at) if isinstance(updated_at, str) else None
            if not isinstance(account_id, str) or not account_id or when is None:
                return bad(
                    f"accounts[{index}] needs a non-empty accountId and an ISO 8601 "
                    "updatedAt such as 2017-05-12T00:00:00.000Z."
                )
            if account_id in closed:
                answers.append({"accountId": account_id, "status": "closed"})
            elif account_id in updated_at_of and when < updated_at_of[account_id]:
                answers.append({"accountId": account_id, "status": "updated"})
        if not answers:
            return empty_response(204)
        return json_response(200, {"accounts": answers})


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
