"""``atlassian-playbook doctor``: is the configuration sound, and do the servers answer?

Runs before anything talks OAuth, so each finding says what to change. It sends no credential:
reachability is an unauthenticated request that any live server answers (401 counts as up).

With ``record`` (``doctor --record FILE``) it also saves the shape of every answer it saw
(:mod:`atlassian_playbook.parity`, never a value) and, when the token store holds a connection
for the configured client, makes ``verify``'s read-only calls first so the record holds the
authenticated shapes too: what a bug report attaches so the emulator can be made truer.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .callback import callback_difference, is_loopback
from .config import load_settings
from .errors import ConfigError, PlaybookError
from .redact import redact
from .verify import Check, Warned

__all__ = ["DoctorReport", "run_doctor"]


@dataclass
class DoctorReport:
    """What doctor found. Its text and dict pass through :func:`redact`: a setting that happens
    to equal the secret or a stored token (a pasted-in-the-wrong-place secret) never prints."""

    target: str
    checks: list[Check] = field(default_factory=list)
    env_file: Path | None = None
    token_store: Path | None = None

    @property
    def ok(self) -> bool:
        """No check failed (warnings allowed: see :meth:`exit_code`)."""
        return all(check.ok is not False for check in self.checks)

    @property
    def warnings(self) -> list[Check]:
        return [check for check in self.checks if isinstance(check, Warned)]

    def exit_code(self, *, strict: bool = False) -> int:
        """0 when no check failed, 1 when one did, or (``strict``) when one warned."""
        return 0 if self.ok and not (strict and self.warnings) else 1

    def to_dict(self) -> dict:
        return {"ok": self.ok, "warnings": len(self.warnings), "target": redact(self.target),
                "env_file": str(self.env_file) if self.env_file else None,
                "token_store": str(self.token_store) if self.token_store else None,
                "checks": [check.to_dict() for check in self.checks]}

    def to_text(self, *, strict: bool = False) -> str:
        lines = [f"Target: {self.target}"]
        if self.env_file is not None:
            found = "" if self.env_file.is_file() else " (not found: defaults and environment)"
            lines.append(f"Settings: {self.env_file}{found}")
        if self.token_store is not None:
            lines.append(f"Token store: {self.token_store}")
        for check in self.checks:
            line = f"{check.status:<8}{check.name}: {check.detail}"
            if check.ok is not True and check.hint:
                line += f"  hint: {check.hint}"
            lines.append(line)
        lines.append(self._summary(strict))
        return redact("\n".join(lines))

    def _summary(self, strict: bool) -> str:
        if not self.ok:
            return "Some checks failed."
        count = len(self.warnings)
        if not count:
            return "All checks passed."
        noun = f"{count} warning{'s' if count > 1 else ''}"
        said = self.warnings[0].detail if count == 1 else "see the warning lines above."
        if strict:
            return f"No check failed, but --strict fails on {noun}: {said}"
        return f"All checks passed, {noun}: {said}"


def _reachable(name: str, url: str) -> Check:
    import httpx

    from ._http import new_client

    try:
        with new_client(timeout=10) as client:
            response = client.get(url)
    except httpx.HTTPError as error:
        return Check(name, False, f"{url} did not answer ({type(error).__name__})",
                     "Check the base URL setting and the network (proxy, VPN, firewall).")
    return Check(name, True, f"{url} answered HTTP {response.status_code}", None)


def run_doctor(env_file: str | os.PathLike[str] | None = ".env", *,
               record: str | os.PathLike[str] | None = None) -> DoctorReport:
    env_path = Path(env_file).expanduser().absolute() if env_file else None
    try:
        settings = load_settings(env_file)
    except ConfigError as error:
        report = DoctorReport("unknown (configuration invalid)", env_file=env_path)
        report.checks.append(Check(f"setting {error.setting or ''}".strip(), False,
                                   error.message, error.hint))
        return report

    from .target import connect

    try:
        target = connect(settings)
    except PlaybookError as error:
        report = DoctorReport("unreachable")
        report.checks.append(Check("target", False, error.message, error.hint))
        return report
    with target:
        return _examine(target, record)


def _examine(target, record: str | os.PathLike[str] | None) -> DoctorReport:
    """Every check of a resolved target, in the order a person fixes them."""
    from .scopes import check_scopes

    settings = target.settings
    report = DoctorReport(target.describe(), env_file=settings.env_file,
                          token_store=settings.token_store)
    checks = report.checks
    checks += [Check(f"setting {unknown.name}", False, unknown.message, unknown.hint)
               for unknown in settings.unknown]
    checks.append(Check("credentials", True,
                        f"client {settings.client_id}, secret {settings.client_secret}", None))

    uri = settings.redirect_uri
    if is_loopback(uri):
        detail = f"{uri} (loopback: `login` catches the code itself)"
    elif uri.startswith("https://"):
        detail = f"{uri} (not loopback: use `login --paste`)"
    else:
        detail = None
    checks.append(
        Check("callback URL", True, detail, None) if detail else
        Check("callback URL", False, f"{uri} is plain http on a non-loopback host",
              "Atlassian accepts https callbacks, and http only for localhost/127.0.0.1.")
    )

    checks.append(_registered_callback(target))

    warnings = check_scopes(settings.scopes)
    checks.append(Check("scopes", True, " ".join(settings.scopes), None))
    for warning in warnings:
        checks.append(Warned(f"scopes: {warning.code}", None, warning.message, warning.hint))

    from .parity import Recorder

    recorder = Recorder.for_settings(settings) if record else None
    with recorder.recording() if recorder else contextlib.nullcontext():
        checks.append(_reachable("authorization server", f"{settings.auth_base_url}/authorize"))
        checks.append(_reachable(
            "API gateway", f"{settings.api_base_url}/oauth/token/accessible-resources"))
    store = _token_store_check(target.store, settings.client_id)
    checks.append(_store_folder_check(settings.token_store))
    checks.append(store)
    if recorder is not None:
        checks.append(_record(recorder, target, Path(record), connected=store.ok is True))
    return report


def _record(recorder, target, path: Path, *, connected: bool) -> Check:
    """Make the authenticated read-only calls (when ``connected``) and save the record."""
    from .parity import record_read_only_calls

    settings = target.settings
    note = " (unauthenticated only: run `atlassian-playbook login` to record the API calls too)"
    stopped = None
    if connected:
        # Any of the client's connections shows the same shapes; take one deterministically.
        entries = sorted((e for e in target.store.list()
                          if e.client_id == settings.client_id), key=lambda e: e.account_id or "")
        try:
            with recorder.recording():
                verified = record_read_only_calls(target, account_id=entries[0].account_id)
        except PlaybookError as error:
            stopped = error  # what was recorded until then is still worth saving
        else:
            failed = sum(1 for check in verified.checks if check.ok is False)
            note = (" (with verify's API calls" + (f"; {failed} of its checks failed, see "
                    "`atlassian-playbook verify`" if failed else "") + ")")
    shapes = recorder.record(target.kind)
    try:
        shapes.save(path)
    except OSError as error:
        return Check("record", False, f"cannot write {path}: {error.strerror or error}",
                     "Give --record a path in a writable folder.")
    written = f"{len(shapes.exchanges)} response shape(s) from {target.kind} written to {path}"
    if stopped is not None:
        return Check("record", False, f"{written}, but the API calls stopped: {stopped.message}",
                     stopped.hint)
    return Check("record", True, f"{written}{note}; it holds no value", None)


def _registered_callback(target) -> Check:
    """Is .env's callback one of the app's callback URLs? The emulator's registration can be
    read; Atlassian's console cannot, so there doctor says what to compare."""
    uri = target.settings.redirect_uri
    if target.emulator is None:
        return Check("callback registered", None,
                     f"cannot be checked against {target.kind}: nothing reads the console",
                     f"On the console's Authorization tab, compare the callback URL with {uri} "
                     "character by character (scheme, host, port, path, trailing slash).")
    registered = target.emulator.default_client.redirect_uris
    difference = callback_difference(uri, registered)
    if difference is None:
        return Check("callback registered", True,
                     f"{uri} is a callback URL of the emulated app", None)
    return Check("callback registered", False,
                 f"{uri} is not a callback URL of the emulated app: {difference}; consent "
                 "would fail as on Atlassian",
                 "Make ATLASSIAN_REDIRECT_URI identical to a registered one, or add it as on the "
                 f"console's Authorization tab: `atlassian-playbook emulator callbacks add {uri}`.")


def _store_folder_check(path: Path) -> Check:
    """Can the store be written? Proved by creating a file where it would (a refresh that
    cannot save its rotated token loses the grant), in the folder or its nearest ancestor."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        if not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder", str(folder))
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return Check("token store folder", False,
                     f"cannot write in {folder}: {error.strerror or error}",
                     "Make that folder writable, or set ATLASSIAN_TOKEN_STORE to a file in a "
                     "writable folder; logins and refreshes must save tokens there.")
    return Check("token store folder", True, f"{path.parent} can be written", None)


def _token_store_check(store, client_id: str | None) -> Check:
    path = store.path
    if not path.exists():
        return Check("token store", None, f"{path} does not exist yet",
                     "Run `atlassian-playbook login` to create a connection.")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Check("token store", False, f"{path} has mode {oct(mode)}; it holds tokens",
                     f"chmod 600 {path}")
    entries = [e for e in store.list() if e.client_id == client_id]
    if not entries:
        return Check("token store", None, f"{path}: no connection for client {client_id}",
                     "Run `atlassian-playbook login`.")
    return Check("token store", True,
                 f"{path}: {len(entries)} connection(s) for client {client_id}", None)
