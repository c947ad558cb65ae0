"""`emulator`: serve the emulator, and its console (callbacks, user-installed apps, world,
rehearse, compare)."""

from __future__ import annotations

import argparse
import sys

from ..errors import PlaybookError
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    Add,
    JsonFlag,
    connect_target,
    print_json,
    settings_of,
)


def cmd_emulator(args) -> int:
    from ..emulator import serve

    return serve(port=args.port, auto_consent=args.auto_consent, state_path=args.state,
                 world=args.world, as_json=args.json)


def _console(args):
    """The emulated world a console command edits: ``--state FILE``, else the one the other
    commands of this folder use (beside the token store), with .env's world file."""
    from ..emulator import Emulator
    from ..target import emulator_state_path

    settings = settings_of(args)
    world = getattr(args, "world", None) or settings.emulator_world
    state = getattr(args, "state", None) or emulator_state_path(settings)
    return Emulator(state_path=state, world=world)


def cmd_emulator_callbacks(args) -> int:
    """The emulated app's Authorization tab: list, add or remove callback URLs."""
    emulator = _console(args)
    client = emulator.client(args.client_id) if args.client_id else emulator.default_client
    if client is None:
        raise PlaybookError(f"No emulated app has client id {args.client_id}.",
                            "Run `atlassian-playbook emulator callbacks list` without "
                            "--client-id to see the default app.")
    if args.action != "list" and not args.url:
        raise PlaybookError(f"`emulator callbacks {args.action}` needs the callback URL.",
                            "Give it after the action, e.g. `atlassian-playbook emulator "
                            f"callbacks {args.action} http://127.0.0.1:8765/callback`; "
                            "`emulator callbacks list` shows the registered ones.")
    if args.action == "remove" and args.url not in client.redirect_uris:
        raise PlaybookError(f"{args.url} is not a callback URL of the app.",
                            "Run `atlassian-playbook emulator callbacks list` and copy one.")
    try:
        if args.action == "add":
            client = emulator.add_callback_url(args.url, client.client_id)
        elif args.action == "remove":
            client = emulator.set_callback_urls(
                [url for url in client.redirect_uris if url != args.url], client.client_id)
    except ValueError as error:
        raise PlaybookError(str(error), "Give an absolute http(s) URL without a #fragment; "
                            "an app keeps at least one callback URL.") from None
    if args.json:
        print_json({"client_id": client.client_id, "callback_urls": list(client.redirect_uris),
                     "state": str(emulator.state_path)})
    else:
        print(f"Callback URLs of emulated app {client.client_id} ({emulator.state_path}):")
        print("\n".join(f"  {url}" for url in client.redirect_uris))
    return EXIT_OK


def cmd_emulator_user_installed_apps(args) -> int:
    """Atlassian Administration's Connected apps setting for one site of the emulated world."""
    emulator = _console(args)
    try:
        site = emulator.set_user_installed_apps(args.site, args.setting == "allow")
    except ValueError as error:
        names = ", ".join(s["name"] for s in emulator.sites)
        raise PlaybookError(str(error), f"Sites of the emulated world: {names}.") from None
    state = ("Allowed" if site["user_installed_apps"]
             else "not allowed (a site admin must authorize each app)")
    print(f"{site['name']}: user-installed apps {state}")
    return EXIT_OK


def cmd_emulator_rehearse(args) -> int:
    """The consent traps on purpose, against this folder's embedded emulator."""
    from ..rehearsals import rehearse

    with connect_target(args) as target:
        results = rehearse(target, args.names or None)
    if args.json:
        print_json([r.to_dict() for r in results])
    else:
        for r in results:
            mark = "ok" if r.as_expected else "UNEXPECTED"
            print(f"{mark:<11}{r.name}: {r.mistake}\n           sees: {r.seen}\n"
                  f"           fix: {r.fix}")
    return EXIT_OK if all(r.as_expected for r in results) else EXIT_FAILED


def cmd_emulator_world(args) -> int:
    """Print the default world, to copy into a world file of one's own."""
    from ..emulator import DEFAULT_WORLD

    sys.stdout.write(DEFAULT_WORLD.read_text(encoding="utf-8"))
    return EXIT_OK


def cmd_emulator_compare(args) -> int:
    from ..parity import Record, compare_with_emulator

    comparison = compare_with_emulator(Record.load(args.file))
    if args.json:
        print_json(comparison.to_dict())
    else:
        print(comparison.to_text())
    return EXIT_OK if comparison.ok else EXIT_FAILED


def register(add: Add, json_flag: JsonFlag) -> None:
    """Add this module's commands to the parser."""
    emulator = add("emulator", cmd_emulator, "run the Atlassian emulator on loopback")
    emulator.add_argument("--port", type=int, default=0,
                          help="auth server port (the API gateway uses the next one)")
    emulator.add_argument("--auto-consent", action="store_true",
                          help="consent at once, without the consent page")
    emulator.add_argument("--state", metavar="FILE",
                          help="keep the emulated world in FILE (0600), shared across restarts")
    emulator.add_argument("--world", metavar="FILE",
                          help="users, sites, apps and seeded data (YAML or JSON; see "
                          "docs/EMULATOR.md); default: ATLASSIAN_EMULATOR_WORLD or the "
                          "built-in world")
    json_flag(emulator)
    # No action: serve. Other actions are subcommands of this one parser.
    emulator_actions = emulator.add_subparsers(dest="emulator_command", metavar="ACTION")

    def console_flags(sub) -> None:
        # SUPPRESS: the emulator parser's own --state/--world stay when these are not given.
        sub.add_argument("--state", metavar="FILE", default=argparse.SUPPRESS,
                         help="the emulated world's state file (default: the one beside this "
                         "folder's token store, which login and verify use)")
        sub.add_argument("--world", metavar="FILE", default=argparse.SUPPRESS,
                         help="the world file that state was made from")

    callbacks = add("callbacks", cmd_emulator_callbacks, "the emulated app's Authorization "
                    "tab: list, add or remove callback URLs (the deliberate way to change them)",
                    emulator_actions)
    callbacks.add_argument("action", choices=("list", "add", "remove"))
    callbacks.add_argument("url", nargs="?", help="the callback URL (add, remove)")
    callbacks.add_argument("--client-id", help="another emulated app than the default one")
    console_flags(callbacks)
    json_flag(callbacks)
    user_apps = add("user-installed-apps", cmd_emulator_user_installed_apps,
                    "Atlassian Administration's Connected apps setting: allow or block "
                    "user-installed apps on a site of the emulated world", emulator_actions)
    user_apps.add_argument("site", help="site name or cloud id")
    user_apps.add_argument("setting", choices=("allow", "block"))
    console_flags(user_apps)
    add("world", cmd_emulator_world, "print the built-in world (YAML), to start a world file "
        "of your own", emulator_actions)
    rehearse = add("rehearse", cmd_emulator_rehearse, "make the consent traps on purpose "
                   "against the emulator (callback-mismatch, app-not-shared, api-not-added, "
                   "site-admin, product-not-on-site, per-site-scopes) and show what users see",
                   emulator_actions)
    rehearse.add_argument("names", nargs="*", metavar="NAME", help="rehearsals (default: all)")
    json_flag(rehearse)
    compare = add("compare", cmd_emulator_compare, "replay a `doctor --record` file against "
                  "the emulator and list every shape difference (exit 1 if any)",
                  emulator_actions)
    compare.add_argument("file", metavar="FILE", help="a record written by doctor --record")
    json_flag(compare)
