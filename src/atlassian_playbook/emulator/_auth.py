"""The authorization server (auth.atlassian.com): /authorize, the consent screen, /oauth/token.

Lifetimes, on the emulator's clock: codes 10 minutes, access tokens 3600 s; those of refresh
tokens, and the records behind every token, are :mod:`._token_records`'.

A service account's credential takes ``grant_type=client_credentials`` only, and an app's
client id never does: either way round the answer is Auth0's (Atlassian's token endpoint is
Auth0-based; FACTS.md is silent) 403 ``unauthorized_client`` "Grant type 'X' not allowed for
the client.". Its tokens last 3600 s and come without a refresh token.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._http import Request, Response, json_response, redirect_response
from ._pages import consent_page, error_page
from ._scopes import APIS, UnknownScope, api_of_scope
from ._state import digest
from ._token_records import (
    REFRESH_ABSOLUTE,
    REFRESH_IDLE,
    REUSE_LEEWAY,
    family_of,
    find_grant,
    new_refresh_token,
    prune,
    revoke_refresh_tokens,
    rotated_long_ago,
)
from ._token_request import client_credentials, token_parameters
from ._world import service_account_by_client, site_by_ref, user_by_ref

__all__ = [
    "AuthorizationServer",
    "ACCESS_TOKEN_TTL",
    "CODE_TTL",
]

AUDIENCE = "api.atlassian.com"
ACCESS_TOKEN_TTL = 3600
CODE_TTL = 600
CONSENT_TTL = 3600

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
GRANT_NOT_ALLOWED = "Grant type '{grant}' not allowed for the client."
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")

DENIED = "The user denied access to the app."
SITE_ADMIN = (
    "Your site admin must authorize this app for the site {host} before the app can access "
    "your account."
)


def oauth_error(status: int, error: str, description: str) -> Response:
    return json_response(status, {"error": error, "error_description": description}, _NO_STORE)


def _fail_page(detail: str, code: str | None = None) -> Response:
    return error_page(detail, code)


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
            world = data["world"]
            user = user_by_ref(world, param("emulator_user") or self.emu._consent_user_id)
            if user is None:
                return _fail_page(f"emulator_user {param('emulator_user')!r} is not a user of "
                                  "the emulated world.")
            if not client["sharing"] and user["account_id"] != client.get("owner"):
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
            sites = [site for site in world["sites"] if user["account_id"] in site["members"]]
            if self.emu.auto_consent:
                ref = param("emulator_site") or self.emu._consent_site_id
                site = site_by_ref(world, ref)
                if site is None or site not in sites:
                    return _fail_page(
                        f"emulator_site {ref!r} is not a site {user['name']} can reach.")
                refused = self.site_admin_refusal(site, client, user)
                if refused is not None:
                    return refused
                code = self.consent(data, client, user, redirect_uri, scopes, site["id"], now)
                return redirect_response(with_query(redirect_uri, code=code, state=state))
            consent_id = secrets.token_urlsafe(16)
            data["consents"][consent_id] = {
                "client_id": client["client_id"],
                "account_id": user["account_id"],
                "redirect_uri": redirect_uri,
                "scopes": scopes,
                "state": state,
                "expires_at": now + CONSENT_TTL,
            }
            prune(data, now)
            others = [
                (other["name"], "/authorize?" + urlencode(
                    [(k, v) for k, vs in request.query.items() if k != "emulator_user"
                     for v in vs] + [("emulator_user", other["nickname"])]))
                for other in world["users"] if other is not user
            ]
            return consent_page(
                app_name=client["name"],
                user=user,
                scopes=[(scope, API_NAMES[api_of_scope(scope)]) for scope in scopes],
                sites=sites,
                consent_request=consent_id,
                redirect_uri=redirect_uri,
                switch_accounts=others,
            )

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
            user = user_by_ref(data["world"], consent["account_id"])
            if client is None or user is None:
                return _fail_page("The app or the account no longer exists.", "invalid_client")
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
            site = site_by_ref(data["world"], form.get("site", "")) if choice == "accept" else None
            if site is None or user["account_id"] not in site["members"]:
                data["consents"][consent_id] = consent  # the person may still choose
                return _fail_page("Choose a site, then press Accept or Deny.", "invalid_request")
            refused = self.site_admin_refusal(site, client, user)
            if refused is not None:
                return refused
            code = self.consent(
                data, client, user, redirect_uri, consent["scopes"], site["id"], now
            )
        return redirect_response(with_query(redirect_uri, code=code, state=state))

    @staticmethod
    def site_admin_refusal(site: dict, client: dict, user: dict) -> Response | None:
        """The consent page's answer when the site does not allow user-installed apps, the
        app is not yet authorized there, and the user is not one of the site's admins. An
        admin's consent authorizes the app on the site for everyone (FACTS.md: "an admin
        changes the setting or completes the consent")."""
        if site["user_installed_apps"] or client["client_id"] in site["approved_clients"]:
            return None
        if user["account_id"] in site["admins"]:
            site["approved_clients"].append(client["client_id"])
            return None
        host = site["url"].removeprefix("https://")
        return _fail_page(SITE_ADMIN.format(host=host), "site_admin_required")

    def consent(
        self,
        data: dict,
        client: dict,
        user: dict,
        redirect_uri: str,
        scopes: list[str],
        site_id: str,
        now: float,
    ) -> str:
        """Record the user's consent for one site and return a fresh authorization code.

        A grant is (app, account); consenting again for a site replaces that site's scopes,
        consenting for another site adds it. The grant's ``created_at`` (the first consent)
        starts the 365-day absolute lifetime of every token it issues.
        """
        grant_id = find_grant(data, client["client_id"], user["account_id"])
        if grant_id is None:
            grant_id = secrets.token_hex(8)
            data["grants"][grant_id] = {
                "client_id": client["client_id"],
                "account_id": user["account_id"],
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
        """Every client style the real endpoint takes (FACTS.md, "Body formats and client
        authentication"): a JSON or a form body, the client credentials in the body or in HTTP
        Basic ``Authorization`` (RFC 6749 §2.3.1). Whichever style, the same answers."""
        body, problem = token_parameters(request)
        if problem is not None:
            return oauth_error(400, "invalid_request", problem)
        grant_type = body.get("grant_type")
        if not grant_type:
            return oauth_error(400, "invalid_request", "Missing required parameter: grant_type")
        if grant_type not in GRANT_TYPES:
            return oauth_error(
                400, "unsupported_grant_type", f"Unsupported grant type: {grant_type}"
            )
        credentials = client_credentials(request, body)
        with self.emu._store.transaction() as data:
            now = self.emu._now(data)
            client = data["clients"].get(credentials[0]) if credentials else None
            account = (service_account_by_client(data["world"], credentials[0])
                       if credentials and client is None else None)
            known = client or account
            if known is None or not hmac.compare_digest(
                credentials[1].encode(), known["client_secret"].encode()
            ):
                return oauth_error(401, "access_denied", "Unauthorized")
            if (account is not None) != (grant_type == "client_credentials"):
                return oauth_error(403, "unauthorized_client",
                                   GRANT_NOT_ALLOWED.format(grant=grant_type))
            if account is not None:
                return self._client_credentials(data, account, body, now)
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
            # Atlassian answers a code issued for another redirect_uri (most often a trailing
            # slash) as it answers an unknown one (FACTS.md).
            return oauth_error(403, "invalid_grant", INVALID_CODE)
        record["used"] = True
        return self._issue(
            data,
            record["grant_id"],
            client["client_id"],
            record["scopes"],
            now,
            family_started_at=data["grants"][record["grant_id"]]["created_at"],
        )

    def _client_credentials(self, data: dict, account: dict, body: dict, now: float) -> Response:
        """A token for the service account, on every site its credential was granted.

        ``scope`` (optional, space-separated) narrows the token to some of the credential's
        scopes; one it was not granted is refused as Auth0 refuses it (403 ``access_denied``
        "Client has not been granted scopes: ..."). The grant (credential, account) holds the
        sites with the scopes of the latest token, as a 3LO grant holds a consent's."""
        asked = list(dict.fromkeys((body.get("scope") or "").split())) or list(account["scopes"])
        missing = [scope for scope in asked if scope not in account["scopes"]]
        if missing:
            return oauth_error(403, "access_denied",
                               f"Client has not been granted scopes: {' '.join(missing)}")
        grant_id = find_grant(data, account["client_id"], account["account_id"])
        if grant_id is None:
            grant_id = secrets.token_hex(8)
            data["grants"][grant_id] = {
                "client_id": account["client_id"],
                "account_id": account["account_id"],
                "sites": {},
                "created_at": now,
            }
        data["grants"][grant_id]["sites"] = {site_id: list(asked) for site_id in account["sites"]}
        return self._issue(data, grant_id, account["client_id"], asked, now,
                           family_started_at=now)

    def _refresh(self, data: dict, client: dict, body: dict, now: float) -> Response:
        token = body.get("refresh_token")
        if not token:
            return oauth_error(400, "invalid_request", "Missing required parameter: refresh_token")
        record = data["refresh_tokens"].get(digest(token))
        if record is None and rotated_long_ago(data, token, client["client_id"], now):
            revoke_refresh_tokens(data, data["families"][family_of(token)]["grant_id"])
            return oauth_error(403, "invalid_grant", INVALID_REFRESH)
        family = data["families"].get(record.get("family")) if record else None
        if (
            record is None
            or family is None  # revoked, or its grant gone
            or family["client_id"] != client["client_id"]
            or family["grant_id"] not in data["grants"]
            or now - family["started_at"] >= REFRESH_ABSOLUTE
        ):
            return oauth_error(403, "invalid_grant", INVALID_REFRESH)
        if record["status"] == "rotated":
            if now - record["rotated_at"] > REUSE_LEEWAY:
                revoke_refresh_tokens(data, family["grant_id"])
                return oauth_error(403, "invalid_grant", INVALID_REFRESH)
            # Within the leeway: a concurrent refresh; it gets a pair of its own.
        elif now - record["issued_at"] >= REFRESH_IDLE:
            return oauth_error(403, "invalid_grant", INVALID_REFRESH)
        else:
            record["status"] = "rotated"
            record["rotated_at"] = now
            # The access token issued with this refresh token keeps working for the leeway,
            # then dies (FACTS.md, "The old access token dies too"). A refresh token is
            # rotated once, so its access token's grace is set once.
            access = data["access_tokens"].get(record["access"])
            if access is not None:
                access["revoke_at"] = now + REUSE_LEEWAY
        return self._issue(
            data,
            family["grant_id"],
            client["client_id"],
            family["scopes"],
            now,
            family_started_at=family["started_at"],
            family=record["family"],
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
        family: str | None = None,
    ) -> Response:
        """A new access token, and a refresh token of ``family`` when the scopes ask for one
        (a code exchange starts a family: ``None``)."""
        access = secrets.token_urlsafe(40)
        data["access_tokens"][digest(access)] = {
            "grant_id": grant_id,
            "client_id": client_id,
            "scopes": list(scopes),
            "expires_at": now + ACCESS_TOKEN_TTL,
            "revoke_at": None,  # set when the refresh token issued with it is rotated
            "revoked": False,
        }
        answer = {
            "access_token": access,
            "expires_in": ACCESS_TOKEN_TTL,
            "scope": " ".join(scopes),
            "token_type": "Bearer",
        }
        if "offline_access" in scopes:
            if family is None or family not in data["families"]:
                family = secrets.token_hex(8)
                data["families"][family] = {"grant_id": grant_id, "client_id": client_id,
                                            "scopes": list(scopes),
                                            "key": secrets.token_hex(16),
                                            "started_at": family_started_at}
            data["families"][family]["last_used"] = now
            refresh = new_refresh_token(family, data["families"][family]["key"])
            # Grant, client, scopes and the absolute lifetime's start are the family's.
            data["refresh_tokens"][digest(refresh)] = {
                "family": family,
                "issued_at": now,
                "status": "active",  # then "rotated"
                "rotated_at": None,
                "access": digest(access),  # the access token issued with it
            }
            answer["refresh_token"] = refresh
        prune(data, now)
        return json_response(200, answer, _NO_STORE)
