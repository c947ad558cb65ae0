"""The package's modules import each other without a cycle.

Every import statement counts, wherever it stands (module level, ``if TYPE_CHECKING:``, inside
a function): a cycle hidden behind a lazy import is still two modules that cannot be
understood, tested or moved one without the other (``tokens`` and ``oauth`` were such a pair
until ``StoredTokenSource`` took a refresh callable instead of an ``OAuthClient``). An import
of the parent package itself (``from . import scopes`` names the submodule) is not an edge:
a submodule always runs its package's ``__init__`` first.

The graph is read in a process of its own: CPython 3.11's ``ast.parse`` can fail with
"AST constructor recursion depth mismatch" while another thread of the same process compiles
(seen once under xdist, with the emulator's threads running).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import atlassian_playbook

PACKAGE = Path(atlassian_playbook.__file__).parent


def _module_name(package: Path, path: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (by any import statement in it)."""
    files = {_module_name(package, path): path for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges |= {alias.name for alias in node.names if alias.name in files}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    stem = here[: len(here) - node.level + 1]
                    base = ".".join(stem + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                named = {f"{base}.{a.name}" for a in node.names} & files.keys()
                edges |= named or ({base} & files.keys())
        edges.discard(module)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def import_graph_apart(package: Path = PACKAGE) -> dict[str, set[str]]:
    """:func:`import_graph`, computed by this file run as a script in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, __file__, str(package)], capture_output=True, text=True, check=True
    )
    return {module: set(edges) for module, edges in json.loads(done.stdout).items()}


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph_apart()) == []


def test_the_check_finds_a_cycle_behind_type_checking(tmp_path):
    # The shape tokens/oauth had: one import at module level, the other under TYPE_CHECKING.
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import thing\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import other\n"
    )
    (package / "c.py").write_text("from . import a\n")
    assert cycles(import_graph_apart(package)) == [["pkg.a", "pkg.b"]]


def test_the_token_store_does_not_import_the_token_endpoint():
    graph = import_graph_apart()
    token_modules = [m for m in graph if m.split(".")[:2] == ["atlassian_playbook", "tokens"]]
    assert len(token_modules) > 1  # the package and its parts
    for module in token_modules:
        assert "atlassian_playbook.oauth" not in graph[module], module
    assert "atlassian_playbook.tokens" in graph["atlassian_playbook.oauth"]


if __name__ == "__main__":
    print(json.dumps({m: sorted(e) for m, e in import_graph(Path(sys.argv[1])).items()}))
