"""``atlassian-playbook``: the whole connection lifecycle from a terminal.

Every command prints a short human summary (or JSON with ``--json``), exits 0 on success and
non-zero with one line ``error: ... hint: ...`` otherwise, and never prints a secret. With no
client id and secret configured, commands run against the embedded emulator; a command that
talks to Atlassian says first which one. The workspace is the folder of ``--env-file``
(:mod:`atlassian_playbook.config` has the rule), so the notebooks' logins are the CLI's.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence

from .errors import PlaybookError
from .redact import RedactingFilter, redact

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # as if killed by SIGPIPE, like `yes | head`
# OS errors a user fixes on their machine (full disk, permissions), with how.
_DISK_ERRORS = {
    errno.ENOSPC: "free some space on that disk",
    errno.EDQUOT: "free some space (your disk quota is used up)",
    errno.EROFS: "the file system is read-only: use a writable folder",
    errno.EACCES: "you may not write there: fix its permissions or use another folder",
    errno.EPERM: "you may not write there: fix its permissions or use another folder",
}


def _print_json(data) -> None:
    print(redact(json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False)))


def _settings(args):
    from .config import load_settings

    return load_settings(args.env_file)


def _target(args, *, auto_consent: bool = True, announce=sys.stdout, settings=None):
    """The target of ``args``; its human output starts by saying which Atlassian it is."""
    from .target import connect

    target = connect(settings or _settings(args), auto_consent=auto_consent)
    if not getattr(args, "json", False):
        print(f"Target: {target.describe()}", file=announce, flush=True)
    return target


def _warn_unknown_settings(args) -> None:
    """Every command warns about ``ATLASSIAN_*`` names that are no setting (typos)."""
    from .config import load_settings
    from .errors import ConfigError

    try:
        unknown_settings = load_settings(args.env_file, validate=False).unknown
    except ConfigError:
        return  # an unreadable .env: the command itself says so, once
    for unknown in unknown_settings:
        print(f"warning: {unknown.message}  hint: {unknown.hint}", file=sys.stderr)


def _seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number of seconds")
    return value


def _count(text: str) -> int:
    """An argparse type: a positive whole number."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of at least 1")
    return value


# --- commands -------------------------------------------------------------------------------


def cmd_doctor(args) -> int:
    from .doctor import run_doctor

    report = run_doctor(args.env_file, record=args.record)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.to_text())
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_scopes_list(args) -> int:
    from .scopes import APIS, CONSOLE_APIS, KINDS, list_scopes

    scopes = list_scopes(api=args.api, kind=args.kind)
    if args.json:
        _print_json(
            [
                {"name": s.name, "api": s.api, "kind": s.kind, "description": s.description,
                 "console_api": s.console_api, "endpoints": list(s.endpoints)}
                for s in scopes
            ]
        )
        return EXIT_OK
    # Grouped as a person looks for them: by API, classic (the short list) before granular,
    # and by the console API they are ticked under (offline_access under none).
    for api in APIS:
        for kind in KINDS:
            for where in (*CONSOLE_APIS, None):
                group = sorted((s for s in scopes if (s.api, s.kind, s.console_api)
                                == (api, kind, where)), key=lambda s: s.name)
                if not group:
                    continue
                tab = (f"console: {where}, {kind.capitalize()} scopes tab" if where else
                       "not ticked on the console: requested in the authorization URL")
                plural = "s" if len(group) > 1 else ""
                print(f"{api} · {kind} · {len(group)} scope{plural} ({tab})")
                width = max(len(s.name) for s in group)
                for scope in group:
                    print(f"  {scope.name:<{width}}  {scope.description}")
                print()
    print(f"{len(scopes)} scopes")
    return EXIT_OK


