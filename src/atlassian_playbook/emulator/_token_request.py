"""How a token request is read, as Atlassian's Auth0-based endpoint reads it: a JSON body or an
RFC 6749 form body, client credentials in the body or as HTTP Basic (FACTS.md, "Body formats
and client authentication"). A parameter sent twice or credentials that disagree are refused."""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import parse_qs, unquote_plus

from ._http import JsonTooDeep, Request

_TOKEN_FIELDS = ("grant_type", "client_id", "client_secret", "code", "redirect_uri",
                 "refresh_token", "scope")


def token_parameters(request: Request) -> tuple[dict, str | None]:
    """The token request's parameters from a JSON object or a form body, each a string."""
    content_type = request.content_type
    if content_type == "application/json":
        try:
            body = request.json()
        except JsonTooDeep as exc:
            return {}, str(exc)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return {}, "The request body must be a JSON object."
        for key in _TOKEN_FIELDS:
            if key in body and not isinstance(body[key], str):
                return {}, f"{key} must be a string."
        return body, None
    if content_type == "application/x-www-form-urlencoded":
        try:
            parsed = parse_qs(request.body.decode("utf-8"), keep_blank_values=True,
                              strict_parsing=bool(request.body))
        except (UnicodeDecodeError, ValueError):
            return {}, "The form body is not valid application/x-www-form-urlencoded."
        repeated = sorted(key for key, values in parsed.items() if len(values) > 1)
        if repeated:  # RFC 6749 §3.2: parameters must not be included more than once
            return {}, f"Parameter included more than once: {', '.join(repeated)}"
        return {key: values[0] for key, values in parsed.items()}, None
    return {}, (
        "The token endpoint takes a JSON body (Content-Type: application/json) or a form body "
        "(application/x-www-form-urlencoded)."
    )


def client_credentials(request: Request, body: dict) -> tuple[str, str] | None:
    """(client id, secret) from HTTP Basic or the body; ``None`` when they are missing, broken
    or disagree.

    Basic credentials are form-URL-encoded before base64 (RFC 6749 §2.3.1). When a request
    carries both, the body's ``client_id`` and ``client_secret``, where present, must equal
    the Basic ones: credentials that disagree are refused (401), never one of them chosen.
    """
    header = request.headers.get("Authorization") or ""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        client_id, secret = body.get("client_id") or "", body.get("client_secret") or ""
        return (client_id, secret) if client_id and secret else None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    raw_id, colon, raw_secret = decoded.partition(":")
    if not colon:
        return None
    client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    for key, value in (("client_id", client_id), ("client_secret", secret)):
        if body.get(key) and not hmac.compare_digest(body[key].encode(), value.encode()):
            return None
    return (client_id, secret) if client_id and secret else None
