import logging

import httpx

from atlassian_playbook.redact import (
    Secret,
    get_logger,
    http_trace_hooks,
    mask,
    redact,
    redact_mapping,
)

TOKEN = "tok-abcdefghijklmnopqrstuvwxyz0123"


def test_registered_secret_is_masked_anywhere_in_text():
    secret = Secret("s3cr3t-value-for-redaction")
    text = f"the value s3cr3t-value-for-redaction was seen; {secret}"
    assert "s3cr3t-value-for-redaction" not in redact(text)
    assert mask("s3cr3t-value-for-redaction") in redact(text)


def test_secret_shapes_are_masked_without_registration():
    unregistered = "zz-never-registered-value-987654"
    cases = [
        f'{{"access_token": "{unregistered}", "expires_in": 3600}}',
        f"https://cb.example/callback?code={unregistered}&state=abc",
        f"Authorization: Bearer {unregistered}",
        f"grant_type=refresh_token&refresh_token={unregistered}",
    ]
    for text in cases:
        assert unregistered not in redact(text), text


def test_fingerprint_lets_two_masked_tokens_be_compared():
    assert mask("one-token-value-123") != mask("two-token-value-456")
    assert mask("one-token-value-123") == mask("one-token-value-123")


def test_redact_mapping_masks_nested_secret_keys():
    data = {"refresh_token": TOKEN, "nested": {"client_secret": TOKEN}, "scope": "read:me"}
    out = redact_mapping(data)
    assert TOKEN not in str(out)
    assert out["scope"] == "read:me"


def test_logger_and_http_trace_are_redacted(caplog):
    Secret(TOKEN)
    logger = get_logger("atlassian_playbook.test")
    trace_logger = get_logger("atlassian_playbook.test.http")

    def handler(request):
        return httpx.Response(200, json={"access_token": TOKEN, "refresh_token": TOKEN})

    with caplog.at_level(logging.DEBUG, logger="atlassian_playbook"):
        logger.debug("token is %s", TOKEN)
        with httpx.Client(
            transport=httpx.MockTransport(handler), event_hooks=http_trace_hooks(trace_logger)
        ) as client:
            client.post(
                "https://auth.example/oauth/token",
                json={"client_secret": TOKEN},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
    assert len(caplog.records) >= 3
    assert TOKEN not in caplog.text


def test_placeholders_in_hints_and_docs_are_left_as_written():
    for text in [
        "Paste the whole URL, including ?code=...&state=...",
        "callback?code=…&state=…",
        "callback?code=CODE&state=STATE",
        "https://cb/?code=YOUR_CODE",
        '{"access_token": "<access token>", "refresh_token": "{refresh_token}"}',
        "Authorization: Bearer ACCESS_TOKEN",
        "grant_type=refresh_token&refresh_token=REFRESH_TOKEN",
    ]:
        assert redact(text) == text, text


def test_values_that_only_resemble_placeholders_are_still_masked():
    import secrets

    real = [secrets.token_urlsafe(32) for _ in range(200)]
    real += ["eyJhbGciOiJIUzI1NiJ9.e30.abc", "ATOA1234ABCD", "CODE1", "ABCDEFGHIJKLMNOP",
             "SECRET_SAUCE_42", "a...b", "..x", "TOKENS_ARE_HERE"]
    for value in real:
        for text in (f"?code={value}&state=x", f'{{"access_token": "{value}"}}',
                     f"Authorization: Bearer {value}"):
            assert value not in redact(text), text
