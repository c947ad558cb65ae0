"""Notebook 08: the app's dynamic Jira webhooks, from registration to the 30-day expiry.

Against the embedded emulator the whole story runs on loopback: a :class:`WebhookReceiver`
stands in for the app's public endpoint, the emulator delivers signed events to it, and its
clock jumps past the expiry. The webhook calls need ``read:jira-work`` and
``manage:jira-webhook`` (and creating an issue ``write:jira-work``); when the workspace's own
connection lacks them, the rehearsal consents a connection of its own (the emulator only), so
every profile sees a real delivery. Against Atlassian the steps use the workspace's
connection, register the user's own public URL, and say why nothing can be received here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .. import connection, webhooks
from ..callback import is_loopback
from ..errors import ConfigError, PlaybookError
from ..profiles import is_loopback_host
from ..target import Target, emulator_settings
from ..webhooks import LIFETIME_DAYS, SiteWebhooks, WebhookReceiver
from ._results import StepResult, skipped, step
from .session import Session, opt, words

__all__ = [
    "WEBHOOK_SCOPES",
    "WebhookRehearsal",
    "open_webhooks",
    "register_webhook",
    "create_issue_and_watch",
    "list_webhook_expiry",
    "jump_past_expiry",
    "refresh_and_watch",
    "close_webhooks",
]

# What the steps call: the webhook endpoints, and creating an issue that fires one.
WEBHOOK_SCOPES = ("read:me", "read:jira-work", "write:jira-work", "manage:jira-webhook")
# How long a step waits for a delivery the emulator has already attempted when its API call
# returned (it delivers inside the call): a bound for a loaded machine, never a delay.
_DELIVERY_PATIENCE = 30.0


@dataclass(repr=False)
class WebhookRehearsal(StepResult):
    """The webhooks of one connection on its site, and (against the emulator) the receiver
    standing in for the app's endpoint. Later steps take it; :func:`close_webhooks` ends it."""

    hooks: SiteWebhooks | None = None
    receiver: WebhookReceiver | None = None
    target: Target | None = None
    session: Session | None = None
    url: str = ""
    project: str = ""
    registered: list[int] = field(default_factory=list)

    @property
    def rehearsing(self) -> bool:
        return self.receiver is not None


# The emulated app the rehearsal uses when the workspace's connection lacks WEBHOOK_SCOPES.
# It is an app of its own because Atlassian keeps one grant per app and account: consenting
# the workspace's app again with other scopes would change the workspace's grant.
REHEARSAL_APP = "playbook-webhook-rehearsal"


def _own_connection(session: Session) -> Target:
    """A connection to the rehearsal's own emulated app (:data:`REHEARSAL_APP`) with
    :data:`WEBHOOK_SCOPES`, consented headless, in a token store beside the workspace's: the
    workspace's app, grant and tokens stay as they were."""
    emulator = session.target.emulator
    redirect_uri = session.settings.redirect_uri
    app = emulator.client(REHEARSAL_APP)
    if app is None or redirect_uri not in app.redirect_uris:
        app = emulator.register_client(
            client_id=REHEARSAL_APP, name="Webhook rehearsal app", redirect_uris=[redirect_uri],
            client_secret=app.client_secret if app else None)
    settings = emulator_settings(
        emulator,
        client_id=app.client_id,
        client_secret=app.client_secret,
        scopes=(*WEBHOOK_SCOPES, "offline_access"),
        redirect_uri=redirect_uri,
        token_store=session.state_dir / "webhook-rehearsal-tokens.json",
        env_file=session.settings.env_file,
    )
    target = Target(settings, emulator)
    connection.login(target, browser="headless", site=session.settings.site or None,
                     show_url=lambda _url: None)
    return target


def _granted_here(hooks: SiteWebhooks) -> bool:
    return set(WEBHOOK_SCOPES) - {"read:me"} <= set(hooks.site.scopes)


