"""The connection's commands: `login`, `verify`, `refresh`."""

from __future__ import annotations

import sys

from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    Add,
    JsonFlag,
    connect_target,
    positive_seconds,
    print_json,
    settings_of,
)


def cmd_login(args) -> int:
    from .. import connection
    from ..config import parse_scopes
    from ..scopes import validate_scopes

    scopes = validate_scopes(parse_scopes(args.scopes), setting="--scopes") if args.scopes else None
    if args.client_credentials:  # a service account: no browser, no callback
        settings = settings_of(args)
        with connect_target(args, settings=settings.replace(grant="client_credentials"),
                            announce=sys.stderr) as target:
            result = connection.login_client_credentials(target, scopes=scopes)
        if target.emulator is not None and not settings.is_service_account:
            result.warnings.append("set ATLASSIAN_GRANT=client_credentials in .env so that "
                                   "verify and refresh use the emulator's service account too.")
        if args.json:
            print_json(result.to_dict())
        else:
            print(result.to_text())
        return EXIT_OK
    # stdout is for the authorization URL alone on its line (scripts pick it up).
    target = connect_target(args, auto_consent=args.no_browser, announce=sys.stderr)
    browser = "system"
    if args.no_browser:
        # --paste: whoever visits the URL pastes where it landed (the emulator consents at
        # once for them); otherwise the embedded emulator is consented to headless here.
        browser = "headless" if target.emulator is not None and not args.paste else "none"

    def show_url(url: str) -> None:
        print("Open this URL in a browser to authorize the app:", file=sys.stderr)
        print(url, flush=True)  # alone on its line, on stdout, for scripts to pick up

    def paste() -> str:
        print("Paste the full URL the browser landed on, then press Enter:", file=sys.stderr)
        return sys.stdin.readline()

    with target:
        result = connection.login(
            target,
            scopes=scopes,
            mode="paste" if args.paste else "auto",
            browser=browser,
            paste=paste if args.paste or browser != "headless" else None,
            show_url=show_url,
            timeout=args.timeout,
        )
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.to_text())
    return EXIT_OK


def cmd_verify(args) -> int:
    from .. import connection

    with connect_target(args) as target:
        report = connection.verify(target, account_id=args.account)
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.to_text())
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_refresh(args) -> int:
    from .. import connection

    with connect_target(args) as target:
        result = connection.refresh(target, account_id=args.account)
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.to_text())
    return EXIT_OK


def register(add: Add, json_flag: JsonFlag) -> None:
    """Add this module's commands to the parser."""
    login = add("login", cmd_login, "authorize in a browser and store the tokens")
    login.add_argument("--no-browser", action="store_true", help="print the URL, open nothing")
    login.add_argument("--paste", action="store_true",
                       help="paste the redirected URL instead of listening on the callback")
    login.add_argument("--scopes", help='space-separated scopes (default: ATLASSIAN_SCOPES)')
    login.add_argument("--client-credentials", action="store_true",
                       help="a service account: fetch a token with the client id and secret "
                       "(grant_type=client_credentials; --scopes narrows it, default all the "
                       "credential's)")
    login.add_argument("--timeout", type=positive_seconds, default=300.0,
                       help="seconds to wait for the callback (default 300)")
    json_flag(login)

    for name, handler, text in (
        ("verify", cmd_verify, "check sites, scopes, /me, Jira and Confluence"),
        ("refresh", cmd_refresh, "refresh the tokens and store the rotated refresh token"),
    ):
        sub = add(name, handler, text)
        sub.add_argument("--account", help="account id, when the store holds several")
        json_flag(sub)