def cmd_scopes_check(args) -> int:
    from .scopes import FIND_SCOPES_HINT, catalog, check_scopes, or_list, suggest

    given = [part for arg in args.scopes for part in arg.split()]
    if any("," in item for item in given):
        fixed = " ".join(p for item in given for p in item.split(",") if p)
        raise PlaybookError(
            f"The scopes you gave are separated by commas: {' '.join(given)!r}.",
            f"Separate them with spaces, as Atlassian's scope parameter does: "
            f"`atlassian-playbook scopes check {fixed}`.",
        )
    scopes = tuple(dict.fromkeys(given))
    unknown = [name for name in scopes if name not in catalog()]
    if unknown:
        guesses = [f"{name}: did you mean {or_list(close)}?" if len(unknown) > 1
                   else f"Did you mean {or_list(close)}?"
                   for name in unknown if (close := suggest(name))]
        subject = (f"The scope {unknown[0]} you gave is" if len(unknown) == 1
                   else f"The scopes {', '.join(unknown)} you gave are")
        noun = "scope" if len(unknown) == 1 else "scopes"
        raise PlaybookError(f"{subject} not a known Atlassian {noun}.",
                            " ".join([*guesses, FIND_SCOPES_HINT]))
    warnings = check_scopes(scopes)
    if args.json:
        _print_json({"scopes": list(scopes), "valid": True,
                     "warnings": [{"code": w.code, "message": w.message, "hint": w.hint}
                                  for w in warnings]})
        return EXIT_OK
    print(f"ok: {len(scopes)} known scope(s): {' '.join(scopes)}")
    for warning in warnings:
        print(f"warning: {warning.message}  hint: {warning.hint}")
    return EXIT_OK


def cmd_scopes_for(args) -> int:
    from .advisor import advise, split_endpoints

    given = list(args.endpoints)
    if "-" in given:  # `-`: also read endpoints from stdin, one per line
        at = given.index("-")
        given[at:at + 1] = split_endpoints(sys.stdin.read())
    advice = advise(given)
    if not advice.endpoints:
        raise PlaybookError(
            "No endpoint given.",
            'Name the calls your integration makes: `atlassian-playbook scopes for '
            '"GET /rest/api/3/issue/{issueIdOrKey}" "POST /wiki/api/v2/pages"`, or `-` to '
            "read them from stdin, one per line.",
        )
    if args.json:
        _print_json(advice.to_dict())
    else:
        print(advice.to_text())
    return EXIT_OK


def cmd_scopes_preset(args) -> int:
    from .presets import preset

    scopes = preset(args.name, offline_access=True if args.offline_access else None)
    if args.json:
        _print_json({"preset": args.name, "scopes": list(scopes)})
    else:
        print(" ".join(scopes))
    return EXIT_OK


def cmd_checklist(args) -> int:
    from .checklist import build_checklist
    from .playbook.partners import checklist_inputs
    from .profiles import resolve_profile

    settings = _settings(args)
    profile = resolve_profile(args.profile, args.profile_file)
    # As notebook 02: the callback and the scopes chosen in this workspace, else the profile's.
    callback, scopes = checklist_inputs(profile, settings, args.callback_url)
    checklist = build_checklist(profile, app_name=args.app_name, callback_url=callback,
                                scopes=scopes)  # fmt: skip
    if args.json:
        _print_json(checklist.to_dict())
    elif args.plain:
        print(checklist.to_plain(), end="")
    else:
        print(checklist.to_text())
    return EXIT_OK


def cmd_profiles_list(args) -> int:
    from .profiles import get_profile, profile_names

    profiles = [get_profile(name) for name in profile_names()]
    if args.json:
        _print_json([p.to_dict() for p in profiles])
        return EXIT_OK
    width = max(len(p.name) for p in profiles)
    for p in profiles:
        callback = p.callback.url or p.callback.shown_as or "yours (ATLASSIAN_REDIRECT_URI)"
        print(f"{p.name:<{width}}  {p.title}; callback: {callback}")
    print(f"{len(profiles)} profiles; your own: checklist --profile-file FILE.toml")
    return EXIT_OK