@step(shows_itself=True)
def open_webhooks(session: Session, *, webhook_url: str = "") -> WebhookRehearsal:
    """The connection and site the webhooks live on, and where deliveries go."""
    result = WebhookRehearsal("webhooks_open", {}, session=session)
    if session.uses_emulator:
        own = session.target
        hooks = None
        try:
            hooks = webhooks.for_target(own)
        except PlaybookError:
            pass  # no stored connection yet: the rehearsal makes its own
        if hooks is None or not _granted_here(hooks):
            own = _own_connection(session)
            hooks = webhooks.for_target(own)
            result.say(
                "The workspace's connection lacks some of "
                f"`{' '.join(WEBHOOK_SCOPES)}` on its site, so this rehearsal uses an emulated "
                "app of its own that has them (Atlassian keeps one grant per app and account, "
                "so consenting yours again would change your grant; yours is unchanged). For your "
                "app: add `manage:jira-webhook` (and `read:jira-work`) on the Permissions tab "
                "and in notebook 03, then log in again."
            )
        client = own.settings
        receiver = WebhookReceiver(client.client_secret, client.client_id).start()
        session.target.emulator.set_webhook_url(receiver.url, client.client_id)
        # Webhooks left by an earlier run of this notebook go: the app has one URL, and Jira
        # caps webhooks per app, user and site.
        leftover = [w.id for w in hooks.list()]
        if leftover:
            hooks.delete(leftover)
        result.hooks, result.receiver, result.target = hooks, receiver, own
        result.url = receiver.url
        where = ("a loopback receiver standing in for your app's public endpoint, which checks "
                 "each delivery's signature")
    else:
        url = opt(webhook_url)
        if not url:
            raise ConfigError(
                "Against Atlassian, a webhook needs your app's public URL.",
                "Set the notebook's webhook_url parameter to your app's HTTPS endpoint (the one "
                "URL Jira delivers this app's webhooks to).",
            )
        parts = urlsplit(url)
        if parts.scheme != "https" or is_loopback(url) or is_loopback_host(url):
            raise ConfigError(
                f"{url} is not a public HTTPS URL: Atlassian's servers cannot reach this "
                "machine.",
                "Give your app's public HTTPS endpoint; to rehearse deliveries, run this "
                "notebook against the emulator (no credentials in .env).",
            )
        result.hooks, result.target, result.url = webhooks.for_target(session.target), \
            session.target, url
        where = ("your app's public endpoint: Atlassian delivers there, so nothing can be "
                 "received (or its signature checked) in this notebook")
    site = result.hooks.site
    result.project = _first_project(result.hooks)
    result.data = {"site": site.name, "url_is_loopback": result.rehearsing,
                   "rehearsal_connection": result.target is not session.target,
                   "project": result.project}
    return result.say(f"Webhooks on **{site.name}**, delivered to {where}.")


def _first_project(hooks: SiteWebhooks) -> str:
    found = hooks.api.get_json(f"/ex/jira/{hooks.site.id}/rest/api/3/project/search")
    values = found.get("values") if isinstance(found, dict) else None
    return (values or [{}])[0].get("key", "")


@step()
def register_webhook(hooks: WebhookRehearsal, *, jql: str = "",
                     events: str = "jira:issue_created,jira:issue_updated") -> StepResult:
    """``POST /rest/api/3/webhook``: a JQL filter and events; Jira answers with its id, and it
    expires 30 days later."""
    jql = opt(jql) or f"project = {hooks.project}"
    hook = hooks.hooks.register(hooks.url, jql, words(events))
    hooks.registered.append(hook.id)
    listed = hook.to_dict(hooks.hooks.now())
    result = StepResult("webhook_registered", listed)
    result.table([listed], ["id", "jql", "events", "expires_at"])
    return result.say(
        f"It expires on {hook.expires_at:%Y-%m-%d %H:%M} UTC ({LIFETIME_DAYS} days) unless "
        "refreshed: Jira then stops delivering without telling anyone."
    )


def _create_issue(hooks: WebhookRehearsal, summary: str) -> str:
    response = hooks.hooks.api.request(
        "POST", f"/ex/jira/{hooks.hooks.site.id}/rest/api/3/issue",
        json={"fields": {"project": {"key": hooks.project}, "summary": summary,
                         "issuetype": {"name": "Task"}}},
    )
    return response.json()["key"]


def _deliveries(hooks: WebhookRehearsal, before: int, key: str) -> list[Any]:
    """The deliveries about ``key`` the receiver got after the first ``before``."""
    got = hooks.receiver.deliveries[before:]
    return [d for d in got if d.issue_key == key]


