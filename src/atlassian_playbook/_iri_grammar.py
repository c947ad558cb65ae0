"""Build the ``rfc3987_syntax`` grammar when an IRI is first checked, not at ``import jsonschema``.

jsonschema registers its ``iri`` and ``iri-reference`` format checkers at import whenever
``rfc3987_syntax`` is installed (jupyter-events needs it, so JupyterLab brings it), and importing
that package compiles a Lark Earley grammar: about 1.3 s in every process that imports
nbformat, and so papermill and nbclient. nbformat validates notebooks against draft-4 schemas
with no format checker, so a process that only runs notebooks never checks an IRI.

:func:`defer` puts a stand-in in ``sys.modules`` whose ``is_valid_syntax`` (the one name
jsonschema takes from the package) imports the real package on its first call. The checkers
are still registered and check exactly what they checked before; the grammar is built when
one of them first runs, if ever. Any other name is looked up on the real package, loaded then.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

__all__ = ["defer", "PACKAGE"]

PACKAGE = "rfc3987_syntax"
_lock = threading.Lock()


def defer() -> bool:
    """Defer the grammar in this process; True if the stand-in is (now) in place.

    Call it before anything imports jsonschema. It does nothing once jsonschema or the package
    is imported (too late: the grammar is built), or when the package is not installed.
    """
    present = sys.modules.get(PACKAGE)
    if present is not None:
        return bool(getattr(present, "__deferred__", False))
    if "jsonschema" in sys.modules or importlib.util.find_spec(PACKAGE) is None:
        return False
    stand_in = types.ModuleType(PACKAGE, "Stand-in: the real package is imported on first use.")
    stand_in.__deferred__ = True  # type: ignore[attr-defined]
    stand_in.is_valid_syntax = _is_valid_syntax  # type: ignore[attr-defined]
    stand_in.__getattr__ = _attribute  # type: ignore[attr-defined]
    sys.modules[PACKAGE] = stand_in
    return True


def _real() -> types.ModuleType:
    with _lock:
        current = sys.modules.get(PACKAGE)
        if current is not None and not getattr(current, "__deferred__", False):
            return current
        sys.modules.pop(PACKAGE, None)
        try:
            return importlib.import_module(PACKAGE)
        except BaseException:
            if current is not None:
                sys.modules[PACKAGE] = current
            raise


def _is_valid_syntax(term: str, value: str) -> bool:
    return _real().is_valid_syntax(term, value)


def _attribute(name: str) -> Any:
    if name.startswith("__"):  # introspection (copy, pickle, inspect) must not build it
        raise AttributeError(name)
    return getattr(_real(), name)
