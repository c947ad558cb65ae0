"""The app's dynamic Jira webhooks: register, list, refresh, delete, failed deliveries; and the
receiving end, which checks each delivery's signature.

OAuth 2.0 apps register their Jira webhooks through REST (``/rest/api/3/webhook``, scopes
``read:jira-work`` and ``manage:jira-webhook``), one URL per app, and each webhook **expires
30 days** after its registration or last refresh (FACTS.md, "Beyond the 3LO consent flow"):
an integration that never refreshes goes quiet a month after launch. :func:`due_within` finds
the ones to refresh.

Each call checks the site's granted scopes first (what accessible-resources lists for it) and
raises :class:`~.errors.ScopeNotGranted` naming the scope to add, before anything is sent.

A delivery carries ``Authorization: Bearer <JWT>`` signed HS256 with the app's client secret.
:func:`verify_delivery` checks it with PyJWT (signature, ``exp``, ``iss`` = the client id) and,
when the token carries a ``body_sha256`` claim (the emulator's; Atlassian documents no
claims), that the body is the one signed. :class:`WebhookReceiver` is a small loopback listener
for rehearsals: it collects deliveries, verifies each and answers 401 to a bad one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from . import scopes as scope_catalog
from .errors import ApiError, ScopeNotGranted, WebhookSignatureInvalid
from .redact import Secret, get_logger

if TYPE_CHECKING:
    from .api import ApiClient
    from .sites import Site
    from .target import Target

__all__ = [
    "Webhook",
    "FailedDelivery",
    "Delivery",
    "SiteWebhooks",
    "WebhookReceiver",
    "for_target",
    "due_within",
    "listing_text",
    "verify_delivery",
    "EVENTS",
    "LIFETIME_DAYS",
]

log = get_logger(__name__)

LIFETIME_DAYS = 30
EVENTS = (
    "jira:issue_created",
    "jira:issue_updated",
    "jira:issue_deleted",
    "comment_created",
    "comment_updated",
    "comment_deleted",
    "issue_property_set",
    "issue_property_deleted",
)
MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Webhook:
    """One registered webhook as Jira lists it; ``expires_at`` is ``expirationDate`` (UTC)."""

    id: int
    jql: str
    events: tuple[str, ...]
    expires_at: datetime
    field_ids: tuple[str, ...] | None = None

    @classmethod
    def from_json(cls, value: dict) -> Webhook:
        expires = value.get("expirationDate")
        return cls(
            id=int(value["id"]),
            jql=value.get("jqlFilter", ""),
            events=tuple(value.get("events") or ()),
            expires_at=datetime.fromtimestamp(int(expires) / 1000, UTC) if expires else
            datetime.max.replace(tzinfo=UTC),
            field_ids=tuple(value["fieldIdsFilter"]) if value.get("fieldIdsFilter") else None,
        )

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or datetime.now(UTC))

    def to_dict(self, now: datetime | None = None, due_days: int = 7) -> dict:
        now = now or datetime.now(UTC)
        return {
            "id": self.id,
            "jql": self.jql,
            "events": list(self.events),
            "expires_at": self.expires_at.isoformat(),
            "expired": self.is_expired(now),
            "due": self.expires_at <= now + timedelta(days=due_days),
        }


@dataclass(frozen=True)
class FailedDelivery:
    """A delivery Jira could not make (``GET /webhook/failed``); ``failed_at`` is UTC."""

    id: str
    url: str
    body: str
    failed_at: datetime


def due_within(webhooks: Iterable[Webhook], days: float = 7,
               now: datetime | None = None) -> list[Webhook]:
    """The webhooks that expire within ``days`` (expired ones too), soonest first: the ones to
    refresh now."""
    limit = (now or datetime.now(UTC)) + timedelta(days=days)
    return sorted((w for w in webhooks if w.expires_at <= limit), key=lambda w: w.expires_at)


def listing_text(webhooks: Sequence[Webhook], now: datetime | None = None,
                 due_days: float = 7) -> str:
    """One line per webhook: id, expiry and how far off, ``DUE``/``EXPIRED`` marks, events,
    JQL; what ``webhooks list`` prints."""
    if not webhooks:
        return "No webhooks registered for this app and user on this site."
    now = now or datetime.now(UTC)
    due = {w.id for w in due_within(webhooks, due_days, now)}
    lines = []
    for hook in webhooks:
        left = (hook.expires_at - now).total_seconds() / 86400
        when = f"{hook.expires_at:%Y-%m-%d %H:%M} UTC"
        mark = ("EXPIRED" if left <= 0 else "DUE    ") if hook.id in due else "       "
        span = f"{-left:.1f} days ago" if left <= 0 else f"in {left:.1f} days"
        lines.append(f"{mark} {hook.id}  expires {when} ({span})  {','.join(hook.events)}  "
                     f"{hook.jql}")
    if due:
        lines.append(f"{len(due)} due within {due_days:g} days: `atlassian-playbook webhooks "
                     "refresh` extends them by 30 days.")
    return "\n".join(lines)


class SiteWebhooks:
    """The app's webhooks for the signed-in user on one site, through ``api``.

    ``site`` is a :class:`~.sites.Site` from accessible-resources: its ``scopes`` are what the
    scope checks read. Get one with :func:`for_target`.
    """

    def __init__(self, api: ApiClient, site: Site) -> None:
        self.api = api
        self.site = site
        self._base = f"/ex/jira/{site.id}/rest/api/3/webhook"

    def __repr__(self) -> str:
        return f"SiteWebhooks({self.site.name})"

    def allows(self, method: str, suffix: str = "") -> bool:
        """Whether the site's granted scopes cover ``method`` on the webhook endpoint
        ``suffix`` (``""``, ``"/refresh"``, ``"/failed"``): the catalog's classic or granular
        set, as Jira checks them."""
        granted = set(self.site.scopes)
        alternatives = scope_catalog.required_scopes(method, self._base + suffix)
        return any(set(alt) <= granted for alt in alternatives)

    def _check(self, method: str, path: str) -> None:
        if self.allows(method, path.removeprefix(self._base)):
            return
        granted = set(self.site.scopes)
        alternatives = scope_catalog.required_scopes(method, path)
        missing = sorted(set(alternatives[0]) - granted) if alternatives else []
        raise ScopeNotGranted(
            f"{method} {path} needs {' + '.join(alternatives[0]) if alternatives else '?'} on "
            f"{self.site.name}; this connection lacks {', '.join(missing)} there.",
            f"Add {', '.join(missing)} on the console's Permissions tab (Jira API), add "
            f"{'it' if len(missing) == 1 else 'them'} to ATLASSIAN_SCOPES and log in again, "
            f"choosing {self.site.name} on the consent screen.",
            url=self.api.base_url + path,
        )

    def _send(self, method: str, suffix: str = "", **kwargs: Any):
        path = self._base + suffix
        self._check(method, path)
        return self.api.request(method, path, **kwargs)

    def now(self) -> datetime:
        """The site's clock (``serverInfo``'s ``serverTime``): what expiry is measured against.
        Against the emulator it includes ``advance_clock``; against Jira it is Jira's time."""
        info = self.api.get_json(f"/ex/jira/{self.site.id}/rest/api/3/serverInfo")
        try:
            return datetime.strptime(info["serverTime"], "%Y-%m-%dT%H:%M:%S.%f%z")
        except (KeyError, TypeError, ValueError):
            return datetime.now(UTC)

    def due(self, days: float = 7) -> list[Webhook]:
        """The webhooks that expire within ``days`` on the site's clock (expired ones too)."""
        return due_within(self.list(), days, self.now())

    def listing(self, due_days: float = 7) -> str:
        """Every webhook, one line each, with its expiry and the ``DUE``/``EXPIRED`` marks."""
        return listing_text(self.list(), self.now(), due_days)

    def register(self, url: str, jql: str, events: Sequence[str],
                 field_ids: Sequence[str] | None = None) -> Webhook:
        """Register one webhook (``POST /webhook``) and return it as listed, expiry included.

        Jira refuses a webhook (an unknown event, a JQL it cannot use, the per-user limit) in
        the registration result; that is an :class:`~.errors.ApiError` with Jira's reasons.
        """
        if isinstance(events, str):
            events = [e.strip() for e in events.split(",") if e.strip()]
        details: dict[str, Any] = {"jqlFilter": jql, "events": list(events)}
        if field_ids:
            details["fieldIdsFilter"] = list(field_ids)
        response = self._send("POST", json={"url": url, "webhooks": [details]})
        results = response.json().get("webhookRegistrationResult") or [{}]
        result = results[0]
        if "createdWebhookId" not in result:
            raise ApiError(
                f"Jira refused the webhook ({jql!r}, {', '.join(events)}): "
                + "; ".join(result.get("errors") or ["no reason given"]),
                f"Use events from {', '.join(EVENTS[:3])}, ... and a JQL filter Jira accepts "
                "for webhooks (project, issuetype, status, key with = or IN, joined by AND).",
                status_code=response.status_code,
                url=str(response.request.url),
            )
        created = int(result["createdWebhookId"])
        return next(w for w in self.list() if w.id == created)

    def list(self) -> list[Webhook]:
        """Every webhook of the app for this user on the site (``GET /webhook``, all pages)."""
        found: list[Webhook] = []
        start = 0
        while True:
            self._check("GET", self._base)
            page = self.api.get_json(self._base, params={"startAt": start, "maxResults": 100})
            values = page.get("values") or []
            found.extend(Webhook.from_json(v) for v in values)
            start += len(values)
            if page.get("isLast", True) or not values:
                return found

    def refresh(self, ids: Iterable[int] | None = None) -> datetime:
        """Extend ``ids`` (default: all the app's webhooks) by 30 days from now
        (``PUT /webhook/refresh``); returns the new expiry."""
        ids = [int(i) for i in (ids if ids is not None else (w.id for w in self.list()))]
        if not ids:
            raise ApiError("There is no webhook to refresh on this site.",
                           "Register one first (`atlassian-playbook webhooks register`).")
        response = self._send("PUT", "/refresh", json={"webhookIds": ids})
        return datetime.fromtimestamp(int(response.json()["expirationDate"]) / 1000, UTC)

    def delete(self, ids: Iterable[int]) -> None:
        """Remove ``ids`` (``DELETE /webhook``); ids of other apps are ignored, as Jira does."""
        ids = [int(i) for i in ids]
        self._send("DELETE", json={"webhookIds": ids})

    def failed(self) -> list[FailedDelivery]:
        """Deliveries Jira could not make (``GET /webhook/failed``, every page)."""
        found: list[FailedDelivery] = []
        params: dict[str, Any] = {"maxResults": 100}
        while True:
            self._check("GET", self._base + "/failed")
            page = self.api.get_json(self._base + "/failed", params=params)
            for value in page.get("values") or []:
                found.append(FailedDelivery(
                    id=str(value["id"]), url=value.get("url", ""), body=value.get("body", ""),
                    failed_at=datetime.fromtimestamp(int(value["failureTime"]) / 1000, UTC),
                ))
            if not page.get("next") or not page.get("values"):
                return found
            params = {"maxResults": 100, "after": page["values"][-1]["failureTime"]}


