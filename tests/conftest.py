"""Shared fixtures: a clean environment, the real emulator on loopback, the secret scan, and
the ``parity`` marker's fixture (``parity_recorder``, in ``tests/parity/plugin.py``).

Every test that produces output (CLI text, files, notebooks) can hand it to
:func:`assert_no_secrets` with the secrets that were in play: the client secret and every
token the emulator issued (read back from the token store, the one place they may live).
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from filelock import FileLock

from atlassian_playbook.callback import claimed_callback_url
from atlassian_playbook.emulator import Emulator, StateFileError, read_state

from .parity.plugin import parity_recorder  # noqa: F401  (the parity marker's fixture)


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C as a terminal delivers it. A suite started in the background by a
    non-interactive shell (or a benchmark harness) inherits SIGINT ignored, and passes it on
    to every process it starts: the Ctrl-C tests would then fail for a reason that is not
    the code's, and a SIGINT would stop no emulator."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def free_port() -> int:
    """A loopback port nothing listens on, for a callback URL a test listens on later.

    The one a headless build would claim instead of a busy default
    (:func:`~atlassian_playbook.callback.claimed_callback_url`, port 0): below the kernel's
    ephemeral range, because a port from ``bind(("127.0.0.1", 0))`` is exactly the kind
    another process (a second suite's emulator on a shared CI machine) may get from its own
    ``bind(0)`` a moment later, and the test's listener then finds it taken; and not one a
    build holds.
    """
    with claimed_callback_url("http://127.0.0.1:0/callback") as url:
        return urlsplit(url).port


def loopback_callback(emulator) -> str:
    """A callback URL on a free loopback port, registered on ``emulator``'s app: a headless
    login listens on it, where the default 8765 may be another suite's on a shared machine."""
    callback = f"http://127.0.0.1:{free_port()}/callback"
    emulator.add_callback_url(callback)
    return callback


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch):
    """No ATLASSIAN_* setting of the developer's shell may leak into a test."""
    for name in list(os.environ):
        if name.startswith("ATLASSIAN_"):
            monkeypatch.delenv(name)


@pytest.fixture
def emulator():
    with Emulator(auto_consent=True) as emu:
        yield emu


@pytest.fixture
def emu():
    """An emulator that shows its consent page, for tests that play the person."""
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def http():
    # trust_env=False: never route loopback traffic through a proxy from the environment.
    with httpx.Client(trust_env=False, timeout=30) as client:
        yield client


def secrets_in_store(store_path: Path) -> set[str]:
    """Every access and refresh token held by a token store file."""
    found: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("access_token", "refresh_token") and isinstance(value, str):
                    found.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    try:
        walk(json.loads(Path(store_path).read_text()))
    except (FileNotFoundError, ValueError):  # absent, or a test's deliberately corrupt store
        pass
    return found


def assert_no_secrets(outputs: Iterable[str | Path], secrets: Iterable[str]) -> None:
    """Fail if any secret appears in any output text or file (recursively for folders)."""
    secrets = {s for s in secrets if s}
    assert secrets, "the scan needs at least one secret to look for"
    texts: list[tuple[str, str]] = []
    for item in outputs:
        if isinstance(item, Path):
            files = [p for p in item.rglob("*") if p.is_file()] if item.is_dir() else [item]
            texts += [(str(p), p.read_text(errors="replace")) for p in files]
        else:
            texts.append(("<text>", item))
    for where, text in texts:
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {where}"


