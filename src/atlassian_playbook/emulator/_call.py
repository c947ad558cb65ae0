"""One authenticated gateway call, and what every product's answer shares: Atlassian's time
format, the error body of each product, and opaque page tokens."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ._http import Request, Response
from ._state import digest
from ._world import site_by_ref

__all__ = ["Call", "Handler", "iso", "gateway_error_body", "page_token", "read_page_token"]

REPORT_PATH = "/app/report-accounts/"


@dataclass
class Call:
    """One authenticated gateway request: the token's record, its grant, whose it is, when."""

    request: Request
    data: dict
    access: dict
    grant: dict
    user: dict
    now: float

    def site(self, cloud_id: str) -> dict | None:
        return site_by_ref(self.data["world"], cloud_id) if cloud_id else None


# A product endpoint: (call, site, path parameters) -> response.
Handler = Callable[[Call, dict, dict], Response]


def iso(ts: float) -> str:
    """ISO 8601 UTC with milliseconds, as Atlassian writes times."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{int(ts * 1000) % 1000:03d}Z"
    )


def gateway_error_body(path: str, status: int, message: str) -> dict:
    """An error body in the shape of the product behind ``path``."""
    if path.startswith("/ex/jira/"):
        return {"errorMessages": [message], "errors": {}}
    if path.startswith("/ex/confluence/") and "/wiki/api/v2/" in path:
        code = message.upper().replace(" ", "_")
        return {"errors": [{"status": status, "code": code, "title": message, "detail": None}]}
    if path.startswith("/ex/confluence/"):
        return {"statusCode": status, "message": message}
    if path.startswith(REPORT_PATH):
        return {"errorType": message.upper().replace(" ", "_"), "errorMessage": message}
    return {"code": status, "message": message}


def page_token(query: str, offset: int) -> str:
    """An opaque token for the page at ``offset`` of the results of ``query``."""
    raw = json.dumps({"q": digest(query)[:16], "o": offset}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def read_page_token(token: str, query: str) -> int | None:
    """The offset a :func:`page_token` stands for, or ``None`` when it is not one for ``query``."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value = json.loads(raw)
        offset = value["o"]
        if value["q"] != digest(query)[:16] or not isinstance(offset, int) or offset < 0:
            return None
    except (ValueError, KeyError, TypeError):
        return None
    return offset
