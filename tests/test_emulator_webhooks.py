"""The emulator's dynamic webhooks over real loopback HTTP: Jira's shapes, the app's one URL,
the scopes, expiry on the emulator's clock, signed deliveries to a real receiver, failed
deliveries, and the not-shared/owner rule."""

from __future__ import annotations

import hashlib
import json

import pytest

from atlassian_playbook.emulator import Emulator
from atlassian_playbook.webhooks import WebhookReceiver
from tests.test_emulator import (
    ACME,
    decide,
    exchange,
    get_authorize,
    login,
    query_of,
    refresh,
    site_id,
)

SCOPES = "read:jira-work write:jira-work manage:jira-webhook offline_access"
DAY = 24 * 3600
MONTH_MS = 30 * DAY * 1000


class Jira:
    """Calls ``/ex/jira/{acme}/rest/api/3/...`` with one token."""

    def __init__(self, emu: Emulator, http, token: str) -> None:
        self.emu, self.http, self.token = emu, http, token
        self.base = f"{emu.api_base_url}/ex/jira/{site_id(emu, ACME)}/rest/api/3"

    def call(self, method: str, path: str, body=None, **params):
        return self.http.request(method, self.base + path, json=body, params=params,
                                 headers={"Authorization": f"Bearer {self.token}"})

    def register(self, url: str, jql="project = ACME", events=("jira:issue_created",),
                 **extra):
        answer = self.call("POST", "/webhook", {
            "url": url, "webhooks": [{"jqlFilter": jql, "events": list(events), **extra}]})
        assert answer.status_code == 200, answer.text
        return answer.json()["webhookRegistrationResult"][0]

    def listed(self) -> list[dict]:
        answer = self.call("GET", "/webhook")
        assert answer.status_code == 200, answer.text
        return answer.json()["values"]

    def create_issue(self, project="ACME", summary="A new issue") -> str:
        answer = self.call("POST", "/issue", {"fields": {
            "project": {"key": project}, "summary": summary, "issuetype": {"name": "Task"}}})
        assert answer.status_code == 201, answer.text
        return answer.json()["key"]


@pytest.fixture
def jira(emu, http):
    tokens = login(emu, http, SCOPES)
    client = Jira(emu, http, tokens["access_token"])
    client.refresh_token = tokens["refresh_token"]
    return client


@pytest.fixture
def receiver(emu):
    client = emu.default_client
    with WebhookReceiver(client.client_secret, client.client_id) as rx:
        yield rx


def test_register_and_list_in_jiras_shapes_expiring_in_30_days(emu, jira, receiver):
    result = jira.register(receiver.url, events=["jira:issue_created", "jira:issue_updated"])
    assert set(result) == {"createdWebhookId"}
    answer = jira.call("GET", "/webhook").json()
    assert {k: answer[k] for k in ("startAt", "total", "isLast")} == {
        "startAt": 0, "total": 1, "isLast": True}
    (listed,) = answer["values"]
    assert listed["id"] == result["createdWebhookId"]
    assert listed["jqlFilter"] == "project = ACME"
    assert listed["events"] == ["jira:issue_created", "jira:issue_updated"]
    assert listed["expirationDate"] == pytest.approx(emu.now() * 1000 + MONTH_MS, abs=5000)


def test_unknown_events_and_unusable_jql_are_refused_in_the_result(jira, receiver):
    answer = jira.call("POST", "/webhook", {"url": receiver.url, "webhooks": [
        {"jqlFilter": "project = ACME", "events": ["jira:issue_exploded"]},
        {"jqlFilter": "project = NOPE", "events": ["jira:issue_created"]},
        {"jqlFilter": "assignee = currentUser()", "events": ["jira:issue_created"]},
        {"jqlFilter": "project = ACME", "events": ["comment_created"]},
    ]})
    results = answer.json()["webhookRegistrationResult"]
    assert "jira:issue_exploded" in results[0]["errors"][0]
    assert "NOPE" in results[1]["errors"][0]
    assert "does not support" in results[2]["errors"][0]
    assert set(results[3]) == {"createdWebhookId"}
    assert [w["id"] for w in jira.listed()] == [results[3]["createdWebhookId"]]


def test_only_loopback_urls_and_only_the_apps_one_url(emu, jira, receiver):
    far = jira.call("POST", "/webhook", {"url": "https://hooks.example.com/jira", "webhooks": [
        {"jqlFilter": "project = ACME", "events": ["jira:issue_created"]}]})
    assert far.status_code == 400 and "loopback" in far.json()["errorMessages"][0]
    jira.register(receiver.url)
    other = jira.call("POST", "/webhook", {"url": receiver.url + "/other", "webhooks": [
        {"jqlFilter": "project = ACME", "events": ["jira:issue_created"]}]})
    assert other.status_code == 400
    assert "single URL per app" in other.json()["errorMessages"][0]
    # The console's webhook URL decides once it is set.
    emu.set_webhook_url(receiver.url + "/other")
    assert set(jira.register(receiver.url + "/other")) == {"createdWebhookId"}
    with pytest.raises(ValueError, match="loopback"):
        emu.set_webhook_url("https://hooks.example.com/jira")


def test_each_operation_needs_its_scopes(emu, http, receiver):
    reader = Jira(emu, http, login(emu, http, "read:jira-work")["access_token"])
    calls = [("GET", "/webhook", None), ("GET", "/webhook/failed", None),
             ("POST", "/webhook", {"url": receiver.url, "webhooks": []}),
             ("PUT", "/webhook/refresh", {"webhookIds": [1]}),
             ("DELETE", "/webhook", {"webhookIds": [1]})]
    for method, path, body in calls:
        answer = reader.call(method, path, body)
        assert answer.status_code == 401, (method, path)
        assert answer.headers["X-Failure-Category"] == "FAILURE_CLIENT_SCOPE_CHECK"


