"""A wait a person watches and may stop: the countdown and Cancel of notebook 04, handed to
every listener inside a :func:`watching` block."""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator


class WaitControl:
    """A wait that a person watches and may stop.

    ``on_tick(seconds_left)`` is called about once a second from the waiting thread (a
    countdown); :meth:`cancel` may be called from any thread (a button's click handler) and
    ends the wait within a fraction of a second.
    """

    # How often the waiting thread looks at the clock and the cancel flag.
    SLICE = 0.2

    def __init__(self, on_tick: Callable[[float], object] | None = None) -> None:
        self.on_tick = on_tick
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()


_CONTROLS: contextvars.ContextVar[WaitControl | None] = contextvars.ContextVar(
    "atlassian_playbook_wait_control", default=None
)


@contextlib.contextmanager
def watching(control: WaitControl) -> Iterator[WaitControl]:
    """Every :meth:`CallbackListener.wait` inside this block reports to ``control`` and stops
    when it is cancelled: how notebook 04 puts a countdown and a Cancel button on the login
    that :func:`~.connection.login` runs, without each layer passing them along."""
    token = _CONTROLS.set(control)
    try:
        yield control
    finally:
        _CONTROLS.reset(token)


def current_control() -> WaitControl | None:
    """The control of the innermost :func:`watching` block, if any."""
    return _CONTROLS.get()