def cmd_profiles_show(args) -> int:
    from .profiles import resolve_profile

    if not args.name and not args.file:
        raise PlaybookError("profiles show needs a NAME or --file.",
                            "Run `atlassian-playbook profiles list` for the names.")  # fmt: skip
    profile = resolve_profile(args.name, args.file)
    if args.json:
        _print_json(profile.to_dict())
        return EXIT_OK
    # The file itself: the schema by example, comments included.
    if args.file:
        from pathlib import Path

        print(Path(args.file).read_text(encoding="utf-8"), end="")
    else:
        from importlib.resources import files

        print(files("atlassian_playbook").joinpath(profile.path).read_text(encoding="utf-8"),
              end="")  # fmt: skip
    return EXIT_OK


def cmd_login(args) -> int:
    from . import connection
    from .config import parse_scopes
    from .scopes import validate_scopes

    scopes = validate_scopes(parse_scopes(args.scopes)) if args.scopes else None
    if args.client_credentials:  # a service account: no browser, no callback
        settings = _settings(args)
        with _target(args, settings=settings.replace(grant="client_credentials"),
                     announce=sys.stderr) as target:
            result = connection.login_client_credentials(target, scopes=scopes)
        if target.emulator is not None and not settings.is_service_account:
            result.warnings.append("set ATLASSIAN_GRANT=client_credentials in .env so that "
                                   "verify and refresh use the emulator's service account too.")
        if args.json:
            _print_json(result.to_dict())
        else:
            print(result.to_text())
        return EXIT_OK
    # stdout is for the authorization URL alone on its line (scripts pick it up).
    target = _target(args, auto_consent=args.no_browser, announce=sys.stderr)
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
        _print_json(result.to_dict())
    else:
        print(result.to_text())
    return EXIT_OK


def cmd_verify(args) -> int:
    from . import connection

    with _target(args) as target:
        report = connection.verify(target, account_id=args.account)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.to_text())
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_refresh(args) -> int:
    from . import connection

    with _target(args) as target:
        result = connection.refresh(target, account_id=args.account)
    if args.json:
        _print_json(result.to_dict())
    else:
        print(result.to_text())
    return EXIT_OK


def cmd_emulator(args) -> int:
    from .emulator import serve

    return serve(port=args.port, auto_consent=args.auto_consent, state_path=args.state,
                 world=args.world, as_json=args.json)


