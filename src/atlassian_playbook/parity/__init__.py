"""Parity with the real Atlassian: record the *shape* of every answer, compare the emulator's.

LocalStack keeps its AWS emulation true with recordings from the real service; this module does
the same for ours. A :class:`Recorder` observes every httpx client the package makes inside
``recorder.recording()`` (through :func:`atlassian_playbook._http.observing`) and keeps, per
request, only what describes the contract: the method, a path template
(``/ex/jira/{cloudid}/rest/api/3/myself``), the status, the response header *names* and, for a
JSON body, its key paths and value types (``$[].id: string``). It keeps no value, not even an
id, so the file a user attaches to a bug report (``doctor --record FILE``) cannot leak anything.

:func:`diff` lists how two records differ; :func:`compare_with_emulator` replays a record
against a fresh emulator (``emulator compare FILE``) and diffs the emulator's shapes with it.
"""

from ._diff import Comparison, Difference, diff
from ._record import Exchange, Record, json_shape, template_path
from ._recorder import Recorder
from ._replay import compare_with_emulator, login_headless, record_read_only_calls

__all__ = [
    "Comparison",
    "Difference",
    "Exchange",
    "Record",
    "Recorder",
    "compare_with_emulator",
    "diff",
    "json_shape",
    "login_headless",
    "record_read_only_calls",
    "template_path",
]
