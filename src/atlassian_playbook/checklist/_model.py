"""What a checklist is: its steps and its four renderings (JSON, Markdown, the plain values
block, terminal text)."""

from __future__ import annotations

import dataclasses
import re
import textwrap
from dataclasses import dataclass, field

from ..scopes import (
    ScopeWarning,
)

_PLACEHOLDER = re.compile(r"<REPLACE: [^>]*>")


def placeholder(what: str) -> str:
    """A value the user must fill in; rendered visibly and listed by ``Checklist.placeholders``."""
    return f"<REPLACE: {what}>"


def is_placeholder(value: str) -> bool:
    """True when ``value`` still contains a ``<REPLACE: ...>`` marker."""
    return bool(_PLACEHOLDER.search(value))


@dataclass(frozen=True)
class ChecklistStep:
    """One thing to do in the console (or the partner's dashboard).

    ``id`` is stable across releases: persist ticked progress by it. ``values`` are the exact
    values to enter, by field label (placeholders look like ``<REPLACE: ...>``); ``detail`` says
    why, and what goes wrong otherwise. ``required=False`` marks advice or optional fields.
    ``copyable`` names the values that are literal text to paste (a URL, a name, scopes), the
    ones a copy button makes sense for: not an instruction ("the Secret from the console's
    Settings tab"), a choice to click ("Sharing") or a placeholder still to replace.
    """

    id: str
    tab: str
    title: str
    values: dict[str, str] = field(default_factory=dict)
    detail: str = ""
    required: bool = True
    copyable: tuple[str, ...] = ()


@dataclass(frozen=True)
class Checklist:
    """The steps for one profile, plus what they were built from."""

    profile: str
    policy_note: str
    steps: tuple[ChecklistStep, ...]
    scopes: tuple[str, ...]
    callback_url: str
    console_apis: tuple[str, ...] = ()
    warnings: tuple[ScopeWarning, ...] = ()
    title: str = ""

    def step(self, step_id: str) -> ChecklistStep:
        """The step with ``step_id``; :class:`KeyError` when the profile has none."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    @property
    def placeholders(self) -> list[tuple[str, str]]:
        """``(step id, field)`` of every value still to be replaced."""
        return [(s.id, k) for s in self.steps for k, v in s.values.items() if is_placeholder(v)]

    def to_dict(self) -> dict:
        """JSON-ready: the CLI's ``--json`` output and the notebooks' widget state."""
        return {
            "profile": self.profile,
            "policy_note": self.policy_note,
            "callback_url": self.callback_url,
            "scopes": list(self.scopes),
            "console_apis": list(self.console_apis),
            "warnings": [dataclasses.asdict(w) for w in self.warnings],
            "placeholders": [{"step": s, "field": f} for s, f in self.placeholders],
            "steps": [
                {**dataclasses.asdict(step), "values": dict(step.values)} for step in self.steps
            ],
        }

    def to_markdown(self) -> str:
        """A Markdown task list grouped by tab, for a notebook cell or a ticket."""
        lines = [
            f"# Atlassian developer console checklist: {self.title or self.profile}",
            "",
            f"> {self.policy_note}",
            "",
            f"- Callback URL: `{self.callback_url}`",
            f"- Scopes: {' '.join(f'`{s}`' for s in self.scopes)}",
            f"- Permissions-tab APIs: {', '.join(self.console_apis) or 'none'}",
        ]
        if self.placeholders:
            lines.append("- Replace every `<REPLACE: ...>` value before you start.")
        for warning in self.warnings:
            lines.append(f"- **Warning:** {warning.message} {warning.hint}")
        tab = None
        for number, step in enumerate(self.steps, 1):
            if step.tab != tab:
                tab = step.tab
                lines += ["", f"## {_where(tab)}", ""]
            optional = " *(optional)*" if not step.required else ""
            lines.append(f"- [ ] **{number}. {step.title}**{optional} <!-- {step.id} -->")
            for label, value in step.values.items():
                lines.append(f"    - {label}: `{value}`")
            if step.detail:
                lines.append(f"    - *Why:* {step.detail}")
        return "\n".join(lines) + "\n"

    def to_plain(self) -> str:
        """Only the values, one ``Label: value`` per line and never wrapped, under each step's
        number and title: the block to paste into a ticket or a chat (``checklist --plain``).

        It holds what the steps hold, so no secret: where the client secret goes is an
        instruction, never its value.
        """
        out = [
            f"Atlassian app values: {self.title or self.profile} (profile {self.profile})",
            f"Callback URL: {self.callback_url}",
            f"Scopes: {' '.join(self.scopes)}",
            f"Permissions-tab APIs: {', '.join(self.console_apis) or 'none'}",
        ]
        if self.placeholders:
            out.append("Replace every <REPLACE: ...> value before you start.")
        if any(not step.values for step in self.steps):
            out.append("Steps with nothing to enter are left out; the numbers are the checklist's.")
        for number, step in enumerate(self.steps, 1):
            if not step.values:
                continue
            optional = " (optional)" if not step.required else ""
            out += ["", f"{number}. {step.title}{optional} [{_where(step.tab)}]"]
            out += [f"   {label}: {value}" for label, value in step.values.items()]
        return "\n".join(out) + "\n"

    def to_text(self) -> str:
        """Plain text for the terminal, wrapped at 100 columns."""
        # No breaks inside scope names (manage:jira-configuration) or URLs.
        wrap = textwrap.TextWrapper(
            width=100, subsequent_indent="        ", break_on_hyphens=False, break_long_words=False
        )
        top = textwrap.TextWrapper(
            width=100, subsequent_indent="  ", break_on_hyphens=False, break_long_words=False
        )
        out = [
            f"Atlassian developer console checklist: {self.title or self.profile} "
            f"(profile {self.profile})",
            *top.wrap(self.policy_note),
            f"Callback URL: {self.callback_url}",
            *top.wrap(f"Scopes: {' '.join(self.scopes)}"),
            f"Permissions-tab APIs: {', '.join(self.console_apis) or 'none'}",
        ]
        if self.placeholders:
            out.append("Replace every <REPLACE: ...> value before you start.")
        for warning in self.warnings:
            out += top.wrap(warning.one_line())
        tab = None
        for number, step in enumerate(self.steps, 1):
            if step.tab != tab:
                tab = step.tab
                out += ["", f"[{_where(tab)}]"]
            optional = " (optional)" if not step.required else ""
            out.append(f"{number:>2}. [ ] {step.title}{optional}  ({step.id})")
            for label, value in step.values.items():
                out += wrap.wrap(f"        {label}: {value}")
            if step.detail:
                out += wrap.wrap(f"        Why: {step.detail}")
        return "\n".join(out) + "\n"


def _where(tab: str) -> str:
    return "Partner dashboard" if tab == "Partner" else f"{tab} tab"
