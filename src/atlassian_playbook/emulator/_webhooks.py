"""Jira's dynamic webhooks for OAuth 2.0 apps (REST v3 "Webhooks"), and their deliveries.

An app registers webhooks for itself and the calling user on one site, each a JQL filter and a
list of events; all of an app's webhooks share one URL (the app's webhook URL). Each expires
30 days after its registration or its last refresh, on the emulator's clock. When an issue is
created or edited through the emulated Jira API, every unexpired webhook of an app whose events
and JQL match is delivered: one POST per app to its URL, the Jira event as the body,
``Authorization: Bearer <JWT>`` signed HS256 with the app's client secret.

Where FACTS.md and Jira's documentation are silent, the emulator chooses (docs/EMULATOR.md):

* the app's URL is its registration's ``webhook_url`` (world file, ``Emulator.set_webhook_url``);
  without one, the URL of the app's existing webhooks, and any URL while it has none. Another
  URL is a 400 (Jira: "Only a single URL per app is allowed to be registered");
* deliveries go to loopback only (``127.0.0.1``, ``localhost``, ``::1``): another host is
  refused at registration, so the emulator never sends anywhere else;
* the JWT's claims: ``iss`` the client id, ``sub`` the registering account, ``iat``, ``exp``
  (5 minutes later, on the real clock, since the receiver checks it against its own),
  ``jti`` the delivery id and ``body_sha256`` (hex SHA-256 of the exact body, so a receiver can
  tell a changed body; Atlassian documents no claims);
* at most 5 webhooks per app, user and site (Jira's documented limit for OAuth 2.0 apps);
  more are refused in the registration result's ``errors``;
* for an app that is not shared, a webhook registered by anyone but its owner is kept and
  listed but never sent, and not listed as failed either (nothing was attempted);
* a delivery is sent once, synchronously after the API call's state is saved and before its
  answer, with short timeouts; a refused connection, a timeout or a non-2xx answer is listed by
  ``GET /webhook/failed`` (Jira retries; the emulator does not).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass

import httpx

from ._call import Call
from ._http import Response, empty_response, json_response, log
from ._jql import JqlError, run_jql
from ._world import check_webhook_url

__all__ = [
    "EVENTS",
    "LIFETIME",
    "WebhookApi",
]

LIFETIME = 30 * 24 * 3600
MAX_PER_USER = 5
JWT_LIFETIME = 300
DELIVERY_TIMEOUT = httpx.Timeout(5.0, connect=2.0)
# The events Jira's WebhookDetails accepts for dynamic webhooks.
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
DEFAULT_MAX_RESULTS = 100


def _ms(ts: float) -> int:
    return int(ts * 1000)


def _error(status: int, *messages: str) -> Response:
    return json_response(status, {"errorMessages": list(messages), "errors": {}})


@dataclass
class _Delivery:
    url: str
    body: bytes
    token: str
    client_id: str
    site_id: str


class WebhookApi:
    """The ``/rest/api/{2,3}/webhook`` operations and the deliveries of issue events."""

    def __init__(self, emulator) -> None:
        self.emu = emulator
        self._pending = threading.local()

    # --- the operations --------------------------------------------------------------------

    def handlers(self, api: str) -> dict:
        return {
            ("GET", f"{api}/webhook"): self.list_webhooks,
            ("POST", f"{api}/webhook"): self.register,
            ("DELETE", f"{api}/webhook"): self.delete,
            ("GET", f"{api}/webhook/failed"): self.failed,
            ("PUT", f"{api}/webhook/refresh"): self.refresh,
        }

    def _mine(self, call: Call, site: dict) -> list[dict]:
        """The calling app's webhooks for the calling user on ``site``, oldest first."""
        return [
            hook for hook in call.data["webhooks"].values()
            if hook["client_id"] == call.grant["client_id"]
            and hook["account_id"] == call.user["account_id"]
            and hook["site_id"] == site["id"]
        ]

    def _app_url(self, call: Call) -> str | None:
        client_id = call.grant["client_id"]
        registered = call.data["clients"][client_id].get("webhook_url")
        if registered:
            return registered
        return next((h["url"] for h in call.data["webhooks"].values()
                     if h["client_id"] == client_id), None)

    def register(self, call: Call, site: dict, params: dict, **_) -> Response:
        body = _json_object(call)
        if isinstance(body, Response):
            return body
        url, webhooks = body.get("url"), body.get("webhooks")
        if not isinstance(url, str) or not url or not isinstance(webhooks, list) or not webhooks:
            return _error(400, 'The body must be {"url": ..., "webhooks": [{"jqlFilter": ..., '
                          '"events": [...]}]} with at least one webhook.')
        try:
            check_webhook_url(url)
        except ValueError as error:
            return _error(400, str(error))
        app_url = self._app_url(call)
        if app_url is not None and url != app_url:
            return _error(400, f"Only a single URL per app is allowed to be registered: this "
                          f"app's webhook URL is {app_url}.")
        results = []
        count = len(self._mine(call, site))
        for details in webhooks:
            errors = self._problems(site, details)
            if not errors and count >= MAX_PER_USER:
                errors = [f"The limit of {MAX_PER_USER} webhooks per app and user on this site "
                          "is reached; delete one first."]
            if errors:
                results.append({"errors": errors})
                continue
            webhook_id = call.data["next_webhook_id"]
            call.data["next_webhook_id"] += 1
            call.data["webhooks"][str(webhook_id)] = {
                "id": webhook_id,
                "client_id": call.grant["client_id"],
                "account_id": call.user["account_id"],
                "site_id": site["id"],
                "url": url,
                "jqlFilter": details["jqlFilter"],
                "events": list(dict.fromkeys(details["events"])),
                "fieldIdsFilter": details.get("fieldIdsFilter"),
                "expires_at": call.now + LIFETIME,
            }
            count += 1
            results.append({"createdWebhookId": webhook_id})
        return json_response(200, {"webhookRegistrationResult": results})

    def _problems(self, site: dict, details) -> list[str]:
        if not isinstance(details, dict):
            return ["A webhook must be an object with jqlFilter and events."]
        errors = []
        jql, events = details.get("jqlFilter"), details.get("events")
        if not isinstance(jql, str) or not jql.strip():
            errors.append("The JQL filter (jqlFilter) is required.")
        else:
            try:
                run_jql(site, jql)
            except JqlError as error:
                errors.append(f"Invalid JQL filter: {error}")
        if not isinstance(events, list) or not events:
            errors.append("At least one event is required.")
        else:
            unknown = [e for e in events if e not in EVENTS]
            if unknown:
                errors.append(f"Webhook events {unknown} are not supported; supported: "
                              f"{', '.join(EVENTS)}.")
        field_ids = details.get("fieldIdsFilter")
        if field_ids is not None and (not isinstance(field_ids, list) or not all(
                isinstance(f, str) for f in field_ids)):
            errors.append("fieldIdsFilter must be a list of field ids.")
        return errors

    def list_webhooks(self, call: Call, site: dict, params: dict, **_) -> Response:
        try:
            start = int(call.request.param("startAt") or 0)
            limit = int(call.request.param("maxResults") or DEFAULT_MAX_RESULTS)
            if start < 0 or limit < 1:
                raise ValueError
        except ValueError:
            return _error(400, "startAt must be 0 or more and maxResults 1 or more.")
        hooks = sorted(self._mine(call, site), key=lambda h: h["id"])
        page = hooks[start : start + min(limit, DEFAULT_MAX_RESULTS)]
        values = []
        for hook in page:
            value = {"id": hook["id"], "jqlFilter": hook["jqlFilter"], "events": hook["events"],
                     "expirationDate": _ms(hook["expires_at"])}
            if hook.get("fieldIdsFilter") is not None:
                value["fieldIdsFilter"] = hook["fieldIdsFilter"]
            values.append(value)
        return json_response(200, {
            "maxResults": limit, "startAt": start, "total": len(hooks),
            "isLast": start + len(page) >= len(hooks), "values": values,
        })

    def _ids(self, call: Call) -> list[int] | Response:
        body = _json_object(call)
        if isinstance(body, Response):
            return body
        ids = body.get("webhookIds")
        if not isinstance(ids, list) or not ids or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in ids):
            return _error(400, 'The body must be {"webhookIds": [...]} with at least one id.')
        return ids

    def refresh(self, call: Call, site: dict, params: dict, **_) -> Response:
        ids = self._ids(call)
        if isinstance(ids, Response):
            return ids
        expires = call.now + LIFETIME
        for hook in self._mine(call, site):  # another app's or user's ids are ignored, as Jira
            if hook["id"] in ids:
                hook["expires_at"] = expires
        return json_response(200, {"expirationDate": _ms(expires)})

    def delete(self, call: Call, site: dict, params: dict, **_) -> Response:
        ids = self._ids(call)
        if isinstance(ids, Response):
            return ids
        for hook in self._mine(call, site):
            if hook["id"] in ids:
                del call.data["webhooks"][str(hook["id"])]
        return empty_response(202)

    def failed(self, call: Call, site: dict, params: dict, *, version: str = "3") -> Response:
        try:
            limit = int(call.request.param("maxResults") or DEFAULT_MAX_RESULTS)
            after = int(call.request.param("after") or -1)
            if limit < 1:
                raise ValueError
        except ValueError:
            return _error(400, "maxResults must be 1 or more and after epoch milliseconds.")
        mine = sorted(
            (f for f in call.data["failed_webhooks"]
             if f["client_id"] == call.grant["client_id"] and f["site_id"] == site["id"]
             and f["failureTime"] > after),
            key=lambda f: f["failureTime"],
        )
        page = mine[:limit]
        body: dict = {
            "values": [{k: f[k] for k in ("id", "body", "url", "failureTime")} for f in page],
            "maxResults": limit,
        }
        if len(mine) > limit:
            base = f"{self.emu.api_base_url}/ex/jira/{site['id']}/rest/api/{version}"
            body["next"] = (f"{base}/webhook/failed?maxResults={limit}"
                            f"&after={page[-1]['failureTime']}")
        return json_response(200, body)

    # --- deliveries ------------------------------------------------------------------------

    def issue_event(self, call: Call, site: dict, issue: dict, event: str, issue_json: dict,
                    changelog: dict | None = None) -> None:
        """Queue the deliveries ``event`` on ``issue`` causes; :meth:`send_pending` sends them
        once the request's state is saved."""
        changed = {item["field"] for item in (changelog or {}).get("items", [])}
        by_app: dict[str, list[dict]] = {}
        for hook in call.data["webhooks"].values():
            if hook["site_id"] != site["id"] or event not in hook["events"]:
                continue
            if hook["expires_at"] <= call.now:
                continue
            if event == "jira:issue_updated" and hook.get("fieldIdsFilter") and not (
                    changed & set(hook["fieldIdsFilter"])):
                continue
            client = call.data["clients"].get(hook["client_id"])
            if client is None:
                continue
            if not client["sharing"] and hook["account_id"] != client["owner"]:
                continue  # FACTS.md: not shared, delivered only for its owner's webhooks
            try:
                matches = {i["key"] for i in run_jql(site, hook["jqlFilter"])}
            except JqlError:
                continue
            if issue["key"] in matches:
                by_app.setdefault(hook["client_id"], []).append(hook)
        for client_id, hooks in by_app.items():
            payload = {
                "timestamp": _ms(call.now),
                "webhookEvent": event,
                "issue_event_type_name": event.split(":", 1)[1],
                "matchedWebhookIds": sorted(h["id"] for h in hooks),
                "user": {"accountId": call.user["account_id"],
                         "displayName": call.user["name"]},
                "issue": issue_json,
            }
            if changelog is not None:
                payload["changelog"] = changelog
            body = json.dumps(payload).encode("utf-8")
            now = int(time.time())
            claims = {
                "iss": client_id, "sub": hooks[0]["account_id"], "iat": now,
                "exp": now + JWT_LIFETIME, "jti": str(uuid.uuid4()),
                "body_sha256": hashlib.sha256(body).hexdigest(),
            }
            secret = call.data["clients"][client_id]["client_secret"]
            import jwt  # loaded at the first delivery: every embedded emulator imports this

            token = jwt.encode(claims, secret, algorithm="HS256")
            self._queue().append(_Delivery(hooks[0]["url"], body, token, client_id, site["id"]))

    def _queue(self) -> list[_Delivery]:
        if not hasattr(self._pending, "items"):
            self._pending.items = []
        return self._pending.items

    def drop_pending(self) -> None:
        """Forget what an earlier request of this thread queued and did not send."""
        self._pending.items = []

    def send_pending(self) -> None:
        """Send this thread's queued deliveries; record the ones that fail."""
        pending, self._pending.items = self._queue(), []
        failures = []
        for delivery in pending:
            problem = _post(delivery)
            if problem is not None:
                log.debug("emulator webhook delivery to %s failed: %s", delivery.url, problem)
                failures.append(delivery)
        if not failures:
            return
        with self.emu._store.transaction() as data:
            for delivery in failures:
                data["failed_webhooks"].append({
                    "id": str(uuid.uuid4()), "client_id": delivery.client_id,
                    "site_id": delivery.site_id, "body": delivery.body.decode("utf-8"),
                    "url": delivery.url, "failureTime": _ms(self.emu._now(data)),
                })


def _post(delivery: _Delivery) -> str | None:
    """POST one delivery; what went wrong, or ``None``."""
    check_webhook_url(delivery.url)  # never anywhere but loopback, whatever the state says
    try:
        with httpx.Client(timeout=DELIVERY_TIMEOUT, trust_env=False) as http:
            response = http.post(delivery.url, content=delivery.body, headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {delivery.token}",
                "User-Agent": "Atlassian Webhook HTTP Client (emulator)",
            })
    except httpx.HTTPError as error:
        return type(error).__name__
    return None if response.is_success else f"HTTP {response.status_code}"


def _json_object(call: Call) -> dict | Response:
    if call.request.content_type != "application/json":
        return _error(415, "Unsupported Media Type")
    try:
        body = call.request.json()
    except ValueError:
        return _error(400, "Invalid request payload. Refer to the REST API documentation and "
                      "try again.")
    if not isinstance(body, dict):
        return _error(400, "Invalid request payload. Refer to the REST API documentation and "
                      "try again.")
    return body
