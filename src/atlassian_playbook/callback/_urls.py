"""Callback URLs: which ones the playbook can listen on, and how one differs from the
registered ones (a trailing slash, a port, http for https)."""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_HOSTS = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1", "::1": "::1"}


def is_loopback(redirect_uri: str) -> bool:
    """True for a plain-http URL on this machine (``127.0.0.1``, ``localhost``, ``[::1]``).

    Only such a callback can be caught by :class:`CallbackListener`; anything else needs
    paste mode.
    """
    try:
        parts = urlsplit(redirect_uri.strip())
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except (AttributeError, ValueError):
        return False
    return parts.scheme == "http" and (parts.hostname or "").lower() in LOOPBACK_HOSTS


def callback_difference(configured: str, registered: list[str] | tuple[str, ...]) -> str | None:
    """How ``configured`` misses the nearest of the ``registered`` callback URLs, in words a
    person can act on (``"... only by a trailing slash"``), or ``None`` when it is one of them.

    Atlassian compares the redirect_uri as a string: scheme, host, port, path and trailing
    slash all count, and ``localhost`` is not ``127.0.0.1``.
    """
    if configured in registered:
        return None
    if not registered:
        return "no callback URL is registered on the app"
    mine = urlsplit(configured)

    def parts(url: str):
        other = urlsplit(url)
        try:
            ports = (mine.port, other.port)
        except ValueError:
            ports = (None, None)
        return [
            (
                "a trailing slash",
                mine.path.rstrip("/") == other.path.rstrip("/") and mine.path != other.path,
            ),
            ("the scheme", mine.scheme != other.scheme),
            ("the host", (mine.hostname or "") != (other.hostname or "")),
            ("the port", ports[0] != ports[1]),
            ("the path", mine.path.rstrip("/") != other.path.rstrip("/")),
            ("the query", mine.query != other.query),
            ("upper/lower case", configured.lower() == url.lower()),
        ]

    differences = {url: [name for name, differs in parts(url) if differs] for url in registered}
    best = min(registered, key=lambda url: len(differences[url]))
    what = differences[best]
    if "upper/lower case" in what:
        what = ["upper/lower case"]
    if not what:
        return f"it differs from {best}"
    joined = " and ".join(what) if len(what) < 3 else ", ".join(what[:-1]) + " and " + what[-1]
    only = "only " if len(what) == 1 else ""
    return f"it differs from the registered {best} {only}by {joined}"
