"""The emulated world a user can shape: users, sites, app registrations, seeded Jira and
Confluence data, read from a YAML or JSON file and validated with errors that name the line.

:func:`load_world` turns a file (or a dict) into the JSON-able form the emulator keeps in its
state; the helpers below look things up in that form. The default world is
``default_world.yaml`` beside this module; ``docs/EMULATOR.md`` documents every key.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from ._scopes import APIS, CONFLUENCE, JIRA, UnknownScope, api_of_scope

__all__ = [
    "DEFAULT_WORLD",
    "WorldError",
    "load_world",
    "user_by_ref",
    "account_by_id",
    "service_account_by_client",
    "site_by_ref",
    "public_site",
    "profile",
    "ACTIVE_TEST_ACCOUNT",
    "CLOSED_TEST_ACCOUNT",
]

DEFAULT_WORLD = Path(__file__).with_name("default_world.yaml")

# Atlassian's documented test accounts for the personal data reporting API.
ACTIVE_TEST_ACCOUNT = "5be24ad8b1653240376955d2"
CLOSED_TEST_ACCOUNT = "5be24ba3f91c106033269289"

PRODUCTS = (JIRA, CONFLUENCE)
_AVATAR = "https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/{}/128"
_SITE_AVATAR = "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/site.png"
_SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}$")
_PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")
_KEYS = {
    "": {"users", "sites", "apps", "stored_accounts", "service_accounts"},
    "users": {
        "account_id", "name", "email", "nickname", "zoneinfo", "locale", "picture",
        "job_title", "organization", "department", "location", "profile_updated_at", "closed",
    },
    "stored_accounts": {"user", "copied_at"},
    "sites": {
        "name", "id", "products", "members", "admins", "user_installed_apps", "avatar_url",
        "projects", "issues", "spaces", "pages",
    },
    "apps": {"name", "client_id", "client_secret", "owner", "sharing", "apis", "callback_urls",
             "webhook_url"},
    "service_accounts": {"name", "account_id", "email", "client_id", "client_secret", "scopes",
                         "sites"},
    "projects": {"id", "key", "name", "type"},
    "issues": {"id", "key", "summary", "description", "status", "type", "reporter"},
    "spaces": {"id", "key", "name"},
    "pages": {"id", "space", "title", "body"},
}


class WorldError(ConfigError, ValueError):
    """A world file that cannot be used; the message names the file, the line and the key."""

    default_hint = "Fix the world file; docs/EMULATOR.md lists every key it takes."

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint, setting="ATLASSIAN_EMULATOR_WORLD")


# --- reading -----------------------------------------------------------------------------------


def _line_map(text: str) -> dict[tuple, int]:
    """Where each key path starts in a YAML (or JSON) text, 1-based, for error messages."""
    import yaml

    lines: dict[tuple, int] = {}

    def walk(node, path: tuple) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[(*path, key.value)] = key.start_mark.line + 1
                walk(value, (*path, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, ())
    return lines


def _read(path: Path) -> tuple[Any, dict[tuple, int]]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorldError(
            f"The emulator world file {path} does not exist.",
            "Check the path, or start from the built-in world: `atlassian-playbook emulator "
            "world > world.yaml`.",
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise WorldError(f"The emulator world file {path} is unreadable ({error}).") from None
    try:
        return yaml.safe_load(text), _line_map(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "not valid YAML or JSON"
        raise WorldError(f"{path}{where}: {problem}.") from None


class _Checker:
    """Validates the raw document, raising :class:`WorldError` at the first problem."""

    def __init__(self, source: str, lines: dict[tuple, int]) -> None:
        self.source, self.lines = source, lines

    def fail(self, path: tuple, message: str, hint: str | None = None):
        line = next((self.lines[path[:n]] for n in range(len(path), -1, -1)
                     if path[:n] in self.lines), None)
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        at = f"{self.source}" + (f" line {line}" if line else "") + (f" ({where})" if where else "")
        raise WorldError(f"{at}: {message}", hint)

    def mapping(self, value, path: tuple, kind: str) -> dict:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping of {kind} keys, got {type(value).__name__}.")
        unknown = sorted(str(k) for k in value if k not in _KEYS[kind])
        if unknown:
            self.fail((*path, unknown[0]), f"unknown key {unknown[0]!r}; known keys: "
                      f"{', '.join(sorted(_KEYS[kind]))}.")
        return value

    def items(self, parent: dict, key: str, path: tuple, *, required: bool = False) -> list:
        value = parent.get(key)
        if value is None:
            if required:
                self.fail(path, f"{key} is required (a list).")
            return []
        if not isinstance(value, list):
            self.fail((*path, key), f"{key} must be a list.")
        if required and not value:
            self.fail((*path, key), f"{key} needs at least one entry.")
        return value

    def text(self, parent: dict, key: str, path: tuple, *, required: bool = True,
             default: str | None = None, pattern: re.Pattern | None = None,
             what: str = "") -> str | None:
        value = parent.get(key, default)
        if value is None:
            if required:
                self.fail(path, f"{key} is required.")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.fail((*path, key), f"{key} must be a string.")
        value = str(value)
        if not value.strip():
            self.fail((*path, key), f"{key} must not be empty.")
        if pattern is not None and not pattern.match(value):
            self.fail((*path, key), f"{key} {value!r} is not {what}.")
        return value

    def flag(self, parent: dict, key: str, path: tuple, default: bool) -> bool:
        value = parent.get(key, default)
        if not isinstance(value, bool):
            self.fail((*path, key), f"{key} must be true or false.")
        return value


def load_world(world: str | Path | Mapping | None = None) -> dict:
    """The world as the emulator keeps it: users, sites (seeded data included), apps, and a
    ``digest`` of the source so a changed file can be told from an unchanged one.

    ``world``: a path to YAML or JSON, an already parsed mapping, or ``None`` for the default.
    """
    if world is None or isinstance(world, str | Path):
        path = Path(world).expanduser() if world is not None else DEFAULT_WORLD
        raw, lines = _read(path)
        source = str(path) if world is not None else "the default world"
    else:
        raw, lines, source = copy.deepcopy(dict(world)), {}, "the world"
    check = _Checker(source, lines)
    check.mapping(raw, (), "")
    users = [_user(check, u, ("users", i)) for i, u in
             enumerate(check.items(raw, "users", (), required=True))]
    by_ref = _unique(check, users, ("account_id", "nickname"), ("users",))
    sites = [_site(check, s, ("sites", i), by_ref) for i, s in
             enumerate(check.items(raw, "sites", (), required=True))]
    _unique(check, sites, ("name", "id"), ("sites",))
    apps = [_app(check, a, ("apps", i), by_ref, users[0]["account_id"]) for i, a in
            enumerate(check.items(raw, "apps", (), required=True))]
    _unique(check, [a for a in apps if a["client_id"]], ("client_id",), ("apps",))
    stored = [_stored(check, a, ("stored_accounts", i), by_ref) for i, a in
              enumerate(check.items(raw, "stored_accounts", ()))]
    accounts = [_service_account(check, a, ("service_accounts", i), sites) for i, a in
                enumerate(check.items(raw, "service_accounts", ()))]
    _unique(check, accounts, ("account_id", "nickname"), ("service_accounts",))
    _unique(check, [a for a in apps + accounts if a["client_id"]], ("client_id",),
            ("service_accounts",))
    for index, account in enumerate(accounts):
        if account["account_id"] in by_ref:
            check.fail(("service_accounts", index, "account_id"),
                       f"account_id {account['account_id']!r} is a user's too.")
    world_data = {"users": users, "sites": sites, "apps": apps, "stored_accounts": stored,
                  "service_accounts": accounts}
    world_data["digest"] = hashlib.sha256(
        json.dumps(world_data, sort_keys=True).encode()).hexdigest()
    return world_data


def _unique(check: _Checker, records: list[dict], keys: tuple[str, ...], path: tuple) -> dict:
    seen: dict[str, dict] = {}
    for index, record in enumerate(records):
        for key in keys:
            value = record.get(key)
            if value is None:
                continue
            if value in seen and seen[value] is not record:
                check.fail((*path, index, key), f"{key} {value!r} is used twice in {path[-1]}.")
            seen[value] = record
    return seen


def _refs(check: _Checker, raw: dict, key: str, path: tuple, users: dict) -> list[str]:
    ids = []
    for index, ref in enumerate(check.items(raw, key, path)):
        user = users.get(str(ref))
        if user is None:
            check.fail((*path, key, index), f"{ref!r} is not a user of this world (use a "
                       "nickname or account_id from users).")
        ids.append(user["account_id"])
    return list(dict.fromkeys(ids))


def _user(check: _Checker, raw, path: tuple) -> dict:
    check.mapping(raw, path, "users")
    account_id = check.text(raw, "account_id", path, pattern=re.compile(r"^[A-Za-z0-9:-]{6,}$"),
                            what="an Atlassian account id (letters, digits, ':' and '-')")
    user = {"account_id": account_id}
    for key in ("name", "email"):
        user[key] = check.text(raw, key, path)
    user["nickname"] = check.text(raw, "nickname", path, required=False,
                                  default=user["email"].split("@")[0])
    user["zoneinfo"] = check.text(raw, "zoneinfo", path, default="UTC")
    user["locale"] = check.text(raw, "locale", path, default="en-US")
    user["picture"] = check.text(raw, "picture", path, default=_AVATAR.format(account_id))
    for key in ("job_title", "organization", "department", "location"):
        user[key] = check.text(raw, key, path, required=False) or ""
    updated = check.text(raw, "profile_updated_at", path, default="2025-01-01T00:00:00.000Z")
    try:
        datetime.fromisoformat(updated)
    except ValueError:
        check.fail((*path, "profile_updated_at"), f"{updated!r} is not an ISO 8601 time.")
    user["profile_updated_at"] = updated
    user["closed"] = check.flag(raw, "closed", path, False)
    return user


def _stored(check: _Checker, raw, path: tuple, users: dict) -> dict:
    """One account whose personal data the app keeps, and when its copy was taken.

    Not Atlassian's data but the app's: a world holds it so that a training run has accounts
    to report (personal data reporting answers ``closed`` or ``updated`` for them).
    """
    check.mapping(raw, path, "stored_accounts")
    user = users.get(str(raw.get("user")))
    if user is None:
        check.fail((*path, "user"), f"{raw.get('user')!r} is not a user of this world (use a "
                   "nickname or account_id from users).")
    copied = check.text(raw, "copied_at", path)
    try:
        datetime.fromisoformat(copied)
    except ValueError:
        check.fail((*path, "copied_at"), f"{copied!r} is not an ISO 8601 time.")
    return {"account_id": user["account_id"], "copied_at": copied}


def _site(check: _Checker, raw, path: tuple, users: dict) -> dict:
    check.mapping(raw, path, "sites")
    name = check.text(raw, "name", path, pattern=_SITE_NAME,
                      what="a site name (lower-case letters, digits and '-', as in "
                      "NAME.atlassian.net)")
    site_id = check.text(raw, "id", path, required=False)
    if site_id is None:  # a stable cloud id per name, so a world file need not invent one
        digest = hashlib.sha256(f"emulated-site:{name}".encode()).hexdigest()
        site_id = f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-a{digest[17:20]}-{digest[20:32]}"
    products = check.items(raw, "products", path, required=True)
    for index, product in enumerate(products):
        if product not in PRODUCTS:
            check.fail((*path, "products", index),
                       f"{product!r} is not a product; use {' or '.join(PRODUCTS)}.")
    members = _refs(check, raw, "members", path, users) or [
        next(iter(users.values()))["account_id"]]
    admins = _refs(check, raw, "admins", path, users)
    for admin in admins:
        if admin not in members:
            members.append(admin)
    site = {
        "id": site_id,
        "name": name,
        "url": f"https://{name}.atlassian.net",
        "avatarUrl": check.text(raw, "avatar_url", path, default=_SITE_AVATAR),
        "products": list(dict.fromkeys(products)),
        "members": members,
        "admins": admins,
        "user_installed_apps": check.flag(raw, "user_installed_apps", path, True),
        "approved_clients": [],
        "projects": [],
        "issues": [],
        "spaces": [],
        "pages": [],
    }
    for index, item in enumerate(check.items(raw, "projects", path)):
        where = (*path, "projects", index)
        if JIRA not in site["products"]:
            check.fail(where, f"site {name} has no Jira (products), so it cannot hold projects.")
        check.mapping(item, where, "projects")
        site["projects"].append({
            "id": check.text(item, "id", where, default=str(10000 + index)),
            "key": check.text(item, "key", where, pattern=_PROJECT_KEY,
                              what="a project key (upper-case letters and digits, 2-10)"),
            "name": check.text(item, "name", where),
            "projectTypeKey": check.text(item, "type", where, default="software"),
        })
    _unique(check, site["projects"], ("key",), (*path, "projects"))
    project_keys = {p["key"] for p in site["projects"]}
    counters: dict[str, int] = {}
    for index, item in enumerate(check.items(raw, "issues", path)):
        where = (*path, "issues", index)
        check.mapping(item, where, "issues")
        key = check.text(item, "key", where, pattern=re.compile(r"^[A-Z][A-Z0-9]{1,9}-[0-9]+$"),
                         what="an issue key such as ACME-1")
        project = key.rsplit("-", 1)[0]
        if project not in project_keys:
            check.fail((*where, "key"), f"{key} belongs to no project of site {name} "
                       f"({', '.join(sorted(project_keys)) or 'none'}).")
        reporter = item.get("reporter")
        reporter_id = members[0]
        if reporter is not None:
            if str(reporter) not in users:
                check.fail((*where, "reporter"), f"{reporter!r} is not a user of this world.")
            reporter_id = users[str(reporter)]["account_id"]
        counters[project] = max(counters.get(project, 0), int(key.rsplit("-", 1)[1]))
        site["issues"].append({
            "id": check.text(item, "id", where, default=str(10100 + index)),
            "key": key,
            "project": project,
            "summary": check.text(item, "summary", where),
            "description": check.text(item, "description", where, required=False),
            "status": check.text(item, "status", where, default="To Do"),
            "issuetype": check.text(item, "type", where, default="Task"),
            "reporter": reporter_id,
            "created": "2025-03-01T10:00:00.000+0000",
        })
    _unique(check, site["issues"], ("key", "id"), (*path, "issues"))
    for index, item in enumerate(check.items(raw, "spaces", path)):
        where = (*path, "spaces", index)
        if CONFLUENCE not in site["products"]:
            check.fail(where, f"site {name} has no Confluence (products), so it cannot hold "
                       "spaces.")
        check.mapping(item, where, "spaces")
        space_id = check.text(item, "id", where, default=str(98304 + index))
        if not space_id.isdigit():
            check.fail((*where, "id"), "a space id is a number.")
        site["spaces"].append({
            "id": int(space_id),
            "key": check.text(item, "key", where, pattern=re.compile(r"^[A-Za-z0-9~]{1,255}$"),
                              what="a space key"),
            "name": check.text(item, "name", where),
        })
    _unique(check, site["spaces"], ("key", "id"), (*path, "spaces"))
    space_keys = {s["key"] for s in site["spaces"]}
    for index, item in enumerate(check.items(raw, "pages", path)):
        where = (*path, "pages", index)
        check.mapping(item, where, "pages")
        space = check.text(item, "space", where)
        if space not in space_keys:
            check.fail((*where, "space"), f"{space!r} is not a space of site {name} "
                       f"({', '.join(sorted(space_keys)) or 'none'}).")
        page_id = check.text(item, "id", where, default=str(196608 + index))
        if not page_id.isdigit():
            check.fail((*where, "id"), "a page id is a number.")
        site["pages"].append({
            "id": page_id,
            "space": space,
            "title": check.text(item, "title", where),
            "body": check.text(item, "body", where, required=False, default="") or "",
        })
    _unique(check, site["pages"], ("id",), (*path, "pages"))
    site["next_issue_number"] = counters
    return site


def _app(check: _Checker, raw, path: tuple, users: dict, first_user: str) -> dict:
    check.mapping(raw, path, "apps")
    owner = raw.get("owner")
    if owner is not None and str(owner) not in users:
        check.fail((*path, "owner"), f"{owner!r} is not a user of this world.")
    callback_urls = check.items(raw, "callback_urls", path, required=True)
    for index, url in enumerate(callback_urls):
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            check.fail((*path, "callback_urls", index),
                       f"{url!r} is not an absolute http(s) URL.")
        if parts.fragment or url.endswith("#"):
            check.fail((*path, "callback_urls", index),
                       f"{url!r} has a #fragment, which a callback URL cannot have.")
    apis = check.items(raw, "apis", path) or list(APIS)
    for index, api in enumerate(apis):
        if api not in APIS:
            check.fail((*path, "apis", index), f"{api!r} is not an API; use one of "
                       f"{', '.join(APIS)}.")
    webhook_url = check.text(raw, "webhook_url", path, required=False)
    if webhook_url is not None:
        try:
            check_webhook_url(webhook_url)
        except ValueError as error:
            check.fail((*path, "webhook_url"), str(error))
    return {
        "name": check.text(raw, "name", path),
        "webhook_url": webhook_url,
        "client_id": check.text(raw, "client_id", path, required=False),
        "client_secret": check.text(raw, "client_secret", path, required=False),
        "owner": users[str(owner)]["account_id"] if owner is not None else first_user,
        "sharing": check.flag(raw, "sharing", path, True),
        "apis": list(dict.fromkeys(apis)),
        "redirect_uris": list(dict.fromkeys(callback_urls)),
    }


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_webhook_url(url: object) -> str:
    """``url`` if it is an absolute http(s) URL on loopback; raises ``ValueError`` naming why."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"Webhook URL {url!r} is not an absolute http(s) URL.")
    if parts.hostname.lower() not in LOOPBACK:
        raise ValueError(
            f"Webhook URL {url!r} is not on loopback: the emulator delivers only to 127.0.0.1, "
            "localhost or [::1]."
        )
    return url


