"""Catching the authorization redirect: a one-shot loopback listener, or a pasted URL.

When the callback URL is ``http://127.0.0.1:PORT/...`` or ``http://localhost:PORT/...`` the
playbook listens there itself, for exactly one redirect, then stops. Otherwise (a remote
JupyterHub, a partner's callback such as Merge's or Clerk's) the user pastes the URL the
browser landed on: the code in it is single-use and short-lived, so the exchange still works
from here.

The page shown to the browser never contains the code; the listener logs request lines with
the query reduced to its parameter names, and prints nothing (a browser that hangs up is logged at
debug level, not as a traceback on the notebook's stderr).

A wait can be watched and stopped (:class:`WaitControl`, handed in by a :func:`watching`
block, as notebook 04's countdown and Cancel button do); an interrupt (Ctrl-C, the notebook's
stop button) ends it the same way, as :class:`WaitCancelled`, which shows as a message, not a
traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from ..errors import CallbackError, MissingCode, WaitCancelled
from ._claim import claimed_callback_url
from ._listener import CallbackListener
from ._urls import callback_difference, is_loopback
from ._wait import WaitControl, watching

if TYPE_CHECKING:
    from ..oauth import AuthorizationRequest, OAuthClient

__all__ = [
    "is_loopback",
    "callback_difference",
    "CallbackListener",
    "claimed_callback_url",
    "WaitCancelled",
    "WaitControl",
    "watching",
    "read_pasted_url",
    "obtain_code",
]


def read_pasted_url(text: str) -> str:
    """The URL a user pasted, without surrounding whitespace, quotes or angle brackets.

    Raises :class:`MissingCode` for an empty paste.
    """
    url = (text or "").strip()
    while len(url) >= 2 and url[0] + url[-1] in ('""', "''", "<>", "``", "()"):
        url = url[1:-1].strip()
    url = url.strip("\"'` \t\r\n")
    # A terminal may wrap a long URL: drop whitespace that crept inside.
    url = "".join(url.split())
    if not url:
        raise MissingCode("Nothing was pasted.")
    return url


def obtain_code(
    oauth: OAuthClient,
    request: AuthorizationRequest,
    *,
    mode: Literal["listen", "paste"] = "listen",
    open_browser: Callable[[str], object] | None = None,
    paste: Callable[[], str] | None = None,
    timeout: float = 300.0,
) -> str:
    """Send the user to ``request.url`` and bring back the authorization code.

    ``listen``: the listener is bound *before* the browser is opened, then waits up to
    ``timeout`` seconds. ``paste``: ``paste()`` returns the URL the browser landed on. Either
    way the result goes through :meth:`OAuthClient.parse_callback` (state check included).
    """
    if mode == "listen":
        with CallbackListener(request.redirect_uri, request.state) as listener:
            if open_browser is not None:
                open_browser(request.url)
            url = listener.wait(timeout)
    elif mode == "paste":
        if paste is None:
            raise CallbackError(
                "Paste mode needs a way to read the pasted URL.",
                "Pass paste= (e.g. input) or use listen mode with a loopback callback URL.",
            )
        if open_browser is not None:
            open_browser(request.url)
        url = read_pasted_url(paste())
    else:
        raise ValueError(f"mode must be 'listen' or 'paste', not {mode!r}")
    return oauth.parse_callback(url, request.state)
