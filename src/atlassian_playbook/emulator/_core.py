"""``Emulator``: two loopback servers (auth and api) over one emulated world."""

from __future__ import annotations

import copy
import secrets
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..redact import Secret
from ._admin import Admin
from ._auth import AuthorizationServer
from ._gateway import Gateway, format_seconds, gateway_error_body
from ._http import (
    LoopbackServer,
    Request,
    Response,
    check_port,
    json_response,
    listen,
    log,
    stop_all,
)
from ._pages import error_page
from ._registration import DEFAULT_REDIRECT_URIS, ClientRegistration, ServiceAccountCredential
from ._scopes import APIS
from ._state import StateStore, new_state
from ._token_records import find_grant
from ._webhooks import WebhookApi
from ._world import (
    WorldError,
    check_webhook_url,
    load_world,
    profile,
    public_site,
    site_by_ref,
    user_by_ref,
)

__all__ = ["Emulator"]


class Emulator:
    """A strict local stand-in for auth.atlassian.com and api.atlassian.com.

    ``world``: the users, sites, apps and seeded data (a YAML or JSON file, a dict, or the
    default world; see ``docs/EMULATOR.md``). ``auto_consent``: /authorize redirects with a code
    at once, as ``consent_user`` (nickname or account id, default the world's first user)
    choosing ``consent_site`` (a site name or cloud id, default that user's first site),
    instead of showing the consent page; ``"deny"`` redirects with ``error=access_denied`` at
    once, as a user pressing Deny. ``state_path``: share the world with every other Emulator
    on that file (given a ``world`` other than the one the state was made from, the state
    starts afresh from it; without one, an existing state keeps its world).
    ``clock``: a ``time.time``-like callable; :meth:`advance_clock` adds to it.

    :attr:`admin_token` opens the ``/_emulator/*`` admin endpoints of this emulator (and of no
    other, even on the same state file): send it as ``Authorization: Bearer <admin_token>``.
    It is made afresh for each Emulator and is not a secret of the emulated world: ``serve()``
    prints it for the processes that drive a foreground emulator.
    """

    def __init__(
        self,
        auto_consent: bool | str = False,
        consent_site: str | None = None,
        state_path: str | Path | None = None,
        clock: Callable[[], float] | None = None,
        *,
        world: str | Path | dict | None = None,
        consent_user: str | None = None,
    ) -> None:
        self.auto_consent = auto_consent
        self.admin_token = secrets.token_urlsafe(32)
        self._clock = clock or time.time
        self._store = StateStore(state_path)
        self.state_path = self._store.path
        self.request_log: list[tuple[str, str, int]] = []
        self._auth = AuthorizationServer(self, Admin(self))
        self._webhooks = WebhookApi(self)
        self._gateway = Gateway(self)
        self._servers: dict[str, LoopbackServer] = {}
        with self._store.transaction() as data:
            # A given world replaces a state made from another; none keeps the state's own.
            fresh = load_world(world) if world is not None or data["world"] is None else None
            if fresh is not None and fresh["digest"] != (data["world"] or {}).get("digest"):
                data.clear()
                data.update(new_state())
                self._seed(data, fresh)
            world_now = data["world"]
        user = user_by_ref(world_now, consent_user or world_now["users"][0]["account_id"])
        if user is None:
            names = ", ".join(u["nickname"] for u in world_now["users"])
            raise WorldError(f"consent_user {consent_user!r} is not a user of the world "
                             f"({names}).")
        self._consent_user_id = user["account_id"]
        reachable = [s for s in world_now["sites"] if user["account_id"] in s["members"]]
        site = (site_by_ref(world_now, consent_site) if consent_site
                else (reachable or world_now["sites"])[0])
        if site is None:
            names = ", ".join(s["name"] for s in world_now["sites"])
            raise WorldError(f"consent_site {consent_site!r} is not a site of the world "
                             f"({names}).")
        self._consent_site_id = site["id"]

    def _seed(self, data: dict, world_data: dict) -> None:
        """A fresh state from a loaded world: its users and sites, its apps registered."""
        data["world"] = {key: copy.deepcopy(world_data[key]) for key in
                         ("digest", "users", "sites", "stored_accounts",
                          "service_accounts")}
        for account in data["world"]["service_accounts"]:  # generated as an app's are
            account["client_id"] = account["client_id"] or secrets.token_urlsafe(24)
            account["client_secret"] = account["client_secret"] or secrets.token_urlsafe(48)
        for app in world_data["apps"]:
            registration = self.register_client(
                client_id=app["client_id"], client_secret=app["client_secret"],
                redirect_uris=app["redirect_uris"], apis=app["apis"], sharing=app["sharing"],
                name=app["name"], owner=app["owner"], webhook_url=app["webhook_url"],
            )
            data["default_client_id"] = data["default_client_id"] or registration.client_id

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, *, auth_port: int = 0, api_port: int = 0) -> Emulator:
        """Start both servers (free ports unless given) and return ``self``.

        A port outside 0-65535, or one this machine will not let the emulator listen on (in
        use, privileged), is a :class:`~atlassian_playbook.errors.ConfigError` naming it.
        """
        if self._servers:
            return self
        for port in (auth_port, api_port):
            check_port(port)
        auth = listen(auth_port, lambda request: self._serve("auth", request), "auth")
        try:
            api = listen(api_port, lambda request: self._serve("api", request), "api")
        except ConfigError:
            auth.server_close()
            raise
        self._servers = {"auth": auth, "api": api}
        auth.start()
        api.start()
        log.debug("emulator started: auth %s, api %s", auth.base_url, api.base_url)
        return self

    def stop(self) -> None:
        servers, self._servers = self._servers, {}
        stop_all(servers.values())

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.auth_base_url}, {self.api_base_url}" if self._servers else "not started"
        return f"<Emulator {where}>"

    @property
    def auth_base_url(self) -> str:
        return self._server("auth").base_url

    @property
    def api_base_url(self) -> str:
        return self._server("api").base_url

    def _server(self, kind: str) -> LoopbackServer:
        try:
            return self._servers[kind]
        except KeyError:
            raise RuntimeError("The emulator is not started: call start() first.") from None

    # --- the world --------------------------------------------------------------------------

    @property
    def user(self) -> dict:
        """The account signed in at the consent screen, as ``GET /me`` returns it."""
        return self.user_profile(self._consent_user_id)

    @property
    def users(self) -> list[dict]:
        """Every account of the world, as ``GET /me`` returns each."""
        with self._store.transaction(read_only=True) as data:
            return [profile(user) for user in data["world"]["users"]]

    def user_profile(self, ref: str) -> dict:
        """One account (nickname or account id), as ``GET /me`` returns it."""
        with self._store.transaction(read_only=True) as data:
            user = user_by_ref(data["world"], ref)
        if user is None:
            raise WorldError(f"{ref!r} is not a user of the emulated world.")
        return profile(user)

    @property
    def stored_accounts(self) -> list[dict]:
        """The accounts the world says the app stores personal data of (``account_id``,
        ``copied_at``: when the app's copy was taken), for a personal data reporting cycle."""
        with self._store.transaction() as data:
            return copy.deepcopy(data["world"].get("stored_accounts") or [])

    @property
    def sites(self) -> list[dict]:
        """The world's sites: ``id`` (the cloud id), ``name``, ``url``, ``avatarUrl``,
        ``products``, ``user_installed_apps``."""
        with self._store.transaction(read_only=True) as data:
            return [public_site(site) for site in data["world"]["sites"]]

    @property
    def default_client(self) -> ClientRegistration:
        with self._store.transaction(read_only=True) as data:
            return ClientRegistration.from_state(data["clients"][data["default_client_id"]])

    @property
    def service_accounts(self) -> list[ServiceAccountCredential]:
        """The world's service accounts, each with its OAuth 2.0 credential."""
        with self._store.transaction() as data:
            return [ServiceAccountCredential.from_state(record)
                    for record in data["world"].get("service_accounts", ())]

    @property
    def service_account(self) -> ServiceAccountCredential:
        """The world's first service account (its client id and secret are what
        ``grant_type=client_credentials`` takes); a :class:`WorldError` when it has none."""
        accounts = self.service_accounts
        if not accounts:
            raise WorldError("The emulated world has no service account.",
                             "Add one under service_accounts: in the world file "
                             "(docs/EMULATOR.md).")
        return accounts[0]

    def client(self, client_id: str) -> ClientRegistration | None:
        with self._store.transaction(read_only=True) as data:
            record = data["clients"].get(client_id)
            return ClientRegistration.from_state(record) if record else None

    def register_client(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | Secret | None = None,
        redirect_uris: Sequence[str] = DEFAULT_REDIRECT_URIS,
        apis: Sequence[str] = APIS,
        sharing: bool = True,
        name: str = "Emulated test app",
        owner: str | None = None,
        webhook_url: str | None = None,
    ) -> ClientRegistration:
        """Register an app, or update the one with ``client_id`` (as editing it in the console).

        Id and secret are generated when not given; ``owner`` (nickname or account id) defaults
        to the world's first user; ``webhook_url`` (loopback only) is where its dynamic webhooks
        are delivered. Existing grants survive an update.
        """
        if webhook_url is not None:
            check_webhook_url(webhook_url)
        if isinstance(redirect_uris, str) or isinstance(apis, str):
            raise TypeError("redirect_uris and apis are sequences of strings, not a string.")
        redirect_uris, apis = tuple(redirect_uris), tuple(apis)
        if not redirect_uris:
            raise ValueError("An app needs at least one callback URL.")
        for uri in redirect_uris:
            parts = urlsplit(uri) if isinstance(uri, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"Callback URL {uri!r} is not an absolute http(s) URL.")
        unknown = [api for api in apis if api not in APIS]
        if unknown:
            raise ValueError(f"Unknown API(s) {unknown}; known: {', '.join(APIS)}.")
        if client_id is not None and (not isinstance(client_id, str) or not client_id):
            raise ValueError("client_id must be a non-empty string.")
        if not isinstance(sharing, bool) or not isinstance(name, str) or not name:
            raise ValueError("sharing must be a bool and name a non-empty string.")
        secret = Secret(client_secret or secrets.token_urlsafe(48))
        if not secret:
            raise ValueError("client_secret must not be empty.")
        for uri in redirect_uris:
            if "#" in uri:
                raise ValueError(f"Callback URL {uri!r} has a #fragment (RFC 6749 §3.1.2).")
        with self._store.transaction() as data:
            users = data["world"]["users"]
            owner_user = user_by_ref(data["world"], owner) if owner else users[0]
            if owner_user is None:
                raise ValueError(f"owner {owner!r} is not a user of the emulated world.")
            record = {
                "client_id": client_id or secrets.token_urlsafe(24),
                "client_secret": secret.reveal(),
                "redirect_uris": list(redirect_uris),
                "apis": list(apis),
                "sharing": sharing,
                "name": name,
                "owner": owner_user["account_id"],
                "webhook_url": webhook_url,
            }
            data["clients"][record["client_id"]] = record
        return ClientRegistration.from_state(record)

    def set_callback_urls(
        self, callback_urls: Sequence[str], client_id: str | None = None
    ) -> ClientRegistration:
        """The console's Authorization tab: the app's callback URLs become ``callback_urls``.

        The only way (with the world file) that an emulated app's callbacks change: never a
        side effect of a client's settings.
        """
        client = self.client(client_id) if client_id else self.default_client
        if client is None:
            raise ValueError(f"No emulated app with client id {client_id!r}.")
        return self.register_client(
            client_id=client.client_id, client_secret=client.client_secret,
            redirect_uris=callback_urls, apis=client.apis, sharing=client.sharing,
            name=client.name, owner=client.owner, webhook_url=client.webhook_url,
        )

    def add_callback_url(self, url: str, client_id: str | None = None) -> ClientRegistration:
        """Press Add on the Authorization tab: ``url`` joins the app's callback URLs (nothing
        changes when it is one already)."""
        client = self.client(client_id) if client_id else self.default_client
        if client is None:
            raise ValueError(f"No emulated app with client id {client_id!r}.")
        if url in client.redirect_uris:
            return client
        return self.set_callback_urls((*client.redirect_uris, url), client.client_id)

    def set_webhook_url(self, url: str | None, client_id: str | None = None) -> ClientRegistration:
        """The app's webhook URL: where Jira delivers its dynamic webhooks (loopback only: the
        emulator sends nowhere else). ``None``: the URL of its first registered webhook."""
        if url is not None:
            check_webhook_url(url)
        with self._store.transaction() as data:
            record = data["clients"].get(client_id or data["default_client_id"])
            if record is None:
                raise ValueError(f"No emulated app with client id {client_id!r}.")
            record["webhook_url"] = url
            return ClientRegistration.from_state(record)

    def webhooks(self, client_id: str | None = None) -> list[dict]:
        """The app's dynamic webhooks as Jira lists them (``id``, ``jqlFilter``, ``events``,
        ``expirationDate`` in epoch ms), plus ``site`` (cloud id) and ``account_id``."""
        with self._store.transaction() as data:
            client_id = client_id or data["default_client_id"]
            return [
                {"id": h["id"], "jqlFilter": h["jqlFilter"], "events": list(h["events"]),
                 "expirationDate": int(h["expires_at"] * 1000), "site": h["site_id"],
                 "account_id": h["account_id"]}
                for h in sorted(data["webhooks"].values(), key=lambda h: h["id"])
                if h["client_id"] == client_id
            ]

    def set_user_installed_apps(self, site: str, allowed: bool) -> dict:
        """Atlassian Administration, Apps, Sites, the site, Connected apps: "User installed
        apps" Allowed or not. Returns the site as :attr:`sites` shows it."""
        if not isinstance(allowed, bool):
            raise TypeError("allowed must be True or False.")
        with self._store.transaction() as data:
            record = site_by_ref(data["world"], site)
            if record is None:
                raise ValueError(f"{site!r} is not a site of the emulated world.")
            record["user_installed_apps"] = allowed
            return public_site(record)

    def remove_app_from_site(self, site: str, client_id: str) -> None:
        """Atlassian Administration, the site's Connected apps: remove an app an admin had
        authorized, so members are refused again while user-installed apps are not allowed."""
        with self._store.transaction() as data:
            record = site_by_ref(data["world"], site)
            if record is None:
                raise ValueError(f"{site!r} is not a site of the emulated world.")
            if client_id in record["approved_clients"]:
                record["approved_clients"].remove(client_id)

    def connection_info(self, client_id: str | None = None) -> dict:
        """What a client under test needs: the two base URLs, the app's client id and callback
        URLs, and where its secret is (never the secret itself), plus the world's users and
        sites, and the :attr:`admin_token` with which the running emulator's admin endpoint
        hands out the secret."""
        client = self.client(client_id) if client_id else self.default_client
        if client is None:
            raise ValueError(f"No emulated app with client id {client_id!r}.")
        secret_at = f"{self.auth_base_url}/_emulator/clients/{client.client_id}"
        return {
            "auth_base_url": self.auth_base_url,
            "api_base_url": self.api_base_url,
            "authorize_url": f"{self.auth_base_url}/authorize",
            "token_url": f"{self.auth_base_url}/oauth/token",
            "client_id": client.client_id,
            "client_secret": f"GET {secret_at} with Authorization: Bearer <admin_token> "
            "(client_secret)"
            + (f", or the state file {self.state_path}" if self.state_path else ""),
            "admin_token": self.admin_token,
            "callback_urls": list(client.redirect_uris),
            "users": [{"nickname": u["nickname"], "account_id": u["account_id"]}
                      for u in self.users],
            "sites": [{"name": s["name"], "id": s["id"], "products": s["products"]}
                      for s in self.sites],
        }

    # --- test controls -----------------------------------------------------------------------

    def now(self) -> float:
        """The emulator's clock: ``clock()`` plus every :meth:`advance_clock`."""
        with self._store.transaction(read_only=True) as data:
            return self._now(data)

    def _now(self, data: dict) -> float:
        return self._clock() + data["clock_offset"]

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock (expiry, idle timeouts) without sleeping."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise TypeError("seconds must be a number.")
        with self._store.transaction() as data:
            data["clock_offset"] += float(seconds)

    def revoke(self, client_id: str | None = None, user: str | None = None) -> int:
        """The user removes the app in "connected apps": the grant and all its tokens die.

        ``client_id`` defaults to the default client, ``user`` to the consenting user. Returns
        how many grants were removed.
        """
        with self._store.transaction() as data:
            client_id = client_id or data["default_client_id"]
            account = user_by_ref(data["world"], user) if user else None
            if user and account is None:
                raise ValueError(f"{user!r} is not a user of the emulated world.")
            account_id = account["account_id"] if account else self._consent_user_id
            grant_id = find_grant(data, client_id, account_id)
            if grant_id is None:
                return 0
            del data["grants"][grant_id]
            return 1

    def inject_fault(
        self,
        path_prefix: str,
        *,
        status: int | None = 500,
        times: int = 1,
        retry_after: float | None = None,
        delay: float = 0.0,
        body: dict | None = None,
        headers: dict | None = None,
        server: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests whose path starts with ``path_prefix`` with
        ``status`` (after ``delay`` seconds, server side).

        A 429 carries ``Retry-After`` (``retry_after``, default 1) and, on the api server, the
        rate-limit headers. ``status=None`` answers normally, only late (``delay``).
        ``server`` (``auth``/``api``) limits the fault to one server; by default
        ``/authorize...`` and exactly ``/oauth/token`` mean the auth server (so a token-endpoint
        fault does not hit ``/oauth/token/accessible-resources``), anything else both.
        """
        if not isinstance(path_prefix, str) or not path_prefix.startswith("/"):
            raise ValueError("path_prefix must be a path starting with /.")
        if path_prefix.startswith("/_emulator"):
            raise ValueError("The admin endpoints cannot be faulted.")
        if status is not None and (isinstance(status, bool) or not 100 <= int(status) <= 599):
            raise ValueError("status must be an HTTP status code or None.")
        if not isinstance(times, int) or times < 1:
            raise ValueError("times must be a positive integer.")
        if server not in (None, "auth", "api"):
            raise ValueError("server must be 'auth', 'api' or None.")
        for name, value in (("retry_after", retry_after), ("delay", delay)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value < 0
            ):
                raise ValueError(f"{name} must be a non-negative number.")
        if body is not None and not isinstance(body, dict):
            raise ValueError("body must be a JSON object (dict).")
        if headers is not None and not isinstance(headers, dict):
            raise ValueError("headers must be a dict.")
        if server is None and (
            path_prefix.startswith("/authorize") or path_prefix == "/oauth/token"
        ):
            server = "auth"
        with self._store.transaction() as data:
            data["faults"].append(
                {
                    "path_prefix": path_prefix,
                    "server": server,
                    "status": None if status is None else int(status),
                    "remaining": times,
                    "retry_after": retry_after,
                    "delay": float(delay or 0),
                    "body": body,
                    "headers": {str(k): str(v) for k, v in (headers or {}).items()},
                }
            )

    # --- request handling ---------------------------------------------------------------------

    def _serve(self, kind: str, request: Request) -> Response:
        fault = None
        if not request.path.startswith("/_emulator/"):
            fault = self._take_fault(kind, request.path)
        if fault is not None and fault["delay"]:
            time.sleep(fault["delay"])
        if fault is not None and fault["status"] is not None:
            response = self._fault_response(kind, request, fault)
        elif kind == "auth":
            response = self._auth(request)
        else:
            self._webhooks.drop_pending()
            response = self._gateway(request)
            self._webhooks.send_pending()  # after the state is saved, before the answer
        self.request_log.append((request.method, request.path, response.status))
        log.debug("emulator %s %s %s -> %s", kind, request.method, request.path, response.status)
        return response

    def _take_fault(self, kind: str, path: str) -> dict | None:
        with self._store.transaction(read_only=True) as data:  # nearly always none pending
            if not data["faults"]:
                return None
        with self._store.transaction() as data:
            if not data["faults"]:
                return None
            for fault in data["faults"]:
                if path.startswith(fault["path_prefix"]) and fault["server"] in (None, kind):
                    fault["remaining"] -= 1
                    if fault["remaining"] <= 0:
                        data["faults"].remove(fault)
                    return dict(fault)
        return None

    def _fault_response(self, kind: str, request: Request, fault: dict) -> Response:
        status = fault["status"]
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        headers: dict[str, str] = {}
        if kind == "api":
            headers.update(self._gateway.fault_headers(request, status, fault["retry_after"]))
        if status == 429 or fault["retry_after"] is not None:
            wait = 1.0 if fault["retry_after"] is None else fault["retry_after"]
            headers["Retry-After"] = format_seconds(wait)
        headers.update(fault["headers"])
        if fault["body"] is not None:
            return json_response(status, fault["body"], headers)
        if kind == "api":
            return json_response(status, gateway_error_body(request.path, status, phrase), headers)
        if request.path.startswith("/authorize"):
            response = error_page(phrase, status=status)
            for key, value in headers.items():
                response.set_header(key, value)
            return response
        error = {429: "too_many_requests", 503: "temporarily_unavailable"}.get(
            status, "server_error" if status >= 500 else "invalid_request"
        )
        return json_response(status, {"error": error, "error_description": phrase}, headers)
