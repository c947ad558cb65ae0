"""Build ``src/atlassian_playbook/emulator/operations.json``: the scopes each operation the
emulated gateway serves accepts, taken from Atlassian's OpenAPI documents.

The sources are the extracts in ``/work/shared/atlassian/scopes/*.json`` (each names the
repository, commit and path of the OpenAPI document it came from). For every operation in
:data:`SERVED` the output lists its alternatives: each ``classic`` entry and each ``granular``
entry of the source is one alternative, satisfied when all of its scopes are granted on the site.
An entry with no scopes (serverInfo's) means "any scope of the product on the site".

Jira REST v2 is not in the sources: every ``/rest/api/3/...`` operation is also served as
``/rest/api/2/...`` with the v3 operation's requirements (``"mirrors"`` names it).

The emulator reads only this file, never the package's scope catalog, so a catalog bug cannot
hide behind an emulator that shares it. Output is deterministic (``--check`` compares).

Usage::

    .venv/bin/python scripts/build_gateway_operations.py [--sources DIR] [--output FILE] [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCES = Path("/work/shared/atlassian/scopes")
DEFAULT_OUTPUT = ROOT / "src" / "atlassian_playbook" / "emulator" / "operations.json"

# Source file -> (product behind the gateway, prefix of its paths inside /ex/{product}/{cloudid}).
SOURCES = {
    "jira-platform": ("jira", ""),
    "confluence-v1": ("confluence", ""),
    "confluence-v2": ("confluence", "/wiki/api/v2"),  # its paths are relative to /wiki/api/v2
}

# The operations the emulator serves: (source, method, path as the source writes it).
SERVED = (
    ("jira-platform", "GET", "/rest/api/3/myself"),
    ("jira-platform", "GET", "/rest/api/3/serverInfo"),
    ("jira-platform", "GET", "/rest/api/3/project"),
    ("jira-platform", "GET", "/rest/api/3/project/search"),
    ("jira-platform", "GET", "/rest/api/3/project/{projectIdOrKey}"),
    ("jira-platform", "GET", "/rest/api/3/field"),
    ("jira-platform", "GET", "/rest/api/3/search/jql"),
    ("jira-platform", "POST", "/rest/api/3/search/jql"),
    ("jira-platform", "GET", "/rest/api/3/search"),
    ("jira-platform", "POST", "/rest/api/3/search"),
    ("jira-platform", "GET", "/rest/api/3/issue/{issueIdOrKey}"),
    ("jira-platform", "POST", "/rest/api/3/issue"),
    ("jira-platform", "PUT", "/rest/api/3/issue/{issueIdOrKey}"),
    ("jira-platform", "GET", "/rest/api/3/webhook"),
    ("jira-platform", "POST", "/rest/api/3/webhook"),
    ("jira-platform", "DELETE", "/rest/api/3/webhook"),
    ("jira-platform", "GET", "/rest/api/3/webhook/failed"),
    ("jira-platform", "PUT", "/rest/api/3/webhook/refresh"),
    ("confluence-v1", "GET", "/wiki/rest/api/space"),
    ("confluence-v1", "GET", "/wiki/rest/api/user/current"),
    ("confluence-v1", "GET", "/wiki/rest/api/content/search"),
    ("confluence-v1", "GET", "/wiki/rest/api/search"),
    ("confluence-v1", "GET", "/wiki/rest/api/content/{id}"),
    ("confluence-v2", "GET", "/spaces"),
    ("confluence-v2", "GET", "/pages"),
    ("confluence-v2", "GET", "/pages/{id}"),
    ("confluence-v2", "GET", "/spaces/{id}/pages"),
)

JIRA_V3 = "/rest/api/3/"
JIRA_V2 = "/rest/api/2/"


def alternatives(operation: dict) -> tuple[list[dict], bool]:
    """The operation's non-empty alternatives (deduplicated, in source order) and whether an
    empty one ("any scope of the product") is among its entries."""
    found: list[dict] = []
    any_product_scope = False
    seen: set[tuple] = set()
    for kind in ("classic", "granular"):
        for entry in operation.get(kind) or []:
            scopes = sorted(set(entry.get("scopes") or []))
            if not scopes:
                any_product_scope = True
                continue
            if (kind, tuple(scopes)) in seen:
                continue
            seen.add((kind, tuple(scopes)))
            found.append({"kind": kind, "state": entry.get("state", ""), "scopes": scopes})
    return found, any_product_scope


def build(sources: Path) -> dict:
    raw = {}
    for name in SOURCES:
        path = sources / f"{name}.json"
        try:
            raw[name] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SystemExit(f"{path} is missing (use --sources DIR)") from None
    operations = []
    for source, method, path in SERVED:
        product, prefix = SOURCES[source]
        matches = [
            op for op in raw[source]["operations"] if op["method"] == method and op["path"] == path
        ]
        if len(matches) != 1:
            raise SystemExit(f"{source} has {len(matches)} operations {method} {path}, not one")
        spec = matches[0]
        found, any_scope = alternatives(spec)
        if not found and not any_scope:
            raise SystemExit(f"{source} {method} {path} lists no scopes; the emulator cannot "
                             "serve an operation it knows no requirement for")
        entry = {
            "product": product,
            "method": method,
            "path": prefix + path,
            "operationId": spec["operationId"],
            "source": source,
            "alternatives": found,
            "any_product_scope": any_scope,
        }
        operations.append(entry)
        if product == "jira" and path.startswith(JIRA_V3):
            operations.append({
                **entry,
                "path": JIRA_V2 + path.removeprefix(JIRA_V3),
                "mirrors": f"{method} {path}",
            })
    operations.sort(key=lambda op: (op["product"], op["path"], op["method"]))
    return {
        "format": 1,
        "about": "The scopes each operation of the emulated gateway accepts, generated by "
        "scripts/build_gateway_operations.py from Atlassian's OpenAPI documents; do not edit "
        "by hand. Jira REST v2 paths mirror the v3 operation (the v2 document is not in the "
        "sources).",
        "sources": {name: raw[name].get("source", {}) for name in SOURCES},
        "operations": operations,
    }


def render(data: dict) -> str:
    """One line per operation: small, and diffs read well."""

    def compact(value) -> str:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    lines = ["{"]
    for key in ("format", "about", "sources"):
        lines.append(f"{json.dumps(key)}:{compact(data[key])},")
    lines.append('"operations":[')
    ops = data["operations"]
    for index, op in enumerate(ops):
        lines.append(compact(op) + ("," if index < len(ops) - 1 else ""))
    lines.append("]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=Path, default=DEFAULT_SOURCES)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--check", action="store_true", help="fail if the output file is not up to date"
    )
    args = parser.parse_args(argv)
    text = render(build(args.sources))
    json.loads(text)  # the hand-rolled layout must still be valid JSON
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output} ({len(json.loads(text)['operations'])} operations)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
