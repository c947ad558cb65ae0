"""What the notebooks call: one function per step of the playbook.

Notebooks hold narrative and one call per step (``import atlassian_playbook.playbook as pb``);
the logic is here, where it is tested, one module per notebook:

========================  ==================================================================
:mod:`.session`           the workspace and its target (:func:`start`), parameter conventions
:mod:`.overview`          01: which Atlassian, what is written where
:mod:`.app`               02: the console checklist, the credentials, the callback
:mod:`.scope_choice`      03: the scopes, saved to ``.env``
:mod:`.token_exchange`    04: consent and the code exchange, the token store, consent traps
:mod:`.verification`      05: what the connection reaches
:mod:`.lifecycle`         06: refresh, reuse of a rotated token, the credentials' lifetimes
:mod:`.handoff`           07: the values to paste into the partner
:mod:`.webhooks`          08: the app's dynamic webhooks, delivered, expired and refreshed
:mod:`.personal_data`     09: the personal data reporting cycle
:mod:`.service_account`   10: a service account's client credentials, verified; vs 3LO
:mod:`.health`            11: refresh and verify, for a batch
:mod:`.partners`          what differs per profile (merge, clerk, custom)
:mod:`.rehearsal`         what only the emulator may be made to do (clock, faults, request log)
:mod:`._results`          the result objects and the :func:`~._results.step` recorder
========================  ==================================================================

Every step returns a :class:`StepResult`: the cell shows it (Markdown, tables, widgets), and
its ``to_dict()`` is already recorded (:func:`~..records.record`) for a test or a batch run. A
failed step shows its result and raises a :class:`~..errors.PlaybookError` (message + hint),
so a headless run stops at the right cell with the hint in its output.

Each widget choice has a parameter that makes the same choice headless, through the same
function: ``completed_steps`` ticks the checklist as its checkboxes do, ``preset``/``scopes``
save what the scope picker's Save button would, ``consent`` decides who answers the consent
screen. The one exception is the client secret: it is never a parameter (papermill writes
parameters into the executed notebook); headless runs read it from ``.env`` or the environment,
where :func:`save_credentials` (the credentials form's Save) puts it.
"""

from ._results import StepResult
from .app import capture_credentials, register_callback, save_credentials, show_checklist
from .handoff import partner_handoff
from .health import health_check
from .lifecycle import Refreshed, demonstrate_reuse, lifecycle_timeline, refresh_tokens
from .overview import overview, sequence
from .personal_data import personal_data_report
from .rehearsal import Rehearsals
from .scope_choice import select_scopes
from .service_account import (
    compare_with_3lo,
    fetch_service_account_token,
    renew_after_expiry,
    service_account_checklist,
    verify_service_account,
)
from .session import Session, start
from .token_exchange import (
    CONSENT_MODES,
    exchange_tokens,
    rehearse_consent_traps,
    show_token_store,
)
from .verification import verify_access
from .webhooks import (
    close_webhooks,
    create_issue_and_watch,
    jump_past_expiry,
    list_webhook_expiry,
    open_webhooks,
    refresh_and_watch,
    register_webhook,
)

__all__ = [
    "open_webhooks",
    "register_webhook",
    "create_issue_and_watch",
    "list_webhook_expiry",
    "jump_past_expiry",
    "refresh_and_watch",
    "close_webhooks",
    "Session",
    "start",
    "overview",
    "sequence",
    "show_checklist",
    "capture_credentials",
    "save_credentials",
    "register_callback",
    "select_scopes",
    "exchange_tokens",
    "show_token_store",
    "rehearse_consent_traps",
    "verify_access",
    "refresh_tokens",
    "demonstrate_reuse",
    "lifecycle_timeline",
    "partner_handoff",
    "personal_data_report",
    "health_check",
    "service_account_checklist",
    "fetch_service_account_token",
    "verify_service_account",
    "renew_after_expiry",
    "compare_with_3lo",
    "CONSENT_MODES",
    "StepResult",
    "Refreshed",
    "Rehearsals",
]