def built_once(tmp_path_factory, worker_id: str, name: str,
               build: Callable[[Path], None]) -> Path:
    """The folder ``build`` filled, built once in the whole session by whichever xdist worker
    asks first; the others wait for it on a lock and read the same folder.

    For what several test files only read (one demo run, say): each file then asserts on it
    without executing the playbook again. The folder lives in the builder's own temp folder,
    so that worker's end-of-session secret scan covers it. A build that raises writes no
    pointer, and the next worker to ask builds again (and fails the same way, with its error).
    """
    base = tmp_path_factory.getbasetemp()
    pointer = (base.parent if worker_id != "master" else base) / f"built-once-{name}.json"
    with FileLock(f"{pointer}.lock"):
        if pointer.exists():
            return Path(json.loads(pointer.read_text())["folder"])
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        pointer.write_text(json.dumps({"folder": str(folder)}))
    return folder


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, worker_id) -> tuple[subprocess.CompletedProcess, Path]:
    """One `atlassian-playbook demo --output out` in a fresh folder (its cwd), and that folder,
    for every test that reads what the demo printed and wrote: the playbook executes once a
    session, not once per test."""
    from .test_cli import cli_env, run_cli

    def build(folder: Path) -> None:
        result = run_cli(["demo", "--output", "out"], cli_env(folder), folder, timeout=600)
        (folder / "demo-run.json").write_text(json.dumps(
            {"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr}))

    folder = built_once(tmp_path_factory, worker_id, "demo", build)
    run = json.loads((folder / "demo-run.json").read_text())
    return subprocess.CompletedProcess(["demo"], run["returncode"], run["stdout"],
                                       run["stderr"]), folder


@pytest.fixture(scope="session")
def site_build(tmp_path_factory, worker_id):
    """`render --profile all` once a session (a :class:`~atlassian_playbook.render.SiteResult`,
    each profile's scratch workspace kept): for the browser tests of the site and the render
    tests, which only read it."""
    from atlassian_playbook.profiles import profile_names
    from atlassian_playbook.render import render_site

    def build(folder: Path) -> None:
        result = render_site(folder / "site", profile_names(), keep_workspace=True)
        (folder / "site-result.pickle").write_bytes(pickle.dumps(result))

    folder = built_once(tmp_path_factory, worker_id, "site", build)
    return pickle.loads((folder / "site-result.pickle").read_bytes())


# Files that hold secrets by design: the token store, the emulator's state (client secrets in
# clear for its admin endpoint), .env (the client secret line) and lock files.
_SECRET_HOMES = ("tokens.json", "emulator-state.json", ".env")


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_anything_the_tests_wrote(tmp_path_factory):
    """After the session: every file the tests wrote, outside the places secrets live by
    design, is scanned for every secret in play — each Secret this process created, every
    token in any token store and every client secret in any emulator state of the run."""
    yield
    from atlassian_playbook import redact

    base = tmp_path_factory.getbasetemp()
    secrets = set(redact._registered)
    for store in base.rglob("tokens.json"):
        secrets |= secrets_in_store(store)
    for state in base.rglob("emulator-state.json"):
        try:
            data = read_state(state)
        except StateFileError:  # the corrupt-state tests write such files on purpose
            continue
        clients = data.get("clients") if isinstance(data, dict) else None
        if isinstance(clients, dict):
            secrets |= {c.get("client_secret") for c in clients.values()
                        if isinstance(c, dict) and c.get("client_secret")}
        world = data.get("world") if isinstance(data, dict) else None
        accounts = world.get("service_accounts") if isinstance(world, dict) else None
        if isinstance(accounts, list):  # the service accounts' credentials
            secrets |= {a.get("client_secret") for a in accounts
                        if isinstance(a, dict) and a.get("client_secret")}
    secrets = {s for s in secrets if len(s) >= 12}
    leaks = []
    for path in base.rglob("*"):
        if not path.is_file() or path.name in _SECRET_HOMES or path.suffix == ".lock":
            continue
        text = path.read_text(errors="replace")
        if any(secret in text for secret in secrets):
            leaks.append(str(path.relative_to(base)))
    assert not leaks, f"secrets found in files the tests wrote: {leaks}"


# The longest files first: with `-n 2 --dist loadfile` a worker takes a whole file at a time,
# so a long file collected last would run alone at the end while the other worker idles. The
# site build comes first so that the render tests, much later, read it without waiting.
_LONGEST_FIRST = ("test_site_browser.py", "test_wheel.py", "test_batch.py", "test_notebooks.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return _LONGEST_FIRST.index(name) if name in _LONGEST_FIRST else len(_LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a file, and among the rest, the collected order
