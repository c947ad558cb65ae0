"""The commands before a connection exists: `doctor`, `scopes`, `checklist`, `profiles`."""

from __future__ import annotations

import sys

from ..errors import PlaybookError
from ._common import (
    EXIT_OK,
    Add,
    JsonFlag,
    print_json,
    settings_of,
)


def cmd_doctor(args) -> int:
    from ..doctor import run_doctor

    report = run_doctor(args.env_file, record=args.record)
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.to_text(strict=args.strict))
    return report.exit_code(strict=args.strict)


def cmd_scopes_list(args) -> int:
    from ..scopes import APIS, CONSOLE_APIS, KINDS, list_scopes

    scopes = list_scopes(api=args.api, kind=args.kind)
    if args.json:
        print_json(
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
    from ..scopes import FIND_SCOPES_HINT, catalog, check_scopes, or_list, suggest

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
        print_json({"scopes": list(scopes), "valid": True,
                     "warnings": [{"code": w.code, "message": w.message, "hint": w.hint}
                                  for w in warnings]})
        return EXIT_OK
    print(f"ok: {len(scopes)} known scope(s): {' '.join(scopes)}")
    for warning in warnings:
        print(f"warning: {warning.message}  hint: {warning.hint}")
    return EXIT_OK


def cmd_scopes_for(args) -> int:
    from ..advisor import advise, split_endpoints

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
        print_json(advice.to_dict())
    else:
        print(advice.to_text())
    return EXIT_OK


def cmd_scopes_preset(args) -> int:
    from ..presets import preset

    scopes = preset(args.name, offline_access=True if args.offline_access else None)
    if args.json:
        print_json({"preset": args.name, "scopes": list(scopes)})
    else:
        print(" ".join(scopes))
    return EXIT_OK


def cmd_checklist(args) -> int:
    from ..checklist import build_checklist
    from ..playbook.partners import checklist_inputs
    from ..profiles import resolve_profile

    settings = settings_of(args)
    profile = resolve_profile(args.profile, args.profile_file)
    # As notebook 02: the callback and the scopes chosen in this workspace, else the profile's.
    callback, scopes = checklist_inputs(profile, settings, args.callback_url)
    checklist = build_checklist(profile, app_name=args.app_name, callback_url=callback,
                                scopes=scopes)  # fmt: skip
    if args.json:
        print_json(checklist.to_dict())
    elif args.plain:
        print(checklist.to_plain(), end="")
    else:
        print(checklist.to_text())
    return EXIT_OK


def cmd_profiles_list(args) -> int:
    from ..profiles import get_profile, profile_names

    profiles = [get_profile(name) for name in profile_names()]
    if args.json:
        print_json([p.to_dict() for p in profiles])
        return EXIT_OK
    width = max(len(p.name) for p in profiles)
    for p in profiles:
        callback = p.callback.url or p.callback.shown_as or "yours (ATLASSIAN_REDIRECT_URI)"
        print(f"{p.name:<{width}}  {p.title}; callback: {callback}")
    print(f"{len(profiles)} profiles; your own: checklist --profile-file FILE.toml")
    return EXIT_OK


def cmd_profiles_show(args) -> int:
    from ..profiles import resolve_profile

    if not args.name and not args.file:
        raise PlaybookError("profiles show needs a NAME or --file.",
                            "Run `atlassian-playbook profiles list` for the names.")  # fmt: skip
    profile = resolve_profile(args.name, args.file)
    if args.json:
        print_json(profile.to_dict())
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


def register(add: Add, json_flag: JsonFlag) -> None:
    """Add this module's commands to the parser."""
    from ..profiles import DEFAULT_PROFILE, profile_names  # lists file names, parses nothing

    doctor = add("doctor", cmd_doctor, "check the configuration and that the servers answer")
    doctor.add_argument("--record", metavar="FILE",
                        help="also save the shape of every answer (no values) to FILE, with "
                        "verify's API calls when logged in: attach it to bug reports")
    doctor.add_argument("--strict", action="store_true",
                        help="exit 1 on a warning too (for CI: a missing offline_access)")
    json_flag(doctor)
    # A warning is a working setup that costs later (no refresh token): failing on it would
    # stop `doctor && login` for a deliberate choice, so only --strict does.
    doctor.epilog = ("exit status: 0 when no check failed (warnings, such as a missing "
                     "offline_access, print in the summary but pass); 1 when a check failed, "
                     "or with --strict when a check warned; 2 for a usage error.")

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
