"""How two parity records differ, and what ``emulator compare`` reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._record import Exchange, Record


@dataclass(frozen=True)
class Difference:
    """One way the emulator's answer differs from the record's.

    ``kind``: ``missing status`` / ``extra status``, ``missing header`` / ``extra header``,
    ``missing key`` / ``extra key`` ("missing" is in the record, not from the emulator),
    ``type mismatch`` or ``body mismatch`` (then ``expected`` and ``actual`` say what).
    """

    kind: str
    request: str
    status: int
    name: str = ""
    expected: str | None = None
    actual: str | None = None

    def to_text(self) -> str:
        where = f"{self.request} -> {self.status}"
        side, _, thing = self.kind.partition(" ")  # "missing header" -> "missing", "header"
        if thing == "mismatch":
            what = self.name if side == "type" else "the body"
            return (
                f"{where}: {what} is {self.expected} in the record, {self.actual} from the emulator"
            )
        subject = "status" if thing == "status" else f"{thing} {self.name}"
        if side == "missing":
            return f"{where}: {subject} in the record, not from the emulator"
        return f"{where}: {subject} from the emulator, not in the record"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "request": self.request,
            "status": self.status,
            "name": self.name,
            "expected": self.expected,
            "actual": self.actual,
        }


def diff(expected: Record, actual: Record) -> list[Difference]:
    """Every difference between ``expected`` (the record) and ``actual`` (the emulator's)."""
    wanted, answered = expected.by_request(), actual.by_request()
    out: list[Difference] = []
    for request in sorted(set(wanted) | set(answered)):
        mine, theirs = wanted.get(request, {}), answered.get(request, {})
        for status in sorted(set(mine) | set(theirs)):
            want, got = mine.get(status), theirs.get(status)
            if got is None or want is None:
                out.append(
                    Difference(
                        "missing status" if got is None else "extra status",
                        (want or got).label,
                        status,
                    )
                )
                continue
            out += _diff_exchange(want, got)
    return out


def _diff_exchange(want: Exchange, got: Exchange) -> list[Difference]:
    out = [
        Difference(kind, want.label, want.status, name)
        for kind, names in (
            ("missing header", set(want.headers) - set(got.headers)),
            ("extra header", set(got.headers) - set(want.headers)),
        )
        for name in sorted(names)
    ]
    if want.body != got.body:
        out.append(Difference("body mismatch", want.label, want.status, "", want.body, got.body))
    for path in sorted(set(want.json_types) | set(got.json_types)):
        expected, actual = want.json_types.get(path), got.json_types.get(path)
        if actual is None or expected is None:
            out.append(
                Difference(
                    "missing key" if actual is None else "extra key", want.label, want.status, path
                )
            )
        elif expected != actual:
            out.append(Difference("type mismatch", want.label, want.status, path, expected, actual))
    return out


@dataclass
class Comparison:
    """What ``emulator compare`` found: ``ok`` when the replayed requests matched the record."""

    record_target: str
    differences: list[Difference]
    replayed: list[str]
    skipped: list[tuple[str, str]]  # (request, why it was not replayed)

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "record_target": self.record_target,
            "differences": [d.to_dict() for d in self.differences],
            "replayed": list(self.replayed),
            "skipped": [{"request": r, "why": why} for r, why in self.skipped],
        }

    def to_text(self) -> str:
        lines = [
            f"Replayed {len(self.replayed)} request(s) of a record from {self.record_target} "
            "against the emulator."
        ]
        lines += [f"skipped  {request}: {why}" for request, why in self.skipped]
        lines += [f"differs  {d.to_text()}" for d in self.differences]
        lines.append("no differences" if self.ok else f"{len(self.differences)} difference(s)")
        return "\n".join(lines)
