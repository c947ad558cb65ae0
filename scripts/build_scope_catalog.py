"""Build ``src/atlassian_playbook/data/scopes.json`` from the extracted scope sources.

The package ships the catalog as data, not code, so the notebooks, the CLI and the emulator all
read the same table. The sources are Atlassian's own OpenAPI documents, extracted into
``/work/shared/atlassian/scopes/*.json`` (each names its repository, commit and path), plus
``extra.json`` for the scopes those documents lack (identity, ``offline_access``, Jira Service
Management, personal data reporting). Output is deterministic: rerunning on the same sources
gives a byte-identical file, so a diff shows exactly what Atlassian changed.

Usage::

    .venv/bin/python scripts/build_scope_catalog.py [--sources DIR] [--output FILE] [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCES = Path("/work/shared/atlassian/scopes")
DEFAULT_OUTPUT = ROOT / "src" / "atlassian_playbook" / "data" / "scopes.json"

# Read in this order: the first non-empty description of a scope wins.
SOURCE_FILES = ("jira-platform", "jira-software", "confluence-v1", "confluence-v2", "extra")

# Paths in confluence-v2.json are relative to its server, https://{your-domain}/wiki/api/v2.
PATH_PREFIX = {"confluence-v2": "/wiki/api/v2"}

# The product each source's operations belong to (decides the gateway prefix).
SOURCE_PRODUCT = {
    "jira-platform": "jira",
    "jira-software": "jira",
    "confluence-v1": "confluence",
    "confluence-v2": "confluence",
}

GATEWAY_PREFIX = {
    "jira": "/ex/jira/{cloudid}",
    "confluence": "/ex/confluence/{cloudid}",
    "identity": "",
    "platform": "",
}

# The console's Permissions tab, in the order it lists the APIs (FACTS.md, "The developer console").
CONSOLE_APIS = ("User identity API", "Jira API", "Confluence API", "Personal data reporting API")
API_TO_CONSOLE = {
    "identity": "User identity API",
    "jira": "Jira API",  # Jira platform and Jira Software
    "jsm": "Jira API",  # Jira Service Management scopes are configured under the Jira API too
    "confluence": "Confluence API",
    "platform": "Personal data reporting API",  # except offline_access, see below
}
EXTRA_API = {
    "identity": "identity",
    "personal-data-reporting": "platform",
    "jira-service-management": "jsm",
    "confluence": "confluence",
}

# Operations outside the extracted OpenAPI documents, from FACTS.md. An empty scope list is an
# alternative that any token satisfies (accessible-resources needs a token, not a scope).
EXTRA_OPERATIONS = (
    ("GET", "/me", "identity", [("classic", ["read:me"])]),
    ("GET", "/oauth/token/accessible-resources", "identity", [("classic", [])]),
    ("POST", "/app/report-accounts/", "platform", [("classic", ["report:personal-data"])]),
)

# The catalog's own preset. A partner's documented set lives in its profile
# (src/atlassian_playbook/data/profiles/*.toml), which the registry checks against this catalog
# when it reads the file; adding a partner does not regenerate this file.
PRESETS = {
    "minimal": {
        "description": "What the playbook's verify step calls (config.DEFAULT_SCOPES).",
        "scopes": ["read:me", "read:jira-user", "read:confluence-space.summary", "offline_access"],
    },
}

MAX_ENDPOINTS = 8
METHOD_ORDER = {m: i for i, m in enumerate(("GET", "POST", "PUT", "PATCH", "DELETE"))}

_VERBS = {
    "read": "View",
    "readonly": "View",
    "write": "Create and update",
    "delete": "Delete",
    "manage": "Manage",
    "redact": "Redact",
    "search": "Search",
    "send": "Send",
    "validate": "Validate",
    "report": "Report",
}
_PRODUCTS = {"jira": "Jira", "jira-software": "Jira Software", "confluence": "Confluence"}
_UNCOUNTABLE = ("metadata", "data", "configuration", "software")


def _plural(words: str) -> str:
    if words.endswith("s") or words.endswith(_UNCOUNTABLE):
        return words
    if words.endswith("y") and not words.endswith(("ay", "ey", "oy")):
        return words[:-1] + "ies"
    return words + "s"


def generated_description(name: str) -> str:
    """A one-line description from a granular scope's name, for sources that give none.

    ``delete:attachment:confluence`` -> "Delete attachments in Confluence."
    """
    parts = name.split(":")
    verb = _VERBS.get(parts[0], parts[0].capitalize())
    if len(parts) == 3:
        resource = _plural(parts[1].replace("-", " ").replace(".", " "))
        product = _PRODUCTS.get(parts[2], parts[2].capitalize())
        return f"{verb} {resource} in {product}."
    return f"{verb} {parts[-1].replace('-', ' ')}."


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")


def first_sentence(text: str) -> str:
    sentence = _SENTENCE_END.split(" ".join(text.split()), maxsplit=1)[0].strip()
    return sentence if sentence.endswith((".", "!", "?")) else sentence + "."


def _sort_key_endpoint(endpoint: str) -> tuple:
    method, path = endpoint.split(" ", 1)
    return (path, METHOD_ORDER.get(method, 9), method)


def _sort_key_sample(endpoint: str) -> tuple:
    # A scope's sample endpoints: reads and the shortest paths first, since they are the ones a
    # reader recognises (GET /rest/api/3/myself before POST .../expression/analyse).
    method, path = endpoint.split(" ", 1)
    return (METHOD_ORDER.get(method, 9), path.count("/"), path, method)


def build(sources: Path) -> dict:
    raw = {name: json.loads((sources / f"{name}.json").read_text()) for name in SOURCE_FILES}

    scopes: dict[str, dict] = {}
    for source in SOURCE_FILES:
        for name, info in raw[source]["scopes"].items():
            if source == "extra":
                api = "platform" if name == "offline_access" else EXTRA_API[info["api"]]
            else:
                api = SOURCE_PRODUCT[source]
            entry = scopes.setdefault(name, {"api": api, "kind": info["kind"], "description": None})
            if entry["api"] != api or entry["kind"] != info["kind"]:
                raise SystemExit(f"{name}: {source} disagrees on api or kind with an earlier file")
            if entry["description"] is None and info.get("description"):
                entry["description"] = first_sentence(info["description"])

    operations: dict[str, dict] = {}
    endpoints: dict[str, set[str]] = {name: set() for name in scopes}

    def add_operation(method: str, path: str, product: str, alternatives: list) -> None:
        key = f"{method} {path}"
        if key in operations:
            raise SystemExit(f"duplicate operation {key}")
        seen: set[tuple[str, ...]] = set()
        alts = []
        for kind, scope_list, state in alternatives:
            names = tuple(sorted(set(scope_list)))
            if names in seen:  # e.g. serverInfo lists the empty set twice (Current, Beta)
                continue
            seen.add(names)
            alt: dict = {"kind": kind, "scopes": list(names)}
            if state and state != "Current":
                alt["state"] = state
            alts.append(alt)
            for name in names:
                if name not in scopes:
                    raise SystemExit(f"{key} needs {name}, which no scope dictionary lists")
                endpoints[name].add(f"{method} {GATEWAY_PREFIX[product]}{path}")
        operations[key] = {"product": product, "alternatives": alts}

    for source, product in SOURCE_PRODUCT.items():
        prefix = PATH_PREFIX.get(source, "")
        for op in raw[source]["operations"]:
            alternatives = [
                (kind, alt["scopes"], alt.get("state"))
                for kind in ("classic", "granular")
                for alt in op.get(kind, [])
            ]
            add_operation(op["method"].upper(), prefix + op["path"], product, alternatives)
    for method, path, product, alternatives in EXTRA_OPERATIONS:
        add_operation(method, path, product, [(k, s, None) for k, s in alternatives])

    for name, entry in scopes.items():
        if entry["description"] is None:
            entry["description"] = generated_description(name)
            entry["generated_description"] = True
        entry["console_api"] = None if name == "offline_access" else API_TO_CONSOLE[entry["api"]]
        found = sorted(endpoints[name], key=_sort_key_sample)
        entry["endpoints"] = found[:MAX_ENDPOINTS]
        entry["endpoint_count"] = len(found)

    for preset, spec in PRESETS.items():
        for name in spec["scopes"]:
            if name not in scopes:
                raise SystemExit(f"preset {preset} names {name}, which the catalog lacks")

    return {
        "format": 1,
        "about": "Atlassian OAuth 2.0 (3LO) scope catalog, generated by "
        "scripts/build_scope_catalog.py; do not edit by hand.",
        "sources": {name: raw[name].get("source", {}) for name in SOURCE_FILES},
        "console_apis": list(CONSOLE_APIS),
        "gateway_prefix": GATEWAY_PREFIX,
        "presets": PRESETS,
        "scopes": dict(sorted(scopes.items())),
        "operations": dict(sorted(operations.items(), key=lambda kv: _sort_key_endpoint(kv[0]))),
    }


def render(catalog: dict) -> str:
    """One line per scope and per operation: small, and diffs read well."""

    def compact(value) -> str:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    lines = ["{"]
    items = list(catalog.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if key in ("scopes", "operations", "presets", "sources"):
            lines.append(f"{json.dumps(key)}:{{")
            inner = list(value.items())
            for j, (name, entry) in enumerate(inner):
                inner_comma = "," if j < len(inner) - 1 else ""
                lines.append(f"{json.dumps(name)}:{compact(entry)}{inner_comma}")
            lines.append("}" + comma)
        else:
            lines.append(f"{json.dumps(key)}:{compact(value)}{comma}")
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
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    size = len(text.encode())
    print(f"wrote {args.output} ({size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
