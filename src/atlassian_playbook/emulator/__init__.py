"""A strict local emulator of auth.atlassian.com and api.atlassian.com on loopback.

Notebooks, the CLI and the tests use it when no real credentials are set. It is as strict as
Atlassian (per ``FACTS.md``), because a lenient emulator hides bugs users will hit::

    from atlassian_playbook.emulator import Emulator
    with Emulator(auto_consent=True) as emu:       # two servers: auth and api, free ports
        emu.auth_base_url, emu.api_base_url       # its two base URLs
        emu.default_client                         # the registered app (id, secret, callbacks)
        emu.inject_fault("/oauth/token", status=429, retry_after=1)
        emu.advance_clock(3601)                    # access tokens expire

Where FACTS.md is silent, the emulator chooses:

* The world (users, sites, apps, seeded data) comes from a world file (``docs/EMULATOR.md``)
  or the built-in ``default_world.yaml``. An app's callback URLs are its registration's (the
  world file, :meth:`Emulator.set_callback_urls`), never a client's settings.
* Every /authorize validation failure (audience, client, redirect_uri, response_type, scope,
  state) is a 400 HTML page, never a redirect: the app cannot learn of it. A missing ``state``
  is refused. An app that is not shared gets the generic "Something went wrong" for anyone but
  its owner. A site whose ``user_installed_apps`` is off refuses anyone but its admins with
  "Your site admin must authorize this app for the site ..."; an admin's consent authorizes
  the app on that site for everyone (until :meth:`Emulator.remove_app_from_site`).
* The signed-in user is ``consent_user`` (default the world's first), or ``emulator_user`` on
  /authorize; the consent page lists only that user's sites and links to switch account.
* Scope names are classified by shape (:func:`api_of_scope`); a name of no known shape is an
  unknown scope (error page). Jira Software and Service Management scopes belong to the Jira API.
* All apps are resource-level (one site per consent); account-level apps are not emulated.
* Dynamic webhooks (:mod:`._webhooks` lists every choice): the app's one URL (``webhook_url``,
  else its first webhook's), loopback only; one delivery per app and event, sent before the
  API answers, signed HS256 with the client secret (claims ``iss``, ``sub``, ``iat``, ``exp``,
  ``jti``, ``body_sha256``); at most 5 per app, user and site; failures listed, not retried.
* Deny redirects with ``error_description=The user denied access to the app.``
* Service accounts (the world's ``service_accounts``) take ``grant_type=client_credentials``
  only, and apps never do: across kinds the answer is Auth0's 403 ``unauthorized_client``. A
  ``scope`` parameter may narrow the token to some of the credential's scopes; a scope it was
  not granted is 403 ``access_denied`` "Client has not been granted scopes: ...". The token
  lasts 3600 s without a refresh token; ``/me`` answers the account with ``account_type``
  ``app``.
* The token endpoint takes a JSON or a form body, with the client credentials in the body or
  in HTTP Basic (RFC 6749 §2.3.1: id and secret form-URL-encoded, then base64), with the same
  answers for every style. Basic and body credentials that disagree are refused (401), never
  one of them picked; a form parameter sent twice is 400 ``invalid_request``. A
  missing/unknown client id or wrong/missing secret is 401 ``access_denied``/``Unauthorized``;
  a missing parameter is 400 ``invalid_request``; an unsupported grant type 400
  ``unsupported_grant_type``; a code that is unknown, used, expired or issued for another
  ``redirect_uri`` is 403 ``invalid_grant`` "Invalid authorization code". A failed exchange
  does not consume the code; reusing a code does not revoke the tokens issued from it.
* The token response's ``scope`` is the requested scopes as granted, ``offline_access``
  included. Refresh keeps the scopes of the consent that issued the first token.
* A rotated refresh token presented within the 10-minute leeway gets a fresh pair of its own;
  the pair issued by the first refresh stays valid. The access token issued with a refresh
  token that is rotated keeps working for 10 minutes, then gets 401. After the leeway, reuse
  revokes every refresh token of the grant and every access token they issued. The absolute
  365-day lifetime runs from the grant's first consent; revoking the grant kills its tokens.
* A token reaches every site of its grant as the grant stands now (a second consent for
  another site also opens that site to earlier tokens), with that site's scopes; ``/me`` and
  reporting check the token's own scopes. accessible-resources lists, per granted site, a Jira
  entry with the Jira scopes and a Confluence entry with the Confluence scopes, each only when
  the site has the product and such scopes were granted (identity-only grants list nothing).
* Gateway order: rate budget, 401 for a missing/unknown/expired/revoked token, 401 scope
  mismatch for a site outside the grant, 404 for a product the site lacks, 404 for an unknown
  path (in the product's error shape), 405 for a served path asked with another method, then
  the scope check.
* Gateway paths served (``operations.json``): Jira REST v3 and the same under v2 (``myself``,
  ``serverInfo``, ``field``, ``project``, ``project/search``, ``project/{idOrKey}``,
  ``search/jql`` GET and POST, ``issue/{idOrKey}``, POST ``issue``), and ``search``, which
  answers 410 as Jira Cloud has since it was removed (CHANGE-2046); Confluence v1 (``space``,
  ``user/current``, ``content/search`` and ``search`` by CQL, ``content/{id}``) and v2
  (``spaces``, ``pages``, ``pages/{id}``, ``spaces/{id}/pages``). Rich text is a string in
  Jira v2 and ADF in v3, read and written; created issues join the world's state. JQL and CQL
  are small subsets; anything else is a 400 naming the unsupported part.
* Gateway scopes: each operation takes the alternatives its OpenAPI document lists (all classic
  scopes of one entry, or all granular scopes of one entry); an empty entry (serverInfo) takes
  any scope of the product on the site. v2 paths take the v3 operation's (no v2 document).
* Rate limits: 500 requests per token per minute of emulator time; ``RateLimit-Reason`` is
  ``jira-burst-based``, ``confluence-burst-based`` or ``gateway-burst-based``;
  ``X-RateLimit-NearLimit: true`` is sent only when near (under 20% left). ``Retry-After``
  is whole seconds for the budget, and as given (``0.5`` allowed) for injected faults.
* Reporting: an empty ``accounts`` list is a 400; ``updatedAt`` must parse as ISO 8601 (no
  zone means UTC); the emulated user's profile changed at 2025-01-15T09:30:00.000Z;
  ``Cycle-Period: P7D`` is on every answer of that path, errors included.
* Revocation removes the grant; a later consent starts a new grant.
* Consent requests (the page's hidden id) are single-use and expire after an hour.
* Faults: ``status=None`` means "answer normally, after ``delay``"; a fault for ``/authorize...``
  or exactly ``/oauth/token`` applies to the auth server only (``server=`` overrides), so it
  cannot hit ``/oauth/token/accessible-resources``; ``/_emulator/*`` is never faulted.
* Shared state (``state_path``): the world is shared; ``request_log``, the rate budget and
  the admin token are each process's own. A state file that cannot be read is refused
  (:class:`StateFileError`, delete it), never replaced. :func:`read_state` is what a file
  holds (the state on its first line, with the change lines after it applied).
* As a server: a body over 1 MiB is 413, a ``Content-Length`` that is not plain digits 400,
  JSON nested deeper than 64 levels 400 in the endpoint's error shape. ``/_emulator/*``
  answers only ``Host: 127.0.0.1|localhost|[::1]:<its port>`` (else 403) with
  ``Authorization: Bearer <Emulator.admin_token>`` (else 401). Every HTML page sends
  ``X-Frame-Options: DENY`` and a Content-Security-Policy allowing only its own inline style
  and script (by hash), no framing, and forms posting only to the emulator and, from the
  consent page, to the callback's origin (its scheme alone for an IPv6 literal).
"""

from ._core import Emulator
from ._registration import DEFAULT_REDIRECT_URIS, ClientRegistration
from ._scopes import APIS, UnknownScope, api_of_scope
from ._state import StateFileError, read_state
from ._world import DEFAULT_WORLD, WorldError, load_world
from .server import serve

__all__ = [
    "Emulator",
    "ClientRegistration",
    "DEFAULT_REDIRECT_URIS",
    "DEFAULT_WORLD",
    "APIS",
    "api_of_scope",
    "UnknownScope",
    "WorldError",
    "StateFileError",
    "read_state",
    "load_world",
    "serve",
]
