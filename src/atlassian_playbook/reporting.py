"""The personal data reporting cycle (FACTS.md, "Personal data reporting").

An app that stores personal data reports the account ids it holds to
``POST /app/report-accounts/`` (at most 90 per request) and acts on the answer: ``closed``
means erase the person's data, ``updated`` means refresh or erase the stored copy, 204 means
nothing to do. The ``Cycle-Period`` response header (ISO 8601 duration, default ``P7D``) says
how often an account may be reported; with a state file, a second run within the period skips
the accounts already reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ._files import atomic_write_json, file_lock, read_json
from .api import MAX_REPORT_ACCOUNTS, ApiClient
from .errors import PlaybookError
from .redact import get_logger

__all__ = [
    "ReportOutcome",
    "report_accounts_cycle",
    "parse_duration",
    "format_updated_at",
    "DEFAULT_CYCLE_PERIOD",
    "ACTIONS",
]

log = get_logger(__name__)

DEFAULT_CYCLE_PERIOD = "P7D"
# What the app must do for each status the reporting API returns.
ACTIONS = {"closed": "erase", "updated": "refresh or erase"}
STATE_VERSION = 1

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+(?:\.\d+)?)Y)?(?:(?P<months>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: str) -> timedelta:
    """An ISO 8601 duration (``P7D``, ``PT12H``, ``P1DT30M``, ``P2W``) as a timedelta.

    Years and months have no fixed length; they count as 365 and 30 days, which is enough for
    a reporting period. Raises ``ValueError`` for anything else.
    """
    match = _DURATION.match((value or "").strip().upper())
    if not match:
        raise ValueError(f"not an ISO 8601 duration: {value!r}")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return timedelta(
        days=parts.get("years", 0) * 365
        + parts.get("months", 0) * 30
        + parts.get("weeks", 0) * 7
        + parts.get("days", 0),
        hours=parts.get("hours", 0),
        minutes=parts.get("minutes", 0),
        seconds=parts.get("seconds", 0),
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parse_time(value: str) -> datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return _utc(datetime.fromisoformat(text))


def format_updated_at(value: datetime | str) -> str:
    """The ``updatedAt`` form the API documents: ``2017-05-12T00:00:00.000Z`` (UTC).

    A naive datetime is taken as UTC. A string is checked and normalised the same way.
    """
    if isinstance(value, str):
        try:
            value = _parse_time(value)
        except ValueError:
            raise PlaybookError(
                f"updatedAt {value!r} is not an ISO 8601 time.",
                "Pass a datetime or a string like 2017-05-12T00:00:00.000Z.",
            ) from None
    value = _utc(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


@dataclass
class ReportOutcome:
    """What one cycle found and what the app must do now.

    ``actions`` maps each account id to ``"erase"`` (closed) or ``"refresh or erase"``
    (updated); ``skipped`` were reported within the cycle period and not sent again;
    ``next_due`` is when the earliest of the known accounts may be reported again.
    """

    closed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reported: list[str] = field(default_factory=list)
    requests: int = 0
    cycle_period: str = DEFAULT_CYCLE_PERIOD
    next_due: datetime | None = None

    @property
    def actions(self) -> dict[str, str]:
        out = {account: ACTIONS["closed"] for account in self.closed}
        out.update({account: ACTIONS["updated"] for account in self.updated})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "closed": list(self.closed),
            "updated": list(self.updated),
            "skipped": list(self.skipped),
            "reported": list(self.reported),
            "requests": self.requests,
            "actions": self.actions,
            "cycle_period": self.cycle_period,
            "next_due": self.next_due.isoformat() if self.next_due else None,
        }


def _period(value: str | None) -> tuple[str, timedelta]:
    if value:
        try:
            return value, parse_duration(value)
        except ValueError:
            log.warning(
                "ignoring unparseable Cycle-Period %r; using %s", value, DEFAULT_CYCLE_PERIOD
            )
    return DEFAULT_CYCLE_PERIOD, parse_duration(DEFAULT_CYCLE_PERIOD)


def _load_state(path: Path | None) -> dict[str, Any]:
    state = read_json(path, default=None) if path is not None else None
    if not isinstance(state, dict) or not isinstance(state.get("accounts"), dict):
        state = {"version": STATE_VERSION, "cycle_period": None, "accounts": {}}
    return state


def report_accounts_cycle(
    api: ApiClient,
    accounts: Iterable[tuple[str, datetime | str]],
    *,
    cycle_state_path: str | Path | None = None,
    now: datetime | None = None,
) -> ReportOutcome:
    """Report ``(account_id, updated_at)`` pairs in batches of at most 90 and collect actions.

    With ``cycle_state_path`` the time each account was last reported and the server's
    ``Cycle-Period`` are kept in that file (0600, written after every batch, under a file
    lock), and accounts reported less than a period ago are skipped. ``now`` is for tests.
    429 answers are waited out by the :class:`ApiClient`; an error mid-cycle keeps the batches
    already reported in the state file.
    """
    now = _utc(now or datetime.now(UTC))
    path = Path(cycle_state_path) if cycle_state_path is not None else None

    latest: dict[str, str] = {}
    for account_id, updated_at in accounts:
        account_id = str(account_id or "").strip()
        if not account_id:
            raise PlaybookError(
                "An account to report has an empty account id.",
                "Report the Atlassian account ids (e.g. 5be24ad8b1653240376955d2) you store.",
            )
        latest[account_id] = format_updated_at(updated_at)

    lock = file_lock(path) if path is not None else None
    if lock is not None:
        lock.acquire()
    try:
        state = _load_state(path)
        cycle_period, period = _period(state.get("cycle_period"))
        outcome = ReportOutcome(cycle_period=cycle_period)

        due: list[str] = []
        for account_id in latest:
            last = state["accounts"].get(account_id)
            if last is not None and _parse_time(last) + period > now:
                outcome.skipped.append(account_id)
            else:
                due.append(account_id)

        for start in range(0, len(due), MAX_REPORT_ACCOUNTS):
            batch = due[start : start + MAX_REPORT_ACCOUNTS]
            result = api.report_accounts([{"accountId": a, "updatedAt": latest[a]} for a in batch])
            outcome.requests += 1
            outcome.reported.extend(batch)
            outcome.closed.extend(a for a in result.closed if a not in outcome.closed)
            outcome.updated.extend(a for a in result.updated if a not in outcome.updated)
            if result.cycle_period:
                state["cycle_period"] = result.cycle_period
                outcome.cycle_period, period = _period(result.cycle_period)
            stamp = now.isoformat()
            for account_id in batch:
                state["accounts"][account_id] = stamp
            if path is not None:
                atomic_write_json(path, state)

        known = [_parse_time(state["accounts"][a]) for a in latest if a in state["accounts"]]
        if known:
            outcome.next_due = min(known) + period
        return outcome
    finally:
        if lock is not None:
            lock.release()