def _service_account(check: _Checker, raw, path: tuple, sites: list[dict]) -> dict:
    """A service account and its one OAuth 2.0 credential, as an organisation admin makes them
    in Atlassian Administration: shaped like a user (so the gateway's answers about "who
    calls" need no second kind), plus the credential's client id, secret, scopes and sites."""
    check.mapping(raw, path, "service_accounts")
    name = check.text(raw, "name", path)
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "service-account"
    digest = hashlib.sha256(f"emulated-service-account:{name}".encode()).hexdigest()
    # Atlassian's newer account ids have this "712020:" + UUID shape.
    default_id = (f"712020:{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-"
                  f"{digest[20:32]}")
    account_id = check.text(raw, "account_id", path, default=default_id,
                            pattern=re.compile(r"^[A-Za-z0-9:-]{6,}$"),
                            what="an Atlassian account id (letters, digits, ':' and '-')")
    scopes = check.items(raw, "scopes", path, required=True)
    for index, scope in enumerate(scopes):
        where = (*path, "scopes", index)
        if not isinstance(scope, str):
            check.fail(where, "a scope is a string.")
        if scope == "offline_access":
            check.fail(where, "a service account gets no refresh token, so offline_access is "
                       "not one of its scopes.")
        try:
            api_of_scope(scope)
        except UnknownScope:
            check.fail(where, f"{scope!r} is not a known scope.")
    by_name = {site["name"]: site for site in sites} | {site["id"]: site for site in sites}
    granted = []
    for index, ref in enumerate(check.items(raw, "sites", path, required=True)):
        site = by_name.get(str(ref))
        if site is None:
            check.fail((*path, "sites", index), f"{ref!r} is not a site of this world.")
        granted.append(site["id"])
    return {
        "account_id": account_id,
        "account_type": "app",
        "name": name,
        "email": check.text(raw, "email", path,
                            default=f"{slug}@serviceaccount.atlassian.com"),
        "nickname": slug,
        "zoneinfo": "UTC",
        "locale": "en-US",
        "picture": _AVATAR.format(account_id),
        "job_title": "", "organization": "", "department": "", "location": "",
        "profile_updated_at": "2025-01-01T00:00:00.000Z",
        "client_id": check.text(raw, "client_id", path, required=False),
        "client_secret": check.text(raw, "client_secret", path, required=False),
        "scopes": list(dict.fromkeys(scopes)),
        "sites": list(dict.fromkeys(granted)),
    }


