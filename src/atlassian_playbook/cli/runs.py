"""The commands that run notebooks: `init`, `demo`, `batch`, `render`."""

from __future__ import annotations

from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    Add,
    JsonFlag,
    positive_count,
    positive_seconds,
    print_json,
)


def cmd_init(args) -> int:
    from ..scaffold import init_workspace

    print(init_workspace(args.folder).to_text())
    return EXIT_OK


def cmd_demo(args) -> int:
    from ..demo import run_demo

    return run_demo(output_dir=args.output, env_file=args.env_file)


def cmd_batch(args) -> int:
    from pathlib import Path

    from ..batch import plan_from_store, run_batch
    from ..batch.plan import PlanError, load_plan

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
        announce_workspaces(plan)
    summary = run_batch(
        plan, output_dir=args.output, workers=args.workers, timeout=args.timeout,
        executor=args.executor, scheduler=args.scheduler, resume=args.resume,
        progress="none" if args.json else args.progress, max_runs=args.max_runs,
    )
    if args.json:
        print_json(summary.to_dict())
    else:
        print(summary.to_text())
    return summary.exit_code


def announce_workspaces(plan) -> None:
    """A batch's first lines: which Atlassian each workspace of the plan talks to."""
    from pathlib import Path

    from ..config import load_workspace_settings
    from ..errors import ConfigError
    from ..target import describe_settings

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
    from ..profiles import profile_names
    from ..render import render_playbook, render_site

    print("Target: the embedded Atlassian emulator, in a scratch workspace (the training build "
          "never uses .env's credentials or tokens)", flush=True)
    if args.profile == "all":  # one site per bundled profile, each in its own folder
        result = render_site(args.output, profile_names(), timeout=args.timeout)
    else:
        result = render_playbook(args.output, profile=args.profile, timeout=args.timeout)
    print(result.to_text())
    return EXIT_OK if result.ok else EXIT_FAILED


def register(add: Add, json_flag: JsonFlag) -> None:
    """Add this module's commands to the parser."""
    from ..batch.plan import DEFAULT_MAX_RUNS  # light: the batch engine loads when it runs
    from ..profiles import DEFAULT_PROFILE, profile_names  # lists file names, parses nothing

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
                       "workspace and account_id (default 11-health-check.ipynb)")
    batch.add_argument("--output", help="batch folder (default output/batch/<plan name>/)")
    batch.add_argument("--workers", type=positive_count,
                       help="runs at once (default: CPU count; dask: the cluster's threads)")
    batch.add_argument("--timeout", type=positive_seconds,
                       help="seconds per run (default: the plan's, else 600)")
    batch.add_argument("--max-runs", type=positive_count, default=DEFAULT_MAX_RUNS, metavar="N",
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
                       help="bar (default): a progress bar on stderr when it is a terminal, "
                       "each failure printed as it happens; none: quiet until the summary, "
                       "which lists every failure")
    json_flag(batch)

    render = add("render", cmd_render, "the training build: execute the playbook's notebooks "
                 "against the emulator and write a static HTML site")
    render.add_argument("--output", default="output/site",
                        help="folder for the site (default output/site)")
    render.add_argument("--timeout", type=positive_seconds, default=600.0,
                        help="seconds per cell (default 600)")
    render.add_argument("--profile", choices=[*profile_names(), "all"], default=DEFAULT_PROFILE,
                        help=f"whose story the site tells (default {DEFAULT_PROFILE}); all: one "
                        "site per bundled profile, each in its own folder, under an index that "
                        "switches between them")
