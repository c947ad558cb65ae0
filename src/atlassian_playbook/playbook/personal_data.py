"""Notebook 08: one cycle of the personal data reporting API for the accounts the app stores."""

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


def _skipped_without_scope(record_as: str, require: bool) -> StepResult:
    message = (
        f"This connection was not granted {_REPORTING_SCOPE}, so it cannot call the "
        "personal data reporting API."
    )
    hint = (
        "If the app stores personal data: add the Personal data reporting API on the "
        f"console's Permissions tab, add {_REPORTING_SCOPE} in 03-select-scopes (the "
        "merge preset has it), and log in again in 04."
    )
    result = StepResult(record_as, {"status": "skipped", "reason": message, "hint": hint})
    if require:
        result.error = PlaybookError(message, hint)
        return result
    return result.say(
        f"**Skipped.** {message} {hint} An app that stores no personal data (an "
        "account id alone is not, per Atlassian staff) does not need it."
    )


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
) -> StepResult:
    """One reporting cycle for the account ids the app stores, with the action for each.

    The accounts are those of the token store (this client), any ``account_ids`` given and,
    with ``include_test_accounts``, Atlassian's two documented test accounts (so every answer
    shows up). ``rehearse_rate_limit`` (emulator only) has the first request answered 429 with
    ``Retry-After``, to show the client waiting and sending the batch again. When the
    connection was not granted ``report:personal-data`` the step is explained and skipped
    (recorded as ``skipped``), unless ``require``: then it fails.
    Accounts reported within the ``Cycle-Period`` are skipped (state in ``.playbook/``).
    """
    store = session.target.store
    entry = store.get(session.settings.client_id, opt(account_id))
    if _REPORTING_SCOPE not in entry.tokens.scopes:
        return _skipped_without_scope(record_as, require)

    stored = [
        e.account_id
        for e in store.list()
        if e.client_id == session.settings.client_id and e.account_id
    ]
    tests = list(TEST_ACCOUNTS) if include_test_accounts else []
    ids = list(dict.fromkeys([*stored, *words(account_ids), *tests]))
    if not ids:
        return StepResult(record_as, {"status": "nothing to report", "reported": []}).say(
            "No stored account ids to report (this connection did not ask for read:me)."
        )
    # updatedAt: when our copy of each person's data was taken; here, the last login/refresh.
    since = {
        a: (e.updated_at if (e := store.find(session.settings.client_id, a)) else time.time())
        for a in ids
    }
    stage = session.rehearsals
    counting = not stage.unavailable  # the emulator's request log says what it answered
    rehearsing = rehearse_rate_limit and counting
    answers = stage.answers("POST", REPORT_PATH) if counting else nullcontext([])
    with answers as statuses, session.target.api_client(
        account_id=entry.account_id
    ) as api:
        outcome = report_accounts_cycle(
            _FirstReportRateLimited(api, stage) if rehearsing else api,
            [(a, time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(since[a]))) for a in ids],
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
                f"The emulator answered **429** {data['rate_limited']} time(s) with "
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
                "which": TEST_ACCOUNTS.get(a, "stored"),
                "answer": answer(a),
                "what to do": outcome.actions.get(a, "nothing"),
            }
            for a in ids
        ],
        ["account", "which", "answer", "what to do"],
    )
    due = outcome.next_due.strftime("%Y-%m-%d %H:%M UTC") if outcome.next_due else "now"
    return result.say(
        f"{outcome.requests} request(s). Cycle-Period `{data['cycle_period']}`: the next "
        f"report of these accounts is due {due}."
    )
