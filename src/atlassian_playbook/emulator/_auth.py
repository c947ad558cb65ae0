"""The authorization server (auth.atlassian.com): /authorize, the consent screen, /oauth/token.

Lifetimes, on the emulator's clock: codes 10 minutes, access tokens 3600 s, refresh tokens 90
days idle (365 days absolute), reuse leeway for a rotated refresh token 10 minutes.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._http import Request, Response, html_response, json_response, redirect_response
from ._pages import consent_page, error_page
from ._state import digest
from ._world import APIS, SITES, USER, UnknownScope, api_of_scope, site_by_ref

__all__ = ["AuthorizationServer", "ACCESS_TOKEN_TTL", "CODE_TTL", "REUSE_LEEWAY", "REFRESH_IDLE"]

AUDIENCE = "api.atlassian.com"
ACCESS_TOKEN_TTL = 3600
CODE_TTL = 600
CONSENT_TTL = 3600
REUSE_LEEWAY = 600
REFRESH_IDLE = 90 * 86400
REFRESH_ABSOLUTE = 365 * 86400

API_NAMES = {
    "identity": "User identity API",
    "jira": "Jira API",
    "confluence": "Confluence API",
    "personal-data-reporting": "Personal data reporting API",
    None: "refresh token",
}
assert set(APIS) <= set(API_NAMES)

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
INVALID_CODE = "Invalid authorization code"
INVALID_REFRESH = "Unknown or invalid refresh token."

DENIED = "The user denied access to the app."


def oauth_error(status: int, error: str, description: str) -> Response:
    return json_response(status, {"error": error, "error_description": description}, _NO_STORE)


def _fail_page(detail: str, code: str | None = None) -> Response:
    return html_response(400, error_page(detail, code))


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query string (keeping any it already has)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


class AuthorizationServer:
    """Answers requests to the auth base URL; ``admin`` handles ``/_emulator/*``."""

    def __init__(self, emulator, admin) -> None:
        self.emu = emulator
        self.admin = admin
        self.routes = {
            "/authorize": {"GET": self.authorize},
            "/authorize/decision": {"POST": self.decision},
            "/oauth/token": {"POST": self.token},
        }

    def __call__(self, request: Request) -> Response:
        if request.path.startswith("/_emulator/"):
            return self.admin(request)
        methods = self.routes.get(request.path)
        if methods is None:
            return json_response(404, {"code": 404, "message": "Not Found"})
        handler = methods.get(request.method)
        if handler is None:
            return json_response(
                405, {"code": 405, "message": "Method Not Allowed"}, {"Allow": ", ".join(methods)}
            )
        return handler(request)

    # --- /authorize ----------------------------------------------------------------------

    def authorize(self, request: Request) -> Response:
        param = request.param
        audience = param("audience")
        if audience != AUDIENCE:
            return _fail_page(
                f"The audience parameter must be {AUDIENCE} (got {audience or 'nothing'}).",
                "invalid_request",
            )
        client_id = param("client_id")
        with self.emu._store.transaction() as data:
            now = self.emu._now(data)
            client = data["clients"].get(client_id) if client_id else None
            if client is None:
                return _fail_page(
                    "The app is not registered: unknown client_id. Check the Client ID on the "
                    "developer console's Settings tab.",
                    "invalid_client",
                )
            redirect_uri = param("redirect_uri")
            if not redirect_uri or redirect_uri not in client["redirect_uris"]:
                return _fail_page(
                    f"The redirect_uri {redirect_uri or '(missing)'} does not match any callback "
                    "URL on the app's Authorization tab; it must be identical (scheme, host, "
                    "port, path and trailing slash).",
                    "redirect_uri_mismatch",
                )
            if not client["sharing"]:
                # Atlassian says nothing more to anyone but the owner (Distribution: not sharing).
                return _fail_page("We couldn't complete this request. Try again later.")
            if param("response_type") != "code":
                return _fail_page(
                    "response_type must be code (the authorization code grant).",
                    "unsupported_response_type",
                )
            scopes = list(dict.fromkeys((param("scope") or "").split()))
            if not scopes:
                return _fail_page("The scope parameter is missing or empty.", "invalid_scope")
            unknown, not_added = [], []
            for scope in scopes:
                try:
                    api = api_of_scope(scope)
                except UnknownScope:
                    unknown.append(scope)
                    continue
                if api is not None and api not in client["apis"]:
                    not_added.append(f"{scope} ({API_NAMES[api]})")
            if unknown:
                return _fail_page(f"Unknown scope(s): {', '.join(unknown)}.", "invalid_scope")
            if not_added:
                return _fail_page(
                    "The app requested scopes of APIs that are not added to it on the developer "
                    f"console's Permissions tab: {', '.join(not_added)}.",
                    "invalid_scope",
                )
            state = param("state")
            if not state:
                return _fail_page("The state parameter is missing.", "invalid_request")
            if self.emu.auto_consent == "deny":
                return redirect_response(with_query(
                    redirect_uri, error="access_denied", error_description=DENIED, state=state
                ))
            if self.emu.auto_consent:
                ref = param("emulator_site") or self.emu._consent_site_id
                site = site_by_ref(ref)
                if site is None:
                    return _fail_page(f"emulator_site {ref!r} is not a site of this account.")
                code = self.consent(data, client, redirect_uri, scopes, site["id"], now)
                return redirect_response(with_query(redirect_uri, code=code, state=state))
            consent_id = secrets.token_urlsafe(16)
            data["consents"][consent_id] = {
                "client_id": client["client_id"],
                "redirect_uri": redirect_uri,
                "scopes": scopes,
                "state": state,
                "expires_at": now + CONSENT_TTL,
            }
            prune(data, now)
            page = consent_page(
                app_name=client["name"],
                user=USER,
                scopes=[(scope, API_NAMES[api_of_scope(scope)]) for scope in scopes],
                sites=SITES,
                consent_request=consent_id,
            )
        return html_response(200, page)

    def decision(self, request: Request) -> Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return _fail_page("The consent form must be posted as a form.", "invalid_request")
        form = request.form()
        consent_id = form.get("consent_request", "")
        with self.emu._store.transaction() as data:
            now = self.emu._now(data)
            consent = data["consents"].pop(consent_id, None)
            if consent is None or consent["expires_at"] <= now:
                return _fail_page(
                    "This consent request expired or was already answered. Start the "
                    "authorization again from the app.",
                    "invalid_request",
                )
            client = data["clients"].get(consent["client_id"])
            if client is None:
                return _fail_page("The app no longer exists.", "invalid_client")
            redirect_uri, state = consent["redirect_uri"], consent["state"]
            choice = form.get("decision")
            if choice == "deny":
                return redirect_response(
                    with_query(
                        redirect_uri,
                        error="access_denied",
                        error_description=DENIED,
                        state=state,
                    )
                )
            site = site_by_ref(form.get("site", "")) if choice == "accept" else None
            if site is None:
                data["consents"][consent_id] = consent  # the person may still choose
                return _fail_page("Choose a site, then press Accept or Deny.", "invalid_request")
            code = self.consent(data, client, redirect_uri, consent["scopes"], site["id"], now)
        return redirect_response(with_query(redirect_uri, code=code, state=state))

    def consent(
        self,
        data: dict,
        client: dict,
        redirect_uri: str,
        scopes: list[str],
        site_id: str,
        now: float,
    ) -> str:
        """Record the user's consent for one site and return a fresh authorization code.

        A grant is (app, account); consenting again for a site replaces that site's scopes,
        consenting for another site adds it.
        """
        grant_id = find_grant(data, client["client_id"], USER["account_id"])
        if grant_id is None:
            grant_id = secrets.token_hex(8)
            data["grants"][grant_id] = {
                "client_id": client["client_id"],
                "account_id": USER["account_id"],
                "sites": {},
                "created_at": now,
            }
        sites = data["grants"][grant_id]["sites"]
        sites.pop(site_id, None)
        sites[site_id] = list(scopes)
        code = secrets.token_urlsafe(24)
        data["codes"][digest(code)] = {
            "grant_id": grant_id,
            "client_id": client["client_id"],
            "redirect_uri": redirect_uri,
            "scopes": list(scopes),
            "site_id": site_id,
            "expires_at": now + CODE_TTL,
            "used": False,
        }
        prune(data, now)
        return code

    # --- /oauth/token ----------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        if request.content_type != "application/json":
            return oauth_error(
                400,
                "invalid_request",
                "The token endpoint accepts only a JSON body (Content-Type: application/json).",
            )
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return oauth_error(400, "invalid_request", "The request body must be a JSON object.")
        for key in (
            "grant_type",
            "client_id",
            "client_secret",
            "code",
            "redirect_uri",
            "refresh_token",
        ):
            if key in body and not isinstance(body[key], str):
                return oauth_error(400, "invalid_request", f"{key} must be a string.")
        grant_type = body.get("grant_type")
        if not grant_type:
            return oauth_error(400, "invalid_request", "Missing required parameter: grant_type")
        if grant_type not in ("authorization_code", "refresh_token"):
            return oauth_error(
                400, "unsupported_grant_type", f"Unsupported grant type: {grant_type}"
            )
        with self.emu._store.transaction() as data:
            now = self.emu._now(data)
            client = data["clients"].get(body.get("client_id") or "")
            secret = body.get("client_secret") or ""
            if client is None or not hmac.compare_digest(
                secret.encode(), client["client_secret"].encode()
            ):
                return oauth_error(401, "access_denied", "Unauthorized")
            if grant_type == "authorization_code":
                return self._exchange_code(data, client, body, now)
            return self._refresh(data, client, body, now)

    def _exchange_code(self, data: dict, client: dict, body: dict, now: float) -> Response:
        code = body.get("code")
        if not code:
            return oauth_error(400, "invalid_request", "Missing required parameter: code")
        record = data["codes"].get(digest(code))
        if (
            record is None
            or record["used"]
            or record["client_id"] != client["client_id"]
            or record["expires_at"] <= now
            or record["grant_id"] not in data["grants"]
        ):
            return oauth_error(403, "invalid_grant", INVALID_CODE)
        if body.get("redirect_uri") != record["redirect_uri"]:
            return oauth_error(
                403,
                "invalid_grant",
                "The redirect_uri does not match the redirect_uri of the authorization request.",
            )
        record["used"] = True
        return self._issue(
            data,
            record["grant_id"],
            client["client_id"],
            record["scopes"],
            now,
            family_started_at=now,
        )

    def _refresh(self, data: dict, client: dict, body: dict, now: float) -> Response:
        token = body.get("refresh_token")
        if not token:
            return oauth_error(400, "invalid_request", "Missing required parameter: refresh_token")
        record = data["refresh_tokens"].get(digest(token))
        if (
            record is None
            or record["client_id"] != client["client_id"]
            or record["grant_id"] not in data["grants"]
            or record["status"] == "revoked"
            or now - record["family_started_at"] >= REFRESH_ABSOLUTE
        ):
            return oauth_error(403, "invalid_grant", INVALID_REFRESH)
        if record["status"] == "rotated":
            if now - record["rotated_at"] > REUSE_LEEWAY:
                # Reuse outside the leeway is taken for theft: the whole grant's refresh tokens
                # die, the newest included (Atlassian's refresh-token guide).
                for other in data["refresh_tokens"].values():
                    if other["grant_id"] == record["grant_id"]:
                        other["status"] = "revoked"
                return oauth_error(403, "invalid_grant", INVALID_REFRESH)
            # Within the leeway: a concurrent refresh; it gets a pair of its own.
        elif now - record["issued_at"] >= REFRESH_IDLE:
            return oauth_error(403, "invalid_grant", INVALID_REFRESH)
        else:
            record["status"] = "rotated"
            record["rotated_at"] = now
        return self._issue(
            data,
            record["grant_id"],
            client["client_id"],
            record["scopes"],
            now,
            family_started_at=record["family_started_at"],
        )

    def _issue(
        self,
        data: dict,
        grant_id: str,
        client_id: str,
        scopes: list[str],
        now: float,
        *,
        family_started_at: float,
    ) -> Response:
        access = secrets.token_urlsafe(40)
        data["access_tokens"][digest(access)] = {
            "grant_id": grant_id,
            "client_id": client_id,
            "scopes": list(scopes),
            "expires_at": now + ACCESS_TOKEN_TTL,
        }
        answer = {
            "access_token": access,
            "expires_in": ACCESS_TOKEN_TTL,
            "scope": " ".join(scopes),
            "token_type": "Bearer",
        }
        if "offline_access" in scopes:
            refresh = secrets.token_urlsafe(40)
            data["refresh_tokens"][digest(refresh)] = {
                "grant_id": grant_id,
                "client_id": client_id,
                "scopes": list(scopes),
                "issued_at": now,
                "family_started_at": family_started_at,
                "status": "active",
                "rotated_at": None,
            }
            answer["refresh_token"] = refresh
        prune(data, now)
        return json_response(200, answer, _NO_STORE)


def find_grant(data: dict, client_id: str, account_id: str) -> str | None:
    for grant_id, grant in data["grants"].items():
        if grant["client_id"] == client_id and grant["account_id"] == account_id:
            return grant_id
    return None


def prune(data: dict, now: float) -> None:
    """Forget what can no longer be used, so a shared state file stays small.

    Forgotten codes and tokens get the same answer as invalid ones, so this changes nothing a
    client can observe.
    """
    grants = data["grants"]
    data["consents"] = {k: v for k, v in data["consents"].items() if v["expires_at"] > now}
    data["codes"] = {
        k: v for k, v in data["codes"].items() if v["expires_at"] > now and v["grant_id"] in grants
    }
    data["access_tokens"] = {
        k: v
        for k, v in data["access_tokens"].items()
        if v["expires_at"] > now - 86400 and v["grant_id"] in grants
    }
    data["refresh_tokens"] = {
        k: v
        for k, v in data["refresh_tokens"].items()
        if v["grant_id"] in grants
        and now - max(v["issued_at"], v["rotated_at"] or 0) < REFRESH_IDLE + REUSE_LEEWAY
        and now - v["family_started_at"] < REFRESH_ABSOLUTE
    }
