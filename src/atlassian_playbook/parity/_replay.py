"""Replaying a record against a fresh emulator, and recording the read-only calls
``doctor --record`` makes."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._http import new_client
from ..errors import PlaybookError
from ._diff import Comparison, diff
from ._record import FILLED, Record
from ._recorder import Recorder

if TYPE_CHECKING:
    from ..connection import LoginResult
    from ..emulator import Emulator
    from ..target import Target
    from ..verify import VerificationReport

# Never contacted: the callback is not loopback, so the headless browser stops at the redirect
# and the code is read from that URL; nothing binds a port (parallel runs cannot collide).
REPLAY_CALLBACK = "https://parity.invalid/callback"


def login_headless(emulator: Emulator, scopes: Sequence[str]) -> tuple[Target, LoginResult]:
    """Consent on an auto-consenting ``emulator`` with a new app registered for the replay;
    the tokens go to the emulator's own scratch token store."""
    from .. import connection
    from ..target import Target, emulator_settings

    client = emulator.register_client(redirect_uris=(REPLAY_CALLBACK,))
    settings = emulator_settings(
        emulator,
        client_id=client.client_id,
        client_secret=client.client_secret,
        redirect_uri=REPLAY_CALLBACK,
        scopes=tuple(scopes),
    )
    target = Target(settings, emulator)
    result = connection.login(target, browser="headless", show_url=lambda url: None)
    return target, result


def _replay_scopes(requests: Sequence[tuple[str, str, str, str]]) -> tuple[str, ...]:
    """The default scopes plus one scope set for each recorded gateway request the catalog
    knows, so the emulator grants what each replayed call needs."""
    from .. import scopes
    from ..config import DEFAULT_SCOPES

    wanted = DEFAULT_SCOPES.split()
    for base, method, path, _ in requests:
        if base != "api":
            continue
        try:
            alternatives = scopes.required_scopes(method, path)
        except PlaybookError:  # not in the catalog: replayed with the default scopes
            continue
        wanted += alternatives[0] if alternatives else ()
    return tuple(dict.fromkeys(wanted))


def compare_with_emulator(record: Record) -> Comparison:
    """Replay ``record``'s read-only requests against a fresh in-process emulator, filled with
    the emulator's own ids (the consented site's cloud id, the account id), and diff shapes.

    A record keeps query parameter names, never their values, so requests go without a query.
    """
    from ..emulator import Emulator

    grouped = record.by_request()
    labels = {request: next(iter(answers.values())).label for request, answers in grouped.items()}
    replayed, skipped = [], []
    with Emulator(auto_consent=True) as emulator:
        target, login = login_headless(emulator, _replay_scopes(sorted(grouped)))
        settings = target.settings
        values = {
            "accountid": login.entry.account_id,
            "cloudid": (login.entry.site or {}).get("id"),
        }
        token = login.entry.tokens.access_token
        recorder = Recorder.for_settings(settings)
        with recorder.recording(), new_client(timeout=30) as http:
            for request in sorted(grouped):
                base, method, path, auth = request
                unknown = [n for n in FILLED.findall(path) if not values.get(n)]
                if method != "GET":
                    skipped.append((labels[request], "only read-only GET requests are replayed"))
                elif auth not in ("bearer", "none"):
                    skipped.append((labels[request], f"{auth} authentication is not replayed"))
                elif unknown:
                    skipped.append(
                        (labels[request], f"the emulator has no value for {{{unknown[0]}}}")
                    )
                else:
                    headers = {"Accept": "application/json"}
                    if auth == "bearer":
                        headers["Authorization"] = f"Bearer {token.reveal()}"
                    url = settings.auth_base_url if base == "auth" else settings.api_base_url
                    http.request(
                        method, url + FILLED.sub(lambda m: values[m[1]], path), headers=headers
                    )
                    replayed.append(request)
        actual = recorder.record("emulator")
    expected = Record(record.target, tuple(e for e in record.exchanges if e.request in replayed))
    return Comparison(record.target, diff(expected, actual), [labels[r] for r in replayed], skipped)


def record_read_only_calls(target: Target, *, account_id: str | None = None) -> VerificationReport:
    """The read-only calls ``verify`` makes (accessible-resources, ``/me``, Jira myself,
    Confluence spaces), plus Jira's serverInfo, over the stored connection: run inside
    :meth:`Recorder.recording` so a record holds authenticated shapes. A failed call is an
    answer too (recorded); the returned report says which checks failed."""
    from .. import connection

    report = connection.verify(target, account_id=account_id)
    site = report.chosen_site
    if site is not None and "jira" in site.products:
        with (
            target.api_client(account_id=account_id) as api,
            contextlib.suppress(PlaybookError),
        ):  # its answer is recorded either way
            api.jira_server_info(site.id)
    return report
