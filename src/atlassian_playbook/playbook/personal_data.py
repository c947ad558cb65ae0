"""Notebook 09: one cycle of the personal data reporting API for the accounts the app stores."""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from ..errors import PlaybookError
from ..reporting import report_accounts_cycle
from ._results import StepResult, step
from .rehearsal import Rehearsals
from .session import Session, opt, words

__all__ = ["personal_data_report", "REPORT_PATH", "TEST_ACCOUNTS"]

_REPORTING_SCOPE = "report:personal-data"
REPORT_PATH = "/app/report-accounts/"
# Atlassian's documented test accounts for the personal data reporting API (FACTS.md).
TEST_ACCOUNTS = {
    "5be24ad8b1653240376955d2": "active test account",
    "5be24ba3f91c106033269289": "closed test account",
}


class _FirstReportRateLimited:
    """The API client, with the server told to answer the first report request 429 (with
    Retry-After) just before it is sent: a rehearsal of Atlassian's rate limit. (Armed only
    when a report is sent: a cycle that sends nothing leaves no fault behind.)"""

    def __init__(self, api, stage: Rehearsals) -> None:
        self._api, self._stage, self._armed = api, stage, True

    def report_accounts(self, accounts):
        if self._armed:
            self._armed = False
            self._stage.rate_limit_next(REPORT_PATH, retry_after=0.5)
        return self._api.report_accounts(accounts)


def _times(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _accounts(session: Session, account_ids, include_test_accounts: bool) -> dict[str, tuple]:
    """Each account the app stores, in order: ``(which, updatedAt)``.

    The token store's accounts (the copy taken at the last login or refresh), those the world
    of the embedded emulator says the app stores (its ``stored_accounts``, each with the time
    of its copy), ``account_ids`` (a copy taken now) and, with ``include_test_accounts``,
    Atlassian's two test accounts.
    """
    store, client = session.target.store, session.settings.client_id
    now = time.time()
    found: dict[str, tuple] = {}
    for entry in store.list():
        if entry.client_id == client and entry.account_id:
            found.setdefault(entry.account_id, ("stored (token store)", _stamp(entry.updated_at)))
    emulator = session.target.emulator
    for kept in emulator.stored_accounts if emulator is not None else ():
        found.setdefault(kept["account_id"],
                         (f"stored (copy of {kept['copied_at'][:10]})", kept["copied_at"]))
    for account in words(account_ids):
        found.setdefault(account, ("stored", _stamp(now)))
    for account, which in (TEST_ACCOUNTS.items() if include_test_accounts else ()):
        found.setdefault(account, (which, _stamp(now)))
    return found


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(seconds))


def _skipped_without_scope(record_as: str, require: bool, accounts: dict[str, tuple],
                           repeat: bool) -> StepResult:
    message = (
        f"This connection was not granted {_REPORTING_SCOPE}, so it cannot call the "
        "personal data reporting API."
    )
    hint = (
        "If the app stores personal data: add the Personal data reporting API on the "
        f"console's Permissions tab, add {_REPORTING_SCOPE} in 03-select-scopes (the "
        "merge preset has it), and log in again in 04."
    )
    result = StepResult(record_as, {"status": "skipped", "reason": message, "hint": hint,
                                    "would_report": list(accounts)})
    if require:
        result.error = PlaybookError(message, hint)
        return result
    if repeat:
        return result.say("Nothing to repeat: no cycle ran above, so no account was reported.")
    result.say(
        f"**Skipped.** {message} {hint} An app that stores no personal data (an "
        "account id alone is not, per Atlassian staff) does not need it."
    )
    if accounts:
        result.say(
            "With the scope, one request (`POST /app/report-accounts/`) would carry these "
            f"{_times(len(accounts), 'account')}, each with the time the app copied its data:"
        ).table([{"account": a, "which": which, "updatedAt": since}
                 for a, (which, since) in accounts.items()], ["account", "which", "updatedAt"])
    return result


@step()
def personal_data_report(
    session: Session,
    *,
    account_ids: str | Sequence[str] = (),
    include_test_accounts: bool = True,
    rehearse_rate_limit: bool = True,
    require: bool = False,
    account_id: str | None = None,
    record_as: str = "personal_data",
    repeat: bool = False,
) -> StepResult:
    """One reporting cycle for the account ids the app stores, with the action for each.

    The accounts are those of the token store (this client), any ``account_ids`` given and,
    with ``include_test_accounts``, Atlassian's two documented test accounts (so every answer
    shows up). ``rehearse_rate_limit`` (emulator only) has the first request answered 429 with
    ``Retry-After``, to show the client waiting and sending the batch again. When the
    connection was not granted ``report:personal-data`` the step is explained and skipped
    (recorded as ``skipped``), unless ``require``: then it fails.
    Accounts reported within the ``Cycle-Period`` are skipped (state in ``.playbook/``).
    ``repeat``: this is the run again within the period (a skipped one then only says so).
    """
    store = session.target.store
    entry = store.get(session.settings.client_id, opt(account_id))
    accounts = _accounts(session, account_ids, include_test_accounts)
    if _REPORTING_SCOPE not in entry.tokens.scopes:
        return _skipped_without_scope(record_as, require, accounts, repeat)
    ids = list(accounts)
    if not ids:
        return StepResult(record_as, {"status": "nothing to report", "reported": []}).say(
            "No stored account ids to report (this connection did not ask for read:me)."
        )
    stage = session.rehearsals
    counting = not stage.unavailable  # the emulator's request log says what it answered
    rehearsing = rehearse_rate_limit and counting
    answers = stage.answers("POST", REPORT_PATH) if counting else nullcontext([])
    with answers as statuses, session.target.api_client(
        account_id=entry.account_id
    ) as api:
        outcome = report_accounts_cycle(
            _FirstReportRateLimited(api, stage) if rehearsing else api,
            [(a, accounts[a][1]) for a in ids],
            cycle_state_path=session.state_dir / "reporting-cycle.json",
        )
    data: dict[str, Any] = {
        "status": "reported" if outcome.reported else "skipped within cycle",
        **outcome.to_dict(),
    }
    result = StepResult(record_as, data)
    if counting:
        data["rate_limited"] = statuses.count(429)
        if data["rate_limited"] and outcome.requests:
            result.say(
                f"The emulator answered **429** {_times(data['rate_limited'], 'time')} with "
                "`Retry-After`: the client waited that long and sent the batch again, as "
                "an app must."
            )
    elif rehearse_rate_limit:
        data["rate_limit_rehearsal"] = {"status": "skipped", "reason": stage.unavailable}
        result.say(
            f"_Rate-limit rehearsal skipped ({stage.unavailable}): the emulator would answer "
            "the first report 429 with `Retry-After`._"
        )

    def answer(a: str) -> str:
        if a in outcome.closed:
            return "closed"
        if a in outcome.updated:
            return "updated"
        if a in outcome.skipped:
            return "not sent: reported within the Cycle-Period"
        return "no change (204 or not listed)"

    result.table(
        [
            {
                "account": a,
                "which": accounts[a][0],
                "answer": answer(a),
                "what to do": outcome.actions.get(a, "nothing"),
            }
            for a in ids
        ],
        ["account", "which", "answer", "what to do"],
    )
    due = outcome.next_due.strftime("%Y-%m-%d %H:%M UTC") if outcome.next_due else "now"
    return result.say(
        f"{_times(outcome.requests, 'request')} sent. Cycle-Period `{data['cycle_period']}`: "
        f"the next report of these accounts is due {due}."
    )
