"""What the command modules share: exit codes, JSON output, the settings and target of a
command's arguments, and argparse types."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable

from ..redact import redact

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# add(name, handler, help, parent=the top-level commands) -> the new subparser
Add = Callable[..., argparse.ArgumentParser]
JsonFlag = Callable[[argparse.ArgumentParser], None]


def print_json(data) -> None:
    print(redact(json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False)))


def settings_of(args):
    from ..config import load_settings

    return load_settings(args.env_file)


def connect_target(args, *, auto_consent: bool = True, announce=sys.stdout, settings=None):
    """The target of ``args``; its human output starts by saying which Atlassian it is."""
    from ..target import connect

    target = connect(settings or settings_of(args), auto_consent=auto_consent)
    if not getattr(args, "json", False):
        print(f"Target: {target.describe()}", file=announce, flush=True)
    return target


def warn_unknown_settings(args) -> None:
    """Every command warns about ``ATLASSIAN_*`` names that are no setting (typos)."""
    from ..config import load_settings
    from ..errors import ConfigError

    try:
        unknown_settings = load_settings(args.env_file, validate=False).unknown
    except ConfigError:
        return  # an unreadable .env: the command itself says so, once
    for unknown in unknown_settings:
        print(f"warning: {unknown.message}  hint: {unknown.hint}", file=sys.stderr)


def positive_seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number of seconds")
    return value


def positive_count(text: str) -> int:
    """An argparse type: a positive whole number."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of at least 1")
    return value
