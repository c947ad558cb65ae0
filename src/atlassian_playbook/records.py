"""Values a notebook hands back to whoever ran it (a test, the batch runner, ``make demo``).

A notebook calls :func:`record`; the value travels as a display output with its own MIME type,
so it is saved in the executed ``.ipynb`` and read back with :func:`read_records` — the
scrapbook idea without the dependency. Values are redacted before they are displayed.
"""

from __future__ import annotations

import json
from typing import Any

from .redact import redact

__all__ = ["RECORD_MIME", "record", "read_records"]

RECORD_MIME = "application/vnd.atlassian-playbook.record+json"


def record(name: str, value: Any) -> None:
    """Save ``value`` (JSON-able; secrets masked) under ``name`` in this notebook's outputs."""
    from IPython.display import display

    safe = json.loads(redact(json.dumps(value, default=str)))
    # An empty text/plain: front ends that do not know the record type show nothing.
    display({RECORD_MIME: {"name": name, "value": safe}, "text/plain": ""}, raw=True)


def read_records(notebook) -> dict[str, Any]:
    """Every recorded value of an executed notebook (an nbformat node or a parsed dict)."""
    records: dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get(RECORD_MIME)
            if data:
                records[data["name"]] = data["value"]
    return records
