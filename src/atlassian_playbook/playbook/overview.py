"""Notebook 01: which Atlassian the playbook talks to, and what it writes where."""

from __future__ import annotations

from ..manifest import notebooks
from ..tokens import entries_summary
from ._results import StepResult, step
from .session import Session

__all__ = ["overview", "sequence"]


@step()
def overview(session: Session) -> StepResult:
    """Where things stand: which Atlassian, the settings (masked), what the playbook writes."""
    s = session.settings
    entries = session.target.store.list()
    result = StepResult(
        "overview",
        {
            "target": session.target.kind,
            "connections": len(entries),
            "scopes": list(s.scopes),
            "redirect_uri": s.redirect_uri,
            "token_store": str(s.token_store),
            "profile": session.profile.name,
        },
    )
    if session.uses_emulator:
        result.say(
            "**Target: the embedded emulator.** No `ATLASSIAN_CLIENT_ID`/`ATLASSIAN_CLIENT_SECRET` "
            "in `.env` or the environment, so the playbook runs against an emulator of "
            f"Atlassian on this machine ({s.auth_base_url}, {s.api_base_url}): the same "
            "requests, the same errors, no real account. Notebook 02 puts real credentials in "
            "`.env`; from then on the same cells talk to auth.atlassian.com and "
            "api.atlassian.com."
        )
    elif session.target.kind == "atlassian":
        result.say(
            f"**Target: Atlassian Cloud** as client `{s.client_id}` (secret `{s.client_secret}`"
            ", masked). Consent happens in your browser."
        )
    else:
        result.say(
            f"**Target: {s.auth_base_url}** (not Atlassian's own URL: a test double or an "
            f"emulator) as client `{s.client_id}`."
        )
    result.table(
        [{"setting": k, "value": v} for k, v in s.describe().items()], ["setting", "value"]
    )
    produced = [
        {
            "what": ".env",
            "where": session.env_file,
            "why": "credentials (mode 0600, never committed), callback URL, scopes",
        },
        {
            "what": "token store",
            "where": s.token_store,
            "why": "access and refresh tokens (mode 0600, written atomically, locked)",
        },
        {
            "what": "checklist progress",
            "where": session.state_dir / "checklist-<profile>.json",
            "why": "which console steps you ticked",
        },
        {
            "what": "reporting cycle",
            "where": session.state_dir / "reporting-cycle.json",
            "why": "when each account was last reported (Cycle-Period)",
        },
    ]
    if session.uses_emulator:
        produced.append(
            {
                "what": "emulated world",
                "where": s.token_store.with_name("emulator-state.json"),
                "why": "the emulator's app, grants and clock, shared by every notebook kernel",
            }
        )
    result.say("**What the playbook produces:**").table(produced, ["what", "where", "why"])
    result.say(f"**Stored connections:** {len(entries)}")
    if entries:
        result.table(entries_summary(entries))
    return result


@step()
def sequence(session: Session) -> StepResult:
    """The notebooks after this one and what each gives, read from the shipped manifest
    (``data/notebooks.toml``): the table can never disagree with the sequence that runs."""
    after = notebooks()[1:]
    return StepResult("sequence", {"notebooks": [nb.name for nb in after]}).table(
        [{"notebook": nb.name, "what you get": nb.summary} for nb in after],
        ["notebook", "what you get"],
    )
