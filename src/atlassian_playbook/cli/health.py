"""`health`: every stored connection refreshed and verified in process, for fleets.

``batch --from-store`` runs notebook 11 once per connection, each in a kernel of its own: about
a second per connection for tens of milliseconds of work. ``health`` runs the notebook's own
check in threads instead (:mod:`..batch.fleet`), writes the same ``summary.json`` and
``summary.html``, and runs notebook 11 only for the connections that failed, so each failure
has its executed notebook to read.
"""

from __future__ import annotations

from ._common import Add, JsonFlag, positive_count, print_json


def cmd_health(args) -> int:
    import sys
    from pathlib import Path

    from ..batch.fleet import health_plan, run_health
    from ..batch.progress import TerminalProgress
    from .runs import announce_workspaces

    workspaces = args.workspace or [str(Path(args.env_file).parent)]
    quiet = args.json or args.progress == "none"
    plan = health_plan(workspaces, refresh_webhooks=args.refresh_webhooks)
    if not args.json:
        announce_workspaces(plan)

    def pages_start(count: int) -> None:
        if not args.json:
            print(f"{count} connection(s) failed: running notebook 11 for each, so each "
                  "failure has a page to read", file=sys.stderr, flush=True)

    # The pages' bar prints no failure: the checks' bar printed each one, numbered as in
    # the summary (the pages' batch numbers its runs from 0).
    checks = "none" if quiet else TerminalProgress(desc="health")
    pages = "none" if quiet else TerminalProgress(desc="notebook pages", failures=False)
    summary = run_health(
        workspaces, output_dir=args.output or Path("output") / "health",
        workers=args.workers, refresh_webhooks=args.refresh_webhooks,
        progress=checks, pages_progress=pages, on_pages=pages_start, plan=plan,
    )
    if args.json:
        print_json(summary.to_dict())
        return summary.exit_code
    text = summary.to_text().splitlines()
    links = [f"  notebook page of run {r.index}: {r.output}" for r in summary.failed
             if r.output and Path(r.output).exists()]
    print("\n".join([*text[:-1], *links, text[-1]]))
    return summary.exit_code


def register(add: Add, json_flag: JsonFlag) -> None:
    """Add this module's command to the parser."""
    health = add("health", cmd_health, "refresh and verify every stored connection in "
                 "process (no kernel), with batch's summary; notebook 11 runs only for those "
                 "that failed (exit 1 when one did)")
    health.add_argument("--from-store", action="store_true",
                        help="check every token-store entry of the workspaces (what health "
                        "always does; accepted as `batch --from-store` spells it)")
    health.add_argument("--workspace", action="append", metavar="DIR",
                        help="a workspace (.env and .playbook/); repeat for several "
                        "(default: the folder of --env-file)")
    health.add_argument("--workers", type=positive_count, metavar="N",
                        help="checks at once, in threads (default 4; 1 when every workspace "
                        "runs on its embedded emulator, which shares this process's CPU; "
                        "against Atlassian, where a check mostly waits on HTTP, more can pay "
                        "off); notebook pages run on at most the CPU count")
    health.add_argument("--output", help="folder for summary.json, summary.html and the "
                        "failed connections' notebooks/ (default output/health/)")
    health.add_argument("--refresh-webhooks", action="store_true",
                        help="refresh the webhooks that expire within 7 days (else they are "
                        "a warning)")
    health.add_argument("--progress", choices=["bar", "none"], default="bar",
                        help="progress bar on stderr when it is a terminal, failures printed "
                        "as they happen (default), or none")
    json_flag(health)
