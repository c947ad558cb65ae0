"""Notebook 04's consent on screen: the link before anything waits, then a countdown and a
Cancel button while the kernel waits for the callback.

The link and the status are plain display outputs (``display_id``), so an executed or saved
notebook keeps them (widget state is not kept): headless, the output is the link and the
outcome. Only a person waiting gets the countdown and Cancel, as ipywidgets.

A running cell holds the kernel's main thread, so a button's click (a ``comm_msg`` on the
shell channel) would wait until the cell ends. ipykernel 7 runs kernel subshells (JEP 91) in
threads of their own and routes a comm's messages to the subshell its comm names
(``Comm._reply_subshell_for``); so the Cancel button's comm is pointed at a subshell this
kernel asks itself for over its control channel, and the click is handled there, while the
main thread waits. Where that is not possible (an older ipykernel, no kernel at all), no button
is shown and the text says to use the stop button (an interrupt ends the wait too).
"""

from __future__ import annotations

import contextlib
import functools
import html
from collections.abc import Iterator
from typing import Any

from ..callback import WaitControl
from ..redact import get_logger, redact

__all__ = ["ConsentDisplay", "route_clicks_while_busy"]

log = get_logger(__name__)


def _display(text: str, markup: str) -> Any:
    """A display output with a plain and an HTML form; its handle (``None`` outside IPython)."""
    from IPython.display import display

    return display({"text/plain": text, "text/html": markup}, raw=True, display_id=True)


def _update(handle: Any, text: str, markup: str) -> None:
    if handle is not None:
        handle.update({"text/plain": redact(text), "text/html": redact(markup)}, raw=True)


class ConsentDisplay:
    """The authorization link and a status line, shown before anything waits; with
    ``person``, a countdown and Cancel during :meth:`waiting`."""

    def __init__(self, *, person: bool) -> None:
        self.person = person
        self.url: str | None = None
        self._link = _display("(preparing the authorization URL…)",
                              "<i>preparing the authorization URL…</i>")
        self._status = _display("", "")

    def set_url(self, url: str) -> None:
        """Show the link: a person opens it; headless, it records what was opened."""
        self.url = url
        href = html.escape(url, quote=True)
        _update(
            self._link,
            f"Authorization URL: {url}",
            f"<a href='{href}' target='_blank' rel='noopener' id='authorize-link'>Authorize "
            f"the app at Atlassian →</a><br><small><code>{html.escape(url)}</code></small>",
        )

    def say(self, text: str) -> None:
        """Replace the status line (plain text; escaped for the HTML form)."""
        _update(self._status, text, f"<p>{html.escape(text)}</p>")

    @contextlib.contextmanager
    def waiting(self, timeout: float) -> Iterator[WaitControl | None]:
        """While the body waits for the callback: a countdown and Cancel for a person; for a
        headless consent nothing (no countdown noise in an executed notebook)."""
        if not self.person:
            yield None
            return
        import ipywidgets as w
        from IPython.display import display

        countdown = w.Label(value=_left(timeout))
        control = WaitControl(on_tick=lambda left: setattr(countdown, "value", _left(left)))
        cancel = w.Button(description="Cancel", icon="stop", button_style="warning",
                          tooltip="Stop waiting for the consent")
        cancel.on_click(lambda _button: control.cancel())
        if route_clicks_while_busy(cancel):
            box = w.HBox([countdown, cancel])
        else:
            countdown.value += " (press the stop button ■ to stop waiting)"
            box = w.HBox([countdown])
        display(box)
        try:
            yield control
        finally:
            box.close()
            cancel.close()
            countdown.close()


def _left(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"Waiting for the consent: {whole // 60}:{whole % 60:02d} left"


def route_clicks_while_busy(widget: Any) -> bool:
    """Have ``widget``'s messages from the browser handled in a kernel subshell, so its
    callbacks run while a cell is busy; False when this kernel cannot (nothing changed)."""
    comm = getattr(widget, "comm", None)
    if comm is None or not hasattr(comm, "_reply_subshell_for"):
        return False
    subshell = _subshell_id()
    if subshell is None:
        return False
    # ipykernel's comm routes the browser's messages to this subshell (kernelbase:
    # shell_channel_thread_main); it is reset by the comm's next publish from another
    # subshell, and this button publishes nothing more until it is closed.
    comm._reply_subshell_id = subshell
    return True


@functools.cache
def _subshell_id() -> str | None:
    """One subshell per kernel process, asked for over the kernel's own control channel
    (``create_subshell_request``, JEP 91), which a running cell does not block."""
    try:
        from ipykernel.connect import get_connection_file
        from IPython import get_ipython
        from jupyter_client import BlockingKernelClient

        shell = get_ipython()
        kernel = getattr(shell, "kernel", None)
        if kernel is None or not getattr(kernel, "_supports_kernel_subshells", False):
            return None
        client = BlockingKernelClient(connection_file=get_connection_file())
        client.load_connection_file()
        client.start_channels(shell=False, iopub=False, stdin=False, hb=False, control=True)
        try:
            request = client.session.msg("create_subshell_request", {})
            client.control_channel.send(request)
            while True:
                reply = client.control_channel.get_msg(timeout=10)
                if reply["parent_header"].get("msg_id") == request["header"]["msg_id"]:
                    break
        finally:
            client.stop_channels()
        content = reply["content"]
        return content.get("subshell_id") if content.get("status") == "ok" else None
    except Exception as error:  # no kernel, an older ipykernel, a closed control channel
        log.debug("no subshell for the Cancel button: %s", error)
        return None
