"""``atlassian-playbook``: the whole connection lifecycle from a terminal.

Every command prints a short human summary (or JSON with ``--json``), exits 0 on success and
non-zero with one line ``error: ... hint: ...`` otherwise, and never prints a secret. With no
client id and secret configured, commands run against the embedded emulator; a command that
talks to Atlassian says first which one. The workspace is the folder of ``--env-file``
(:mod:`atlassian_playbook.config` has the rule), so the notebooks' logins are the CLI's.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import sys
from collections.abc import Callable, Sequence

from ..errors import PlaybookError
from ..redact import RedactingFilter, redact
from . import configure, connection, emulator, health, runs, webhooks
from ._common import EXIT_FAILED, warn_unknown_settings

__all__ = ["main", "build_parser"]

EXIT_BROKEN_PIPE = 128 + 13  # as if killed by SIGPIPE, like `yes | head`
# OS errors a user fixes on their machine (full disk, permissions), with how.
_DISK_ERRORS = {
    errno.ENOSPC: "free some space on that disk",
    errno.EDQUOT: "free some space (your disk quota is used up)",
    errno.EROFS: "the file system is read-only: use a writable folder",
    errno.EACCES: "you may not write there: fix its permissions or use another folder",
    errno.EPERM: "you may not write there: fix its permissions or use another folder",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atlassian-playbook",
        description="Create, verify and refresh an Atlassian Cloud OAuth 2.0 (3LO) connection. "
        "With no credentials in .env, everything runs against the embedded emulator.",
    )
    parser.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    parser.add_argument("--debug", action="store_true",
                        help="log the HTTP exchange to stderr (redacted)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable, help: str, parent=commands) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    def json_flag(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--json", action="store_true", help="machine-readable output")

    for commands_of in (configure, connection, emulator, webhooks, runs, health):
        commands_of.register(add, json_flag)
    return parser


def _log_debug_to_stderr() -> None:
    """The package's own loggers at DEBUG, through a redacting handler.

    Only ``atlassian_playbook.*``: httpcore's DEBUG records carry raw headers (a redirect's
    ``Location`` holds the authorization code), so the root logger stays where it is, and the
    handler redacts whatever reaches it anyway.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    package = logging.getLogger("atlassian_playbook")
    package.setLevel(logging.DEBUG)
    package.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug or os.environ.get("ATLASSIAN_PLAYBOOK_DEBUG"):
        _log_debug_to_stderr()
    try:
        warn_unknown_settings(args)
        code = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # `atlassian-playbook scopes list --json | head`: the reader has what it wanted.
        # Python's advice: point stdout at devnull so the exit-time flush stays quiet too.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except PlaybookError as error:
        print(redact(error.one_line()), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("error: interrupted  hint: run the command again", file=sys.stderr)
        return 130
    except Exception as error:
        if isinstance(error, OSError) and error.errno in _DISK_ERRORS:  # the machine, not us
            where = f" ({error.filename})" if error.filename else ""
            print(redact(f"error: {error.strerror}{where}  hint: {_DISK_ERRORS[error.errno]}, "
                         "then run the command again"), file=sys.stderr)
            return EXIT_FAILED
        if args.debug:  # a bug of ours: still one line, still redacted
            raise
        print(
            redact(f"error: unexpected {type(error).__name__}: {error}  "
                   "hint: run again with --debug and report it"),
            file=sys.stderr,
        )
        return EXIT_FAILED
