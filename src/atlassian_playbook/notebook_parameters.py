"""The parameters a notebook runs with are written down: none may be a secret.

papermill writes every parameter into the executed notebook's injected cell, so a secret passed
as one would land on disk in the clear. :func:`check_parameters` is the one rule, applied by
:func:`~atlassian_playbook.execute.run_notebook`, by batch plans before anything runs, and by a
notebook's own session when it starts. It is a module of its own so that a notebook's kernel
applies it without importing the machinery that runs notebooks (kernels, papermill's seam).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import NotebookParameterError

__all__ = ["check_parameters"]

# Parameter names that can only carry a secret. Values are also compared with known secrets.
_SECRET_NAMES = re.compile(
    r"(secret|password|passwd|token|authorization|^code$|auth_code|api_key|apikey)", re.I
)


def check_parameters(parameters: Mapping[str, Any], known_secrets: Iterable[str] = ()) -> None:
    """Refuse a parameter that is, or is named like, a secret.

    papermill writes every parameter into the executed notebook's injected cell, so a secret
    passed this way would land on disk in the clear. Secrets come from .env or the environment.
    """
    known = {s for s in known_secrets if s}
    for name, value in parameters.items():
        if _SECRET_NAMES.search(name) and value not in (None, "", False):
            raise NotebookParameterError(
                f"Parameter {name!r} looks like a secret and was refused.",
            )
        if isinstance(value, str) and value in known:
            raise NotebookParameterError(
                f"The value of parameter {name!r} is a configured secret and was refused."
            )
