"""The emulator-only side of the playbook: what a step may do to the world to show a failure
on purpose.

A rehearsal moves the clock past a deadline, makes the next request fail, reads what the server
answered, or makes an app fail at consent (:mod:`..rehearsals`' traps). Only the embedded
emulator can be told to; against Atlassian none of it may happen (it would revoke a real grant
or make a real app fail), so the same interface answers with why not. A step asks
:attr:`Rehearsals.unavailable` first and, when it is set, returns :meth:`Rehearsals.skip`: a
clear message in the notebook, recorded as ``skipped`` with the reason, never an exception.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import PlaybookError
from ..target import Target
from ._results import StepResult, skipped

if TYPE_CHECKING:
    from ..rehearsals import Rehearsal

__all__ = ["Rehearsals", "EmulatorRehearsals", "NotAvailable", "rehearsals_for"]

_ON_THE_EMULATOR = (
    "Run this notebook against the emulator (no credentials in `.env`) to see it, or read it "
    "in the training site."
)


class Rehearsals(ABC):
    """What a rehearsal may do to the Atlassian a session talks to."""

    @property
    @abstractmethod
    def unavailable(self) -> str | None:
        """Why nothing may be rehearsed here ("Not available against Atlassian"), or None."""

    def skip(self, name: str, why: str, **data: Any) -> StepResult:
        """The result of a rehearsal that cannot run here: ``why`` says what it would do."""
        return skipped(name, f"{self.unavailable}: {why}", hint=_ON_THE_EMULATOR, **data)

    @abstractmethod
    def advance_clock(self, seconds: float) -> None:
        """Move the server's clock forward (expiry, the reuse leeway) without waiting."""

    @abstractmethod
    def rate_limit_next(self, path: str, *, retry_after: float) -> None:
        """Answer the next request to ``path`` with 429 and ``Retry-After``."""

    @abstractmethod
    def answers(self, method: str, path: str) -> AbstractContextManager[list[int]]:
        """A context manager: the statuses the server answered ``method path`` with inside it
        (the list is filled when the block ends)."""

    @abstractmethod
    def consent_traps(self, names: Sequence[str] | None = None) -> list[Rehearsal]:
        """The consent traps (:data:`..rehearsals.REHEARSALS`), each on an app of its own."""


class EmulatorRehearsals(Rehearsals):
    """Rehearsals on the embedded emulator: its clock, its faults, its request log."""

    def __init__(self, target: Target) -> None:
        if target.emulator is None:
            raise ValueError("EmulatorRehearsals needs a target with an embedded emulator.")
        self._target = target
        self._emulator = target.emulator

    @property
    def unavailable(self) -> None:
        return None

    def advance_clock(self, seconds: float) -> None:
        self._emulator.advance_clock(seconds)

    def rate_limit_next(self, path: str, *, retry_after: float) -> None:
        self._emulator.inject_fault(path, status=429, retry_after=retry_after, times=1)

    @contextmanager
    def answers(self, method: str, path: str) -> Iterator[list[int]]:
        log = self._emulator.request_log
        seen = len(log)
        statuses: list[int] = []
        yield statuses
        statuses += [status for m, p, status in log[seen:] if (m, p) == (method, path)]

    def consent_traps(self, names: Sequence[str] | None = None) -> list[Rehearsal]:
        from ..rehearsals import rehearse

        return rehearse(self._target, names)


class NotAvailable(Rehearsals):
    """Against Atlassian (or any server but the embedded emulator): every rehearsal is
    skipped with :attr:`unavailable`; calling one anyway is a bug in the step, and says so."""

    def __init__(self, target: Target) -> None:
        where = "Atlassian" if target.kind == "atlassian" else target.settings.auth_base_url
        self._reason = f"Not available against {where}"

    @property
    def unavailable(self) -> str:
        return self._reason

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise PlaybookError(
            f"{self._reason}: a rehearsal makes the server fail on purpose.", _ON_THE_EMULATOR
        )

    advance_clock = rate_limit_next = answers = consent_traps = _refuse  # type: ignore[assignment]


def rehearsals_for(target: Target) -> Rehearsals:
    """The emulator's rehearsals, or :class:`NotAvailable` for any other target."""
    return EmulatorRehearsals(target) if target.emulator is not None else NotAvailable(target)