def _watch(hooks: WebhookRehearsal, name: str, summary: str, *, expect: bool) -> StepResult:
    if not hooks.rehearsing:
        return hooks.session.rehearsals.skip(
            name, "an issue would be created and its delivery watched on this machine, which "
            "Atlassian cannot reach")
    before = len(hooks.receiver.deliveries)
    key = _create_issue(hooks, summary)
    if expect:
        hooks.receiver.wait_for(before + 1, timeout=_DELIVERY_PATIENCE)
    got = _deliveries(hooks, before, key)
    rows = [{"issue": d.issue_key, "event": d.event, "signature": "verified" if d.verified
             else f"refused: {d.error}", "issuer (client id)": d.claims.get("iss", "")[:6] + "…",
             "expires in": f"{int(d.claims.get('exp', 0)) - int(d.claims.get('iat', 0))} s"}
            for d in got]
    result = StepResult(name, {"issue": key, "deliveries": len(got),
                               "verified": sum(d.verified for d in got)})
    if rows:
        result.table(rows)
    return result


@step()
def create_issue_and_watch(hooks: WebhookRehearsal) -> StepResult:
    """Create an issue through the API and watch Jira's signed delivery arrive."""
    result = _watch(hooks, "webhook_delivery", "Created by notebook 08", expect=True)
    if hooks.rehearsing:
        count = result.data["verified"]
        result.say(f"{count} delivery{'' if count == 1 else ' deliveries'} arrived with a JWT "
                   "(HS256, signed with the app's client secret) whose signature, expiry and "
                   "issuer checked out; a delivery that fails the check is answered 401.")
    return result


@step()
def list_webhook_expiry(hooks: WebhookRehearsal) -> StepResult:
    """``GET /rest/api/3/webhook``: every webhook with its expiry, on the site's clock."""
    now = hooks.hooks.now()
    listed = hooks.hooks.list()
    rows = [w.to_dict(now) for w in listed]
    result = StepResult("webhook_expiry", {"webhooks": rows, "due": sum(r["due"] for r in rows)})
    result.table(rows, ["id", "jql", "expires_at", "expired", "due"])
    return result.say("Refresh at least weekly (`atlassian-playbook webhooks refresh`, or the "
                      "health check's refresh parameter in notebook 11): a refresh extends each "
                      f"webhook to {LIFETIME_DAYS} days from then, and a weekly one leaves three "
                      "weeks to notice a broken job before anything goes quiet.")


@step()
def jump_past_expiry(hooks: WebhookRehearsal, *, days: float = 31) -> StepResult:
    """The emulator's clock jumps ``days`` ahead: the webhook expired, nothing is delivered."""
    if not hooks.rehearsing:
        return hooks.session.rehearsals.skip(
            "webhook_expired", f"the server's clock would jump {days:g} days past the expiry")
    hooks.session.rehearsals.advance_clock(float(days) * 24 * 3600)
    result = _watch(hooks, "webhook_expired", "Created after the expiry", expect=False)
    expired = [w for w in hooks.hooks.list() if w.is_expired(hooks.hooks.now())]
    result.data["expired"] = len(expired)
    return result.say(
        f"{days:g} days later the webhook is still listed, expired, and the new issue "
        f"brought {result.data['deliveries']} deliveries: this is how integrations go quiet a "
        "month after launch."
    )


@step()
def refresh_and_watch(hooks: WebhookRehearsal) -> StepResult:
    """``PUT /rest/api/3/webhook/refresh``: 30 more days, and deliveries come back."""
    expires = hooks.hooks.refresh()
    if not hooks.rehearsing:
        result = StepResult("webhook_refreshed", {"expires_at": expires.isoformat()})
        return result.say(f"Refreshed: the app's webhooks now expire on {expires:%Y-%m-%d} UTC.")
    result = _watch(hooks, "webhook_refreshed", "Created after the refresh", expect=True)
    result.data["expires_at"] = expires.isoformat()
    return result.say(f"Refreshed until {expires:%Y-%m-%d %H:%M} UTC; the next issue brought "
                      f"{result.data['verified']} verified delivery again.")


@step()
def close_webhooks(hooks: WebhookRehearsal) -> StepResult:
    """Against the emulator: delete the rehearsal's webhooks and stop the receiver."""
    if not hooks.rehearsing:
        return skipped("webhooks_closed", "your webhooks stay registered at Atlassian.")
    if hooks.registered:
        hooks.hooks.delete(hooks.registered)
    hooks.receiver.close()
    if hooks.target is not hooks.session.target:
        hooks.target.close()
    return StepResult("webhooks_closed", {"deleted": len(hooks.registered)}).say(
        f"Deleted {len(hooks.registered)} rehearsal webhook(s) and stopped the receiver.")
