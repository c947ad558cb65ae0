"""The package's webhooks: each operation through a real ApiClient against the emulator, the
scope check before anything is sent, expiry on the site's clock, a delivery verified by a real
WebhookReceiver, and what verify_delivery refuses (tampered body, wrong secret, expired, another
app's token, no token)."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from atlassian_playbook import connection, webhooks
from atlassian_playbook.errors import ApiError, ScopeNotGranted, WebhookSignatureInvalid
from atlassian_playbook.target import Target, emulator_settings
from atlassian_playbook.webhooks import Webhook, WebhookReceiver, due_within, verify_delivery

from .conftest import loopback_callback

SCOPES = ("read:jira-work", "write:jira-work", "manage:jira-webhook", "offline_access")
SECRET = "a-client-secret-long-enough-for-hs256-keys"
CLIENT_ID = "client-123"
DAY = 24 * 3600


def connect(emulator, scopes=SCOPES) -> Target:
    callback = loopback_callback(emulator)  # parallel tests never share 8765
    target = Target(emulator_settings(emulator, scopes=scopes, redirect_uri=callback), emulator)
    connection.login(target, browser="headless")
    return target


@pytest.fixture
def site(emulator):
    with connect(emulator) as target:
        yield webhooks.for_target(target)


@pytest.fixture
def receiver(emulator):
    client = emulator.default_client
    with WebhookReceiver(client.client_secret, client.client_id) as rx:
        yield rx


def create_issue(site, summary="From the test") -> str:
    response = site.api.request("POST", f"/ex/jira/{site.site.id}/rest/api/3/issue", json={
        "fields": {"project": {"key": "ACME"}, "summary": summary,
                   "issuetype": {"name": "Task"}}})
    return response.json()["key"]


def signed(body: bytes, *, secret=SECRET, iss=CLIENT_ID, exp_in=300, **claims) -> str:
    now = int(time.time())
    payload = {"iss": iss, "iat": now, "exp": now + exp_in,
               "body_sha256": hashlib.sha256(body).hexdigest(), **claims}
    return "Bearer " + jwt.encode(payload, secret, algorithm="HS256")


# --- the operations ------------------------------------------------------------------------------


def test_register_returns_the_webhook_with_its_30_day_expiry(site, receiver):
    hook = site.register(receiver.url, "project = ACME", "jira:issue_created,jira:issue_updated")
    assert hook.events == ("jira:issue_created", "jira:issue_updated")
    assert hook.jql == "project = ACME"
    assert abs(hook.expires_at - (site.now() + timedelta(days=30))) < timedelta(minutes=1)
    assert site.list() == [hook]


def test_a_refused_registration_says_why(site, receiver):
    with pytest.raises(ApiError, match="jira:issue_exploded") as caught:
        site.register(receiver.url, "project = ACME", ["jira:issue_exploded"])
    assert "events" in caught.value.hint


def test_refresh_delete_and_failed(emulator, site, receiver):
    first = site.register(receiver.url, "project = ACME", ["jira:issue_created"])
    second = site.register(receiver.url, "project = ACME", ["jira:issue_updated"])
    emulator.advance_clock(10 * DAY)
    expires = site.refresh()
    assert abs(expires - (site.now() + timedelta(days=30))) < timedelta(minutes=1)
    assert {w.expires_at for w in site.list()} == {expires}
    site.delete([first.id])
    assert [w.id for w in site.list()] == [second.id]
    assert site.failed() == []
    url = receiver.url
    receiver.close()
    site.register(url, "project = ACME", ["jira:issue_created"])
    create_issue(site, "Nobody listens")
    (failed,) = site.failed()
    assert failed.url == url and "Nobody listens" in failed.body


def test_due_within_a_week_on_the_sites_clock(emulator, site, receiver):
    hook = site.register(receiver.url, "project = ACME", ["jira:issue_created"])
    assert site.due() == []
    emulator.advance_clock(24 * DAY)
    assert site.due() == [hook]
    assert site.listing().startswith("DUE")
    emulator.advance_clock(7 * DAY)
    assert "EXPIRED" in site.listing()
    site.refresh()
    assert site.due() == []


def test_due_within_picks_the_ones_to_refresh_soonest_first():
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def hook(id_, days):
        return Webhook(id_, "project = A", ("jira:issue_created",), now + timedelta(days=days))

    hooks = [hook(1, 20), hook(2, 6.5), hook(3, -1), hook(4, 7.5)]
    assert [w.id for w in due_within(hooks, 7, now)] == [3, 2]


def test_without_manage_jira_webhook_nothing_is_sent_and_the_error_names_it(emulator):
    with connect(emulator, ("read:jira-work", "offline_access")) as target:
        site = webhooks.for_target(target)
        before = len(emulator.request_log)
        for call in (site.list, site.failed, lambda: site.delete([1]), lambda: site.refresh([1]),
                     lambda: site.register("http://127.0.0.1:9/", "project = ACME",
                                           ["jira:issue_created"])):
            with pytest.raises(ScopeNotGranted) as caught:
                call()
            assert "manage:jira-webhook" in caught.value.message
            assert "Add manage:jira-webhook" in caught.value.hint
        assert not any("/webhook" in path for _, path, _ in emulator.request_log[before:])


# --- deliveries ----------------------------------------------------------------------------------


def test_a_created_issue_arrives_verified_at_the_receiver(site, receiver):
    site.register(receiver.url, "project = ACME", ["jira:issue_created"])
    key = create_issue(site)
    (delivery,) = receiver.wait_for(1, timeout=30)
    assert delivery.verified, delivery.error
    assert (delivery.event, delivery.issue_key) == ("jira:issue_created", key)
    assert "verified" in repr(delivery)


def test_after_31_days_nothing_arrives_until_refreshed(emulator, site, receiver):
    site.register(receiver.url, "project = ACME", ["jira:issue_created"])
    emulator.advance_clock(31 * DAY)
    create_issue(site, "While expired")
    assert receiver.deliveries == []  # the API answers after the delivery would have been sent
    assert all(w.is_expired(site.now()) for w in site.list())
    site.refresh()
    create_issue(site, "After the refresh")
    (delivery,) = receiver.wait_for(1, timeout=30)
    assert delivery.body["issue"]["fields"]["summary"] == "After the refresh"


def test_a_tampered_delivery_is_refused_with_401(receiver):
    body = json.dumps({"webhookEvent": "jira:issue_created"}).encode()
    auth = signed(body, secret=receiver._secret.reveal(), iss=receiver.client_id)
    with httpx.Client(trust_env=False) as http:
        tampered = body.replace(b"created", b"deleted")
        answer = http.post(receiver.url, content=tampered, headers={"Authorization": auth})
        assert answer.status_code == 401
        assert http.post(receiver.url, content=body,
                         headers={"Authorization": auth}).status_code == 200
    refused, accepted = receiver.wait_for(2, timeout=30)
    assert not refused.verified and "body" in refused.error
    assert accepted.verified


def test_verify_delivery_accepts_the_signed_body():
    body = b'{"webhookEvent": "jira:issue_created"}'
    claims = verify_delivery(body, signed(body), SECRET, CLIENT_ID)
    assert claims["iss"] == CLIENT_ID


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda body: (body + b" ", signed(body)), "body"),
        (lambda body: (body, signed(body, secret="another-secret-that-is-long-enough-1")),
         "does not verify"),
        (lambda body: (body, signed(body, exp_in=-60)), "expired"),
        (lambda body: (body, signed(body, iss="another-app")), "another app"),
        (lambda body: (body, None), "no Authorization"),
        (lambda body: (body, "Bearer not.a.jwt"), "does not verify"),
    ],
    ids=["tampered-body", "wrong-secret", "expired", "other-app", "no-header", "garbage"],
)
def test_verify_delivery_refuses(make, reason):
    body, authorization = make(b'{"webhookEvent": "jira:issue_created"}')
    with pytest.raises(WebhookSignatureInvalid, match=reason) as caught:
        verify_delivery(body, authorization, SECRET, CLIENT_ID)
    assert SECRET not in str(caught.value)


def test_no_secret_in_reprs(emulator, site, receiver):
    secret = emulator.default_client.client_secret.reveal()
    texts = [repr(receiver), repr(site), repr(site.register(receiver.url, "project = ACME",
                                                            ["jira:issue_created"]))]
    create_issue(site)
    texts.append(repr(receiver.wait_for(1, timeout=30)))
    assert not any(secret in text for text in texts)


@pytest.mark.parametrize("granted, listing, refreshing", [
    (("read:jira-work", "manage:jira-webhook"), True, True),  # classic
    (("read:jql:jira", "read:webhook:jira"), True, False),  # granular, read only
    (("read:jql:jira", "read:webhook:jira", "write:webhook:jira"), True, True),
    (("read:jira-work",), False, False),
])
def test_allows_reads_the_webhook_api_s_own_scopes(granted, listing, refreshing):
    from atlassian_playbook.sites import Site

    hooks = webhooks.SiteWebhooks(None, Site("cloud-1", "acme", "https://acme.atlassian.net",
                                             scopes=granted))
    assert hooks.allows("GET") is listing
    assert hooks.allows("PUT", "/refresh") is refreshing