def _console(args):
    """The emulated world a console command edits: ``--state FILE``, else the one the other
    commands of this folder use (beside the token store), with .env's world file."""
    from .emulator import Emulator
    from .target import emulator_state_path

    settings = _settings(args)
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
                            f"atlassian-playbook emulator callbacks {args.action} URL")
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
        _print_json({"client_id": client.client_id, "callback_urls": list(client.redirect_uris),
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
    from .rehearsals import rehearse

    with _target(args) as target:
        results = rehearse(target, args.names or None)
    if args.json:
        _print_json([r.to_dict() for r in results])
    else:
        for r in results:
            mark = "ok" if r.as_expected else "UNEXPECTED"
            print(f"{mark:<11}{r.name}: {r.mistake}\n           sees: {r.seen}\n"
                  f"           fix: {r.fix}")
    return EXIT_OK if all(r.as_expected for r in results) else EXIT_FAILED


def cmd_emulator_world(args) -> int:
    """Print the default world, to copy into a world file of one's own."""
    from .emulator import DEFAULT_WORLD

    sys.stdout.write(DEFAULT_WORLD.read_text(encoding="utf-8"))
    return EXIT_OK


def cmd_emulator_compare(args) -> int:
    from .parity import Record, compare_with_emulator

    comparison = compare_with_emulator(Record.load(args.file))
    if args.json:
        _print_json(comparison.to_dict())
    else:
        print(comparison.to_text())
    return EXIT_OK if comparison.ok else EXIT_FAILED


def cmd_init(args) -> int:
    from .scaffold import init_workspace

    print(init_workspace(args.folder).to_text())
    return EXIT_OK


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(output_dir=args.output)


def cmd_batch(args) -> int:
    from pathlib import Path

    from .batch import plan_from_store, run_batch
    from .batch.plan import PlanError, load_plan

    if bool(args.plan) == bool(args.from_store):
        raise PlanError("Give a plan file or --from-store (one of them).",
                        "atlassian-playbook batch examples/batch-plan.yaml, or "
                        "atlassian-playbook batch --from-store --workspace DIR")
    if args.from_store:
        workspaces = args.workspace or [str(Path(args.env_file).parent)]
        plan = plan_from_store(workspaces, notebook=args.notebook)
    else:
        plan = load_plan(args.plan, max_runs=args.max_runs)
    if not args.json:
        _announce_workspaces(plan)
    summary = run_batch(
        plan, output_dir=args.output, workers=args.workers, timeout=args.timeout,
        executor=args.executor, scheduler=args.scheduler, resume=args.resume,
        progress="none" if args.json else args.progress, max_runs=args.max_runs,
    )
    if args.json:
        _print_json(summary.to_dict())
    else:
        print(summary.to_text())
    return summary.exit_code


def _announce_workspaces(plan) -> None:
    """A batch's first lines: which Atlassian each workspace of the plan talks to."""
    from pathlib import Path

    from .config import load_workspace_settings
    from .errors import ConfigError
    from .target import describe_settings

    workspaces = list(dict.fromkeys(str(run["workspace"]) for run in plan.runs
                                    if run.get("workspace")))
    for workspace in workspaces[:5]:
        try:
            where = describe_settings(load_workspace_settings(Path(workspace)))
        except ConfigError as error:
            where = f"invalid settings ({error.message})"
        print(f"Target of {workspace}: {where}", flush=True)
    if len(workspaces) > 5:
        print(f"... and {len(workspaces) - 5} more workspaces", flush=True)


def cmd_render(args) -> int:
    from .render import render_playbook

    print("Target: the embedded Atlassian emulator, in a scratch workspace (the training build "
          "never uses .env's credentials or tokens)", flush=True)
    result = render_playbook(args.output, timeout=args.timeout)
    print(result.to_text())
    return EXIT_OK if result.ok else EXIT_FAILED


# --- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from .batch.plan import DEFAULT_MAX_RUNS  # light: the batch engine loads when it runs
    from .profiles import DEFAULT_PROFILE, profile_names  # lists file names, parses nothing
    parser = argparse.ArgumentParser(
        prog="atlassian-playbook",
        description="Create, verify and refresh an Atlassian Cloud OAuth 2.0 (3LO) connection. "
        "With no credentials in .env, everything runs against the embedded emulator.",
    )
    parser.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    parser.add_argument("--debug", action="store_true",
                        help="log the HTTP exchange to stderr (redacted)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable, help: str, parent=commands) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    def json_flag(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--json", action="store_true", help="machine-readable output")

    doctor = add("doctor", cmd_doctor, "check the configuration and that the servers answer")
    doctor.add_argument("--record", metavar="FILE",
                        help="also save the shape of every answer (no values) to FILE, with "
                        "verify's API calls when logged in: attach it to bug reports")
    json_flag(doctor)

    scopes = add("scopes", None, "browse and check scopes")
    scope_commands = scopes.add_subparsers(dest="scopes_command", required=True, metavar="ACTION")
    listing = add("list", cmd_scopes_list, "list the scope catalog", scope_commands)
    listing.add_argument("--api", choices=["jira", "jsm", "confluence", "identity", "platform"])
    listing.add_argument("--kind", choices=["classic", "granular"])
    json_flag(listing)
    check = add("check", cmd_scopes_check, "check scope names; suggests fixes", scope_commands)
    check.add_argument("scopes", nargs="+", metavar="SCOPE")
    json_flag(check)
    advisor = add("for", cmd_scopes_for, "the smallest scope sets for the endpoints you call, "
                  "and where to tick them", scope_commands)
    advisor.add_argument("endpoints", nargs="+", metavar="ENDPOINT",
                         help='"METHOD path", e.g. "GET /rest/api/3/issue/ABC-1" (a gateway URL '
                         "works too); - reads more from stdin, one per line")  # fmt: skip
    json_flag(advisor)
    presets = add("preset", cmd_scopes_preset, "print a preset's scopes", scope_commands)
    presets.add_argument("name", metavar="NAME",
                         help="a profile with a documented scope set, or minimal "
                         "(`atlassian-playbook profiles list`)")  # fmt: skip
    presets.add_argument("--offline-access", action="store_true",
                         help="add offline_access where the preset makes it optional")
    json_flag(presets)

    checklist = add("checklist", cmd_checklist, "the developer-console steps for a profile")
    checklist.add_argument("--profile", choices=profile_names(), default=DEFAULT_PROFILE)
    checklist.add_argument("--profile-file", metavar="FILE.toml",
                           help="your own profile file instead of --profile "
                           "(start from `atlassian-playbook profiles show custom`)")  # fmt: skip
    checklist.add_argument("--app-name")
    checklist.add_argument("--callback-url")
    shape = checklist.add_mutually_exclusive_group()
    shape.add_argument("--plain", action="store_true",
                       help="only the values, one 'Label: value' a line, to paste into a ticket "
                       "(no secret)")  # fmt: skip
    shape.add_argument("--json", action="store_true", help="machine-readable output")

    profiles = add("profiles", None, "the integration profiles (partners) the checklist knows")
    profile_commands = profiles.add_subparsers(dest="profiles_command", required=True,
                                               metavar="ACTION")  # fmt: skip
    json_flag(add("list", cmd_profiles_list, "list the bundled profiles", profile_commands))
    show = add("show", cmd_profiles_show, "print a profile's file (or its parsed form, --json)",
               profile_commands)  # fmt: skip
    show.add_argument("name", metavar="NAME", nargs="?", help="a name from `profiles list`")
    show.add_argument("--file", metavar="FILE.toml", help="check and show your own profile file")
    json_flag(show)

    login = add("login", cmd_login, "authorize in a browser and store the tokens")
    login.add_argument("--no-browser", action="store_true", help="print the URL, open nothing")
    login.add_argument("--paste", action="store_true",
                       help="paste the redirected URL instead of listening on the callback")
    login.add_argument("--scopes", help='space-separated scopes (default: ATLASSIAN_SCOPES)')
    login.add_argument("--client-credentials", action="store_true",
                       help="a service account: fetch a token with the client id and secret "
                       "(grant_type=client_credentials; --scopes narrows it, default all the "
                       "credential's)")
    login.add_argument("--timeout", type=_seconds, default=300.0,
                       help="seconds to wait for the callback (default 300)")
    json_flag(login)

    for name, handler, text in (
        ("verify", cmd_verify, "check sites, scopes, /me, Jira and Confluence"),
        ("refresh", cmd_refresh, "refresh the tokens and store the rotated refresh token"),
    ):
        sub = add(name, handler, text)
        sub.add_argument("--account", help="account id, when the store holds several")
        json_flag(sub)

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

    init = add("init", cmd_init, "make a workspace for the playbook: its notebooks, a .env "
               "from the example (mode 0600) and a .gitignore; never overwrites a file")
    init.add_argument("folder", nargs="?", default=".", metavar="DIR",
                      help="the workspace folder, created if missing (default: this folder)")

    demo = add("demo", cmd_demo, "the main job: the whole playbook against the emulator")
    demo.add_argument("--output", default="output", help="folder for what the demo writes")

    batch = add("batch", cmd_batch, "run a notebook once per parameter set, in parallel, "
                "with a JSON and HTML summary (exit 1 when a run failed)")
    batch.add_argument("plan", nargs="?", metavar="PLAN",
                       help="plan file, YAML or JSON (see examples/batch-plan.yaml)")
    batch.add_argument("--from-store", action="store_true",
                       help="run the health-check notebook once per token-store entry")
    batch.add_argument("--workspace", action="append", metavar="DIR",
                       help="with --from-store: a workspace (.env and .playbook/); repeat for "
                       "several (default: the folder of --env-file)")
    batch.add_argument("--notebook", help="with --from-store: another notebook taking "
                       "workspace and account_id (default 09-health-check.ipynb)")
    batch.add_argument("--output", help="batch folder (default output/batch/<plan name>/)")
    batch.add_argument("--workers", type=_count,
                       help="runs at once (default: CPU count; dask: the cluster's threads)")
    batch.add_argument("--timeout", type=_seconds,
                       help="seconds per run (default: the plan's, else 600)")
    batch.add_argument("--max-runs", type=_count, default=DEFAULT_MAX_RUNS, metavar="N",
                       help="refuse a plan of more than N runs before anything starts "
                       f"(default {DEFAULT_MAX_RUNS})")
    batch.add_argument("--resume", action="store_true",
                       help="skip runs that already succeeded with the same notebook and "
                       "parameters (from results.jsonl)")
    batch.add_argument("--executor", choices=["local", "dask"], default="local",
                       help="local process pool (default) or an existing Dask cluster")
    batch.add_argument("--scheduler", metavar="ADDRESS",
                       help="with --executor dask: the scheduler, e.g. tcp://10.0.0.5:8786")
    batch.add_argument("--progress", choices=["bar", "none"], default="bar",
                       help="progress bar on stderr when it is a terminal (default), or "
                       "none; failures print as they happen either way")
    json_flag(batch)

    render = add("render", cmd_render, "the training build: execute the playbook's notebooks "
                 "against the emulator and write a static HTML site")
    render.add_argument("--output", default="output/site",
                        help="folder for the site (default output/site)")
    render.add_argument("--timeout", type=_seconds, default=600.0,
                        help="seconds per cell (default 600)")
    return parser


def _log_debug_to_stderr() -> None:
    """The package's own loggers at DEBUG, through a redacting handler.

    Only ``atlassian_playbook.*``: httpcore's DEBUG records carry raw headers (a redirect's
    ``Location`` holds the authorization code), so the root logger stays where it is, and the
    handler redacts whatever reaches it anyway.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    package = logging.getLogger("atlassian_playbook")
    package.setLevel(logging.DEBUG)
    package.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug or os.environ.get("ATLASSIAN_PLAYBOOK_DEBUG"):
        _log_debug_to_stderr()
    try:
        _warn_unknown_settings(args)
        code = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # `atlassian-playbook scopes list --json | head`: the reader has what it wanted.
        # Python's advice: point stdout at devnull so the exit-time flush stays quiet too.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except PlaybookError as error:
        print(redact(error.one_line()), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("error: interrupted  hint: run the command again", file=sys.stderr)
        return 130
    except Exception as error:
        if isinstance(error, OSError) and error.errno in _DISK_ERRORS:  # the machine, not us
            where = f" ({error.filename})" if error.filename else ""
            print(redact(f"error: {error.strerror}{where}  hint: {_DISK_ERRORS[error.errno]}, "
                         "then run the command again"), file=sys.stderr)
            return EXIT_FAILED
        if args.debug:  # a bug of ours: still one line, still redacted
            raise
        print(
            redact(f"error: unexpected {type(error).__name__}: {error}  "
                   "hint: run again with --debug and report it"),
            file=sys.stderr,
        )
        return EXIT_FAILED