# --- looking things up in a loaded world --------------------------------------------------------


def user_by_ref(world: dict, ref: str | None) -> dict | None:
    """A user by account id or nickname."""
    for user in world["users"]:
        if ref in (user["account_id"], user["nickname"]):
            return user
    return None


def account_by_id(world: dict, account_id: str | None) -> dict | None:
    """Whoever an account id is: a user, or a service account (the caller of a token issued
    with its client credentials)."""
    return user_by_ref(world, account_id) or next(
        (a for a in world.get("service_accounts", ()) if a["account_id"] == account_id), None)


def service_account_by_client(world: dict, client_id: str | None) -> dict | None:
    """The service account whose OAuth 2.0 credential has this client id."""
    return next((a for a in world.get("service_accounts", ()) if client_id
                 and a["client_id"] == client_id), None)


def site_by_ref(world: dict, ref: str | None) -> dict | None:
    """A site by cloud id, name (``acme``), host (``acme.atlassian.net``) or URL."""
    if not ref:
        return None
    name = ref.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
    name = name.removesuffix(".atlassian.net")
    for site in world["sites"]:
        if ref == site["id"] or name == site["name"]:
            return site
    return None


def public_site(site: dict) -> dict:
    """What :attr:`Emulator.sites` shows of a site."""
    keys = ("id", "name", "url", "avatarUrl", "products", "user_installed_apps", "members",
            "admins")
    return copy.deepcopy({k: site[k] for k in keys})


def profile(user: dict) -> dict:
    """A user as ``GET /me`` returns them (FACTS.md, "User identity")."""
    return {
        "account_type": user.get("account_type", "atlassian"),
        "account_id": user["account_id"],
        "email": user["email"],
        "name": user["name"],
        "picture": user["picture"],
        "account_status": "active",
        "nickname": user["nickname"],
        "zoneinfo": user["zoneinfo"],
        "locale": user["locale"],
        "extended_profile": {
            key: user[key] for key in ("job_title", "organization", "department", "location")
            if user[key]
        },
    }
