"""`webhooks register|list|refresh|delete`: the app's dynamic Jira webhooks on the connection's
site."""

from __future__ import annotations

from ._common import (
    EXIT_OK,
    Add,
    JsonFlag,
    connect_target,
    print_json,
)


def _site_webhooks(args, target):
    from .. import webhooks

    return webhooks.for_target(target, account_id=args.account, site=args.site)


def cmd_webhooks_register(args) -> int:
    with connect_target(args) as target:
        site = _site_webhooks(args, target)
        hook = site.register(args.url, args.jql, args.events)
        now = site.now()
    if args.json:
        print_json(hook.to_dict(now))
    else:
        print(f"Registered webhook {hook.id}: expires {hook.expires_at:%Y-%m-%d %H:%M} UTC "
              "(30 days; `webhooks refresh` extends it).")
    return EXIT_OK


def cmd_webhooks_list(args) -> int:
    from .. import webhooks

    with connect_target(args) as target:
        site = _site_webhooks(args, target)
        hooks, now = site.list(), site.now()
    if args.json:
        print_json({"webhooks": [h.to_dict(now) for h in hooks],
                     "due_within_7_days": [h.id for h in webhooks.due_within(hooks, now=now)]})
    else:
        print(webhooks.listing_text(hooks, now))
    return EXIT_OK


def cmd_webhooks_refresh(args) -> int:
    with connect_target(args) as target:
        site = _site_webhooks(args, target)
        ids = [h.id for h in site.list()]
        expires = site.refresh(ids)
    if args.json:
        print_json({"refreshed": ids, "expires_at": expires.isoformat()})
    else:
        print(f"Refreshed {len(ids)} webhook(s) ({', '.join(map(str, ids))}): they expire "
              f"{expires:%Y-%m-%d %H:%M} UTC.")
    return EXIT_OK


def cmd_webhooks_delete(args) -> int:
    with connect_target(args) as target:
        _site_webhooks(args, target).delete(args.ids)
    print(f"Deleted webhook(s) {', '.join(map(str, args.ids))} (ids of other apps are ignored).")
    return EXIT_OK


def register(add: Add, json_flag: JsonFlag) -> None:
    """Add this module's commands to the parser."""
    hooks = add("webhooks", None, "the app's dynamic Jira webhooks on the connection's site "
                "(they expire after 30 days unless refreshed)")
    hook_commands = hooks.add_subparsers(dest="webhooks_command", required=True,
                                         metavar="ACTION")  # fmt: skip

    def hook_flags(sub) -> None:
        sub.add_argument("--account", help="account id, when the store holds several")
        sub.add_argument("--site", help="site name, URL or cloud id (default: ATLASSIAN_SITE, "
                         "else the connection's site)")

    register = add("register", cmd_webhooks_register, "register a webhook: a JQL filter and "
                   "events, delivered to the app's webhook URL", hook_commands)
    register.add_argument("--url", required=True, help="the app's webhook URL (one per app)")
    register.add_argument("--jql", required=True, help='e.g. "project = ACME"')
    register.add_argument("--events", required=True, metavar="EVENT[,EVENT...]",
                          help="e.g. jira:issue_created,jira:issue_updated")
    for sub in (register,
                add("list", cmd_webhooks_list, "list the webhooks with their expiry; those "
                    "due within 7 days are marked", hook_commands),
                add("refresh", cmd_webhooks_refresh, "extend every webhook of the app on the "
                    "site by 30 days", hook_commands)):
        hook_flags(sub)
        json_flag(sub)
    delete = add("delete", cmd_webhooks_delete, "delete webhooks by id", hook_commands)
    delete.add_argument("ids", nargs="+", type=int, metavar="ID")
    hook_flags(delete)