def for_target(target: Target, *, account_id: str | None = None,
               site: str | None = None) -> SiteWebhooks:
    """The webhooks of the target's stored connection on its site: ``site``, else
    ``ATLASSIAN_SITE``, else the site the connection chose at login (as ``verify`` does)."""
    from .sites import choose_site

    entry = target.store.get(target.settings.client_id, account_id)
    api = target.api_client(account_id=entry.account_id)
    wanted = site or target.settings.site or (entry.site or {}).get("id")
    return SiteWebhooks(api, choose_site(api.accessible_resources(), wanted))


# --- the receiving end ---------------------------------------------------------------------------


def verify_delivery(body: bytes, authorization: str | None, client_secret: str | Secret,
                    client_id: str) -> dict:
    """The claims of a delivery's JWT, checked; raises :class:`WebhookSignatureInvalid`.

    Checked with PyJWT: HS256 signature with ``client_secret``, ``exp`` and ``iat`` present
    and ``exp`` not passed, ``iss`` equal to ``client_id``; and, when the token has a
    ``body_sha256`` claim, that ``body`` is exactly what was signed.
    """
    import jwt  # PyJWT and cryptography (40 ms) load here only: every notebook imports us

    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise WebhookSignatureInvalid("The delivery has no Authorization: Bearer <JWT> header.")
    secret = client_secret.reveal() if isinstance(client_secret, Secret) else client_secret
    try:
        claims = jwt.decode(token.strip(), secret, algorithms=["HS256"], issuer=client_id,
                            options={"require": ["exp", "iat", "iss"]})
    except jwt.ExpiredSignatureError:
        raise WebhookSignatureInvalid("The delivery's JWT has expired.") from None
    except jwt.InvalidIssuerError:
        raise WebhookSignatureInvalid(
            "The delivery's JWT was issued for another app (iss is not this client id).") from None
    except jwt.InvalidTokenError as error:
        raise WebhookSignatureInvalid(
            f"The delivery's JWT does not verify ({type(error).__name__}).") from None
    expected = claims.get("body_sha256")
    if expected is not None and not hmac.compare_digest(
            str(expected), hashlib.sha256(body).hexdigest()):
        raise WebhookSignatureInvalid("The delivery's body is not the one its JWT signed.")
    return claims


