"""``make demo``: log in, verify and refresh, then print a short report.

Against the embedded emulator (no credentials in .env) everything is headless and isolated in
``output/demo/``; with credentials it is the real flow, with a browser to consent in.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import connection
from .config import load_settings
from .redact import redact
from .target import connect

__all__ = ["run_demo"]


def run_demo(output_dir: str | Path = "output", env_file: str | Path = ".env") -> int:
    out = Path(output_dir) / "demo"
    out.mkdir(parents=True, exist_ok=True)
    settings = load_settings(env_file)
    if not settings.has_credentials:
        settings = settings.replace(token_store=out / "tokens.json")
    target = connect(settings, auto_consent=True)
    headless = target.emulator is not None
    print(f"1/3 login against {target.describe()}")
    result = connection.login(
        target, browser="headless" if headless else "system",
        show_url=lambda url: print(f"    {url}"),
    )
    print(_indent(result.to_text()))
    print("2/3 verify")
    report = connection.verify(target, account_id=result.entry.account_id)
    print(_indent(report.to_text()))
    print("3/3 refresh")
    refreshed = connection.refresh(target, account_id=result.entry.account_id)
    print(_indent(refreshed.to_text()))

    summary = {
        "target": target.kind,
        "login": result.to_dict(),
        "verify": report.to_dict(),
        "refresh": refreshed.to_dict(),
    }
    report_path = out / "report.json"
    report_path.write_text(redact(json.dumps(summary, indent=2, default=str)) + "\n")
    ok = report.ok and refreshed.rotated
    print(f"{'Demo passed' if ok else 'Demo FAILED'}; report written to {report_path}")
    sys.stdout.flush()
    return 0 if ok else 1


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())