def test_a_created_issue_is_delivered_signed_with_the_client_secret(emu, jira, receiver):
    created = jira.register(receiver.url)["createdWebhookId"]
    jira.register(receiver.url, jql="project = ACME", events=["jira:issue_deleted"])
    key = jira.create_issue()
    jira.create_issue(project="OPS")  # another project: not matched
    (delivery,) = receiver.wait_for(1)
    assert delivery.verified, delivery.error
    assert delivery.body["webhookEvent"] == "jira:issue_created"
    assert delivery.body["matchedWebhookIds"] == [created]
    assert delivery.body["issue"]["key"] == key
    client = emu.default_client
    assert delivery.claims["iss"] == client.client_id
    assert delivery.claims["exp"] > delivery.claims["iat"]
    assert set(delivery.claims) >= {"iss", "sub", "iat", "exp", "jti", "body_sha256"}
    assert delivery.claims["body_sha256"] == hashlib.sha256(
        json.dumps(delivery.body).encode()).hexdigest()
    assert receiver.deliveries == [delivery]  # nothing for OPS-n


def test_an_edit_is_delivered_with_its_changelog_and_the_field_filter(jira, receiver):
    jira.register(receiver.url, events=["jira:issue_updated"], fieldIdsFilter=["summary"])
    key = jira.create_issue()
    assert jira.call("PUT", f"/issue/{key}", {"fields": {"labels": ["x"]}}).status_code == 204
    assert receiver.deliveries == []  # labels are not in the filter
    assert jira.call("PUT", f"/issue/{key}", {"fields": {"summary": "Renamed"}}).status_code \
        == 204
    (delivery,) = receiver.wait_for(1)
    assert delivery.body["webhookEvent"] == "jira:issue_updated"
    (item,) = delivery.body["changelog"]["items"]
    assert (item["field"], item["fromString"], item["toString"]) == (
        "summary", "A new issue", "Renamed")


def test_expired_after_30_days_then_refreshed_delivers_again(emu, jira, receiver):
    created = jira.register(receiver.url)["createdWebhookId"]
    emu.advance_clock(31 * DAY)
    jira.token = refresh(emu, jira.http, jira.refresh_token).json()["access_token"]
    jira.create_issue()
    assert receiver.deliveries == []  # the answer came after the (absent) delivery
    (listed,) = jira.listed()
    assert listed["expirationDate"] < emu.now() * 1000
    refreshed = jira.call("PUT", "/webhook/refresh", {"webhookIds": [created, 99999]})
    assert refreshed.status_code == 200
    new_expiry = refreshed.json()["expirationDate"]
    assert new_expiry == pytest.approx(emu.now() * 1000 + MONTH_MS, abs=5000)
    assert jira.listed()[0]["expirationDate"] == new_expiry
    jira.create_issue()
    assert len(receiver.wait_for(1)) == 1


def test_failed_deliveries_are_listed(emu, http, jira, receiver):
    jira.register(receiver.url)
    url = receiver.url
    receiver.close()  # connection refused from now on
    jira.create_issue(summary="Nobody listens")
    answer = jira.call("GET", "/webhook/failed")
    assert answer.status_code == 200
    (failed,) = answer.json()["values"]
    assert failed["url"] == url
    assert json.loads(failed["body"])["issue"]["fields"]["summary"] == "Nobody listens"
    assert set(failed) == {"id", "body", "url", "failureTime"}
    assert "next" not in answer.json()


def test_a_receiver_with_the_wrong_secret_refuses_and_the_delivery_is_failed(emu, jira):
    wrong_secret = "not-the-client-secret-of-this-app-at-all"
    with WebhookReceiver(wrong_secret, emu.default_client.client_id) as wrong:
        jira.register(wrong.url)
        jira.create_issue()
        (delivery,) = wrong.wait_for(1)
    assert not delivery.verified
    assert len(jira.call("GET", "/webhook/failed").json()["values"]) == 1


def test_delete_removes_only_the_given_webhooks(jira, receiver):
    first = jira.register(receiver.url)["createdWebhookId"]
    second = jira.register(receiver.url)["createdWebhookId"]
    assert jira.call("DELETE", "/webhook", {"webhookIds": [first]}).status_code == 202
    assert [w["id"] for w in jira.listed()] == [second]


def test_five_webhooks_per_app_user_and_site(jira, receiver):
    for _ in range(5):
        assert "createdWebhookId" in jira.register(receiver.url)
    assert "limit of 5" in jira.register(receiver.url)["errors"][0]


def test_not_shared_app_delivers_only_the_owners_webhooks(emu, http, jira, receiver):
    # grace consents while the app is shared, then the owner (ada) stops sharing it.
    page = get_authorize(emu, http, None, SCOPES, emulator_user="grace")
    code = query_of(decide(emu, http, page.text, "accept", site_id(emu, ACME))
                    .headers["location"])["code"]
    grace = Jira(emu, http, exchange(emu, http, code).json()["access_token"])
    graces = grace.register(receiver.url)["createdWebhookId"]
    adas = jira.register(receiver.url)["createdWebhookId"]
    assert graces != adas
    client = emu.default_client
    emu.register_client(client_id=client.client_id, client_secret=client.client_secret,
                        redirect_uris=client.redirect_uris, apis=client.apis, sharing=False,
                        name=client.name, owner=client.owner)
    jira.create_issue()
    (delivery,) = receiver.wait_for(1)
    assert delivery.body["matchedWebhookIds"] == [adas]
    assert grace.call("GET", "/webhook/failed").json()["values"] == []