@dataclass
class Delivery:
    """One POST the receiver got: the parsed ``body`` (``{}`` if not JSON), whether its
    signature verified, and why not (``error``)."""

    body: dict = field(repr=False)
    verified: bool
    error: str | None = None
    claims: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        state = "verified" if self.verified else f"refused: {self.error}"
        return f"Delivery({self.event} {self.issue_key}, {state})"

    @property
    def event(self) -> str:
        return str(self.body.get("webhookEvent", ""))

    @property
    def issue_key(self) -> str | None:
        return (self.body.get("issue") or {}).get("key")


class WebhookReceiver:
    """A loopback listener for webhook deliveries, for rehearsals (``with`` closes it).

    Every POST is verified with :func:`verify_delivery`; a good one is answered 200, a bad one
    401 (so Jira lists it as failed). :meth:`wait_for` waits on a condition, never sleeps.
    """

    def __init__(self, client_secret: str | Secret, client_id: str, *, host: str = "127.0.0.1",
                 port: int = 0, path: str = "/webhook") -> None:
        self._secret = Secret(client_secret) if not isinstance(client_secret, Secret) \
            else client_secret
        self.client_id = client_id
        self.path = path
        self.deliveries: list[Delivery] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self.send_error(413)
                    return
                body = self.rfile.read(length)
                status = receiver._take(body, self.headers.get("Authorization"))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.debug("webhook receiver: %s", self.requestline.split(" ")[0:2])

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"WebhookReceiver({self.url}, {len(self.deliveries)} deliveries)"

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.path}"

    def _take(self, body: bytes, authorization: str | None) -> int:
        try:
            parsed = json.loads(body.decode("utf-8"))
        except ValueError:
            parsed = {}
        try:
            claims = verify_delivery(body, authorization, self._secret, self.client_id)
            delivery = Delivery(parsed if isinstance(parsed, dict) else {}, True, claims=claims)
        except WebhookSignatureInvalid as error:
            delivery = Delivery(parsed if isinstance(parsed, dict) else {}, False, error.message)
        with self._changed:
            self.deliveries.append(delivery)
            self._changed.notify_all()
        return 200 if delivery.verified else 401

    def start(self) -> WebhookReceiver:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            name="webhook-receiver", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[Delivery]:
        """The deliveries once there are ``count`` of them, or as many as came within
        ``timeout`` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.deliveries) >= count, timeout)
            return list(self.deliveries)
