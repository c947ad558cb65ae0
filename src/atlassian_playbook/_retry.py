"""When a request is sent again, and how long to wait first: one policy for both hosts.

The token endpoint's client (:mod:`.oauth`) and the gateway's (:mod:`.api`) both send through
:meth:`RetryPolicy.send`, so ``Retry-After`` and the bounded backoff mean the same everywhere
(FACTS.md, "Rate limits and errors"):

* a 429 or 5xx answer means the request was not processed: it is sent again after the
  answer's ``Retry-After``, or after a capped exponential backoff when there is none;
* a ``Retry-After`` longer than ``max_retry_wait`` is not waited out: the answer is handed
  back at once, and the caller raises :class:`~.errors.RateLimited` with the server's value;
* a transport error is retried only when the caller says it is safe (``retry_errors``: for
  the token endpoint only the errors raised before anything reached the server, since a code
  is single-use and a refresh token rotates);
* ``resend_once`` errors (the answer was lost after the server may have acted) are sent again
  once, at once, outside the retry budget: the refresh grant's case, where Atlassian still
  accepts the rotated-out token within its reuse leeway but not after it.

The policy is a value (a frozen dataclass): the retry state of one call lives in
:meth:`RetryPolicy.send`, so one policy serves any number of calls and threads. ``sleep`` and
``clock`` are injectable: tests observe the waits without waiting.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .redact import get_logger

if TYPE_CHECKING:
    import httpx

__all__ = [
    "RetryPolicy",
    "Sent",
    "is_transient",
    "retry_after_seconds",
    "BACKOFF_BASE",
    "BACKOFF_CAP",
]

log = get_logger(__name__)

# Backoff when the server names no wait: BACKOFF_BASE * 2**retry seconds, never more than CAP.
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def is_transient(status: int) -> bool:
    """A 429 or 5xx: the request was not processed, so the same request may be sent again."""
    return status == 429 or status >= 500


@dataclass(frozen=True)
class Sent:
    """The last answer of :meth:`RetryPolicy.send`, with what it took to get it.

    ``retries`` counts the requests sent again after a 429, a 5xx or a ``retry_errors`` error
    (not a ``resend_once``); ``retry_after`` is the last answer's ``Retry-After`` in seconds.
    A transient status here means the retries ran out or the server asked for too long a wait.
    """

    response: httpx.Response
    retries: int
    retry_after: float | None


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_retries`` retries per call, each after at most ``max_retry_wait`` s."""

    max_retries: int = 3
    max_retry_wait: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (0-based) when the server names none."""
        return min(BACKOFF_CAP, BACKOFF_BASE * (2**retry))

    def send(
        self,
        send: Callable[[], httpx.Response],
        *,
        what: str,
        retry_errors: tuple[type[Exception], ...] = (),
        resend_once: tuple[type[Exception], ...] = (),
    ) -> Sent:
        """Call ``send()`` until it answers something other than 429/5xx, or retrying stops.

        ``what`` names the request in the log. An error of ``retry_errors`` is retried with
        the backoff while retries remain, then raised; one of ``resend_once`` is sent again
        once at once, then raised; any other error is raised as it is.
        """
        retries = 0
        resent = False
        while True:
            try:
                response = send()
            except resend_once as exc:
                if resent:
                    raise
                resent = True
                log.info("%s: the answer was lost (%s); sending it again", what, type(exc).__name__)
                continue
            except retry_errors as exc:
                if retries >= self.max_retries:
                    raise
                self._wait(self.backoff(retries), what, f"failed ({type(exc).__name__})")
                retries += 1
                continue
            retry_after = retry_after_seconds(response.headers.get("Retry-After"), self.clock())
            if not is_transient(response.status_code):
                return Sent(response, retries, retry_after)
            if retries >= self.max_retries or (
                retry_after is not None and retry_after > self.max_retry_wait
            ):
                return Sent(response, retries, retry_after)
            wait = self.backoff(retries) if retry_after is None else retry_after
            response.close()
            self._wait(wait, what, f"answered {response.status_code}")
            retries += 1

    def _wait(self, seconds: float, what: str, why: str) -> None:
        log.info("%s %s; retrying in %.1f s", what, why, seconds)
        self.sleep(seconds)
