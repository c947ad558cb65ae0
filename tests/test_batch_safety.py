"""A batch plan is input from someone else: it is checked whole before anything runs or is written.

Secrets at any depth are refused without being echoed, the notebook must live next to the plan
(or in notebooks/), the run count is bounded, workers and timeouts are positive, a bad Dask
address is named at once, and a batch killed with SIGKILL takes its processes with it.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

from atlassian_playbook.batch import PlanError, load_plan, run_batch
from atlassian_playbook.batch.plan import DEFAULT_MAX_RUNS, plan_from_dict
from atlassian_playbook.batch.workspace import known_secrets, seed_emulator_workspace
from atlassian_playbook.errors import PlaybookError
from atlassian_playbook.execute import NOTEBOOKS_DIR

from .conftest import assert_no_secrets
from .test_batch import write_notebook

CLIENT_SECRET = "plan-safety-client-secret-0123456789"
LOOKS_SECRET = "a-value-under-a-secret-name-4242"


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ATLASSIAN_")}
    return subprocess.run([sys.executable, "-m", "atlassian_playbook", *args], cwd=cwd,
                          env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def plan_dir(tmp_path):
    """The plan's folder, with a notebook taking any parameter. A plan written here holds a
    secret by design (it is the test's input, as .env is), so it is deleted afterwards to
    keep the session's scan of written files meaningful."""
    folder = tmp_path / "plan"
    folder.mkdir()
    write_notebook(folder / "p.ipynb", "value = 1\nopts = []\nnested = {}\nworkspace = ''",
                   "print(value, opts, nested)")
    yield folder
    for plan in folder.glob("*.yaml"):
        plan.unlink()


@pytest.fixture
def workspace(tmp_path):
    """A workspace whose .env holds a client secret (a test double nobody listens on)."""
    folder = tmp_path / "ws"
    folder.mkdir()
    (folder / ".env").write_text(
        "ATLASSIAN_CLIENT_ID=app\n"
        f"ATLASSIAN_CLIENT_SECRET={CLIENT_SECRET}\n"
        "ATLASSIAN_AUTH_BASE_URL=http://127.0.0.1:9/\nATLASSIAN_API_BASE_URL=http://127.0.0.1:9/\n")
    return folder


def write_plan(folder: Path, run: dict, name: str = "plan") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "notebook": "p.ipynb", "runs": [run]}))
    return path


# --- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("run", "path", "secret"), [
    ({"value": CLIENT_SECRET}, "runs[0].parameters.value", CLIENT_SECRET),
    ({"opts": [1, CLIENT_SECRET]}, "runs[0].parameters.opts[1]", CLIENT_SECRET),
    ({"nested": {"a": {"b": CLIENT_SECRET}}}, "runs[0].parameters.nested.a.b", CLIENT_SECRET),
    ({"nested": {"a": [{"access_token": LOOKS_SECRET}]}},
     "runs[0].parameters.nested.a[0].access_token", LOOKS_SECRET),
], ids=["flat", "in-a-list", "in-a-map", "secret-like-nested-key"])
def test_cli_refuses_a_secret_anywhere_in_a_plan_without_echoing_it(
        plan_dir, workspace, run, path, secret):
    plan = write_plan(plan_dir, {"workspace": str(workspace), **run})
    out = plan_dir.parent / "out"
    done = cli("batch", str(plan), "--workers", "1", "--progress", "none", "--output", str(out),
               cwd=plan_dir.parent)

    assert done.returncode == 1, done.stderr
    assert path in done.stderr and "refused" in done.stderr, done.stderr
    assert "unexpected" not in done.stderr
    assert not out.exists()  # refused before the batch folder, its journal or a report existed
    written = [p for p in plan_dir.parent.rglob("*")
               if p.is_file() and p not in (plan, workspace / ".env")]
    assert_no_secrets([done.stdout, done.stderr, *written], {secret})


def test_cli_refuses_the_environments_client_secret_in_a_run_without_workspace(plan_dir):
    plan = write_plan(plan_dir, {"opts": [CLIENT_SECRET]})
    out = plan_dir.parent / "out"
    done = cli("batch", str(plan), "--progress", "none", "--output", str(out),
               cwd=plan_dir.parent,
               env={"ATLASSIAN_CLIENT_ID": "app", "ATLASSIAN_CLIENT_SECRET": CLIENT_SECRET})
    assert done.returncode == 1, done.stderr
    assert "runs[0].parameters.opts[0]" in done.stderr
    assert not out.exists()
    assert_no_secrets([done.stdout, done.stderr], {CLIENT_SECRET})


def test_a_stored_token_nested_in_a_product_is_refused_and_nothing_is_written(plan_dir, tmp_path):
    store_ws = tmp_path / "seeded"
    entry = seed_emulator_workspace(store_ws)
    token = entry.tokens.refresh_token.reveal()
    plan = plan_dir / "product.yaml"
    plan.write_text(yaml.safe_dump({"notebook": "p.ipynb", "parameters": {"workspace": "../seeded"},
                                    "product": {"value": [1, 2], "nested": [{"a": {"b": token}}]}}))
    with pytest.raises(PlanError) as refused:
        run_batch(plan, output_dir=tmp_path / "out", progress="none")
    assert "runs[0].parameters.nested.a.b" in refused.value.message
    assert not (tmp_path / "out").exists()
    assert_no_secrets([refused.value.one_line()], known_secrets(store_ws))


@pytest.mark.parametrize(("run", "message"), [
    ({"nested": {CLIENT_SECRET: 1}}, "A key of runs[0].parameters.nested is a secret"),
    ({"opts": [f"https://example.test/?q={CLIENT_SECRET}"]},
     "The value of runs[0].parameters.opts[0] is a secret"),
], ids=["a-key", "inside-a-longer-value"])
def test_a_secret_as_a_key_or_inside_a_value_is_refused_by_its_path(
        plan_dir, workspace, run, message):
    plan = write_plan(plan_dir, {"workspace": str(workspace), **run})
    with pytest.raises(PlanError) as refused:
        load_plan(plan)
    assert message in refused.value.message
    assert CLIENT_SECRET not in refused.value.one_line()


# --- the notebook and the name stay in their folders -----------------------------------------


def test_a_notebook_outside_the_plans_folder_and_notebooks_is_refused(tmp_path, plan_dir):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    outside = write_notebook(elsewhere / "other.ipynb", "value = 1", "print(value)")
    (plan_dir / "sub").mkdir()
    write_notebook(plan_dir / "sub" / "inner.ipynb", "value = 1", "print(value)")
    (plan_dir / "link.ipynb").symlink_to(outside)
    (plan_dir / "sub" / "inside-link.ipynb").symlink_to(plan_dir / "p.ipynb")

    for notebook in ("../elsewhere/other.ipynb", str(outside), "link.ipynb",
                     "sub/../../elsewhere/other.ipynb"):
        with pytest.raises(PlanError, match="outside the plan's folder") as refused:
            plan_from_dict({"notebook": notebook, "runs": [{}]}, base_dir=plan_dir)
        assert refused.value.hint and "notebooks/" in refused.value.hint

    assert plan_from_dict({"notebook": "sub/inner.ipynb", "runs": [{}]},
                          base_dir=plan_dir).notebook == plan_dir / "sub" / "inner.ipynb"
    assert plan_from_dict({"notebook": "sub/inside-link.ipynb", "runs": [{}]},
                          base_dir=plan_dir).notebook == plan_dir / "p.ipynb"
    bundled = plan_from_dict({"notebook": "11-health-check.ipynb", "runs": [{}]},
                             base_dir=plan_dir)
    assert bundled.notebook == (NOTEBOOKS_DIR / "11-health-check.ipynb").resolve()


@pytest.mark.parametrize("name", ["../../escape", "a/b", "..", "/tmp/x"])
def test_a_plan_name_is_one_folder_name(plan_dir, name):
    with pytest.raises(PlanError, match="not a plain folder name"):
        plan_from_dict({"name": name, "notebook": "p.ipynb", "runs": [{}]}, base_dir=plan_dir)


# --- how many runs ----------------------------------------------------------------------------


def test_a_huge_product_is_refused_without_expanding_it(plan_dir):
    # 10**15 runs: expanding them first would exhaust memory long before any check.
    product = {f"p{i}": list(range(10)) for i in range(15)}
    with pytest.raises(PlanError, match=rf"{10**15} runs, more than the limit of "
                                        rf"{DEFAULT_MAX_RUNS}") as refused:
        plan_from_dict({"notebook": "p.ipynb", "product": product}, base_dir=plan_dir)
    assert "--max-runs" in refused.value.hint


def test_max_runs_raises_the_limit_and_run_batch_checks_it_before_starting(plan_dir, tmp_path):
    product = {"value": list(range(101)), "opts": [[i] for i in range(100)]}  # 10,100 runs
    path = plan_dir / "big.yaml"
    path.write_text(yaml.safe_dump({"notebook": "p.ipynb", "product": product}))
    with pytest.raises(PlanError, match="10100 runs"):
        load_plan(path)
    plan = load_plan(path, max_runs=10_100)
    assert len(plan.runs) == 10_100 and math.prod(map(len, product.values())) == 10_100

    with pytest.raises(PlanError, match="10100 runs, more than the limit of 10000"):
        run_batch(plan, output_dir=tmp_path / "out", progress="none")
    runs = plan_dir / "runs.yaml"
    runs.write_text(yaml.safe_dump({"notebook": "p.ipynb",
                                    "runs": [{"value": 1}, {"value": 2}, {"value": 3}]}))
    with pytest.raises(PlanError, match="3 runs, more than the limit of 2"):
        run_batch(runs, output_dir=tmp_path / "out", progress="none", max_runs=2)
    assert not (tmp_path / "out").exists()


# --- workers and timeouts ---------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    {"workers": 0}, {"workers": -2}, {"workers": True}, {"workers": 1.5},
    {"timeout": 0}, {"timeout": -5}, {"timeout": math.nan}, {"timeout": math.inf},
    {"max_runs": 0},
], ids=lambda options: "-".join(f"{k}={v}" for k, v in options.items()))
def test_workers_timeout_and_max_runs_must_be_positive(plan_dir, tmp_path, options):
    plan = write_plan(plan_dir, {"value": 1})
    with pytest.raises(PlanError, match="must be a positive") as refused:
        run_batch(plan, output_dir=tmp_path / "out", progress="none", **options)
    assert refused.value.hint
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("timeout", [".nan", ".inf", "-1", "0", "'ten'"])
def test_a_plans_own_timeout_must_be_positive_and_finite(plan_dir, timeout):
    path = plan_dir / "t.yaml"
    path.write_text(f"notebook: p.ipynb\ntimeout: {timeout}\nruns: [{{value: 1}}]\n")
    with pytest.raises(PlanError, match="`timeout` must be a positive number of seconds"):
        load_plan(path)


# --- Dask scheduler address -------------------------------------------------------------------


@pytest.mark.parametrize(("address", "problem"), [
    ("tcp://127.0.0.1", "has no port"),
    ("tcp://127.0.0.1:70000", "outside 1-65535"),
    ("tcp://127.0.0.1:0", "outside 1-65535"),
    ("tcp://127.0.0.1:-5", "outside 1-65535"),
    ("http://127.0.0.1:8786", "unknown scheme"),
    ("tcp://:8786", "not SCHEME://HOST:PORT"),
    ("tcp://127.0.0.1:8786/path", "not SCHEME://HOST:PORT"),
])
def test_a_bad_scheduler_address_is_named_before_any_connection(address, problem):
    pytest.importorskip("distributed")
    from atlassian_playbook.batch.dask_cluster import DaskExecutor

    with pytest.raises(PlanError, match=problem) as refused:
        DaskExecutor(scheduler=address)
    assert "--scheduler tcp://HOST:PORT" in refused.value.hint


def test_a_scheduler_address_without_scheme_is_tcp():
    pytest.importorskip("distributed")
    from atlassian_playbook.batch.dask_cluster import scheduler_address

    assert scheduler_address("127.0.0.1:8786") == "tcp://127.0.0.1:8786"
    assert scheduler_address("tls://[::1]:8786") == "tls://[::1]:8786"


def test_cli_dask_without_port_fails_at_once_with_a_hint(plan_dir):
    pytest.importorskip("distributed")
    plan = write_plan(plan_dir, {"value": 1})
    # timeout: a generous bound on the whole command; the hang it guards against was 30 s
    # of a half-built Dask client closing at exit, which printed a traceback.
    done = cli("batch", str(plan), "--executor", "dask", "--scheduler", "tcp://127.0.0.1",
               "--output", str(plan_dir / "out"), cwd=plan_dir, timeout=120)
    assert done.returncode == 1
    assert "has no port" in done.stderr and "hint: Pass --scheduler" in done.stderr
    assert "unexpected" not in done.stderr and "Traceback" not in done.stderr
    assert not (plan_dir / "out").exists()


def test_a_scheduler_nobody_listens_on_fails_and_leaves_no_client_behind():
    pytest.importorskip("distributed")
    from atlassian_playbook.batch.dask_cluster import DaskExecutor

    with socket.socket() as sock:  # a loopback port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    before = set(threading.enumerate())
    executor = DaskExecutor(scheduler=f"tcp://127.0.0.1:{port}", connect_timeout=1)
    with pytest.raises(PlaybookError, match="Cannot reach the Dask scheduler") as refused:
        executor.start()
    assert "dask scheduler" in refused.value.hint
    # The half-built client's event-loop thread was stopped, not left for exit to reap.
    assert [t.name for t in set(threading.enumerate()) - before if t.is_alive()] == []


# --- a killed batch takes its processes with it -----------------------------------------------


def wait_for(condition, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling a condition, not timing anything


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE  # dead, waiting for init to reap it
    except psutil.NoSuchProcess:
        return True


@pytest.mark.xdist_group("batch")
def test_sigkill_of_the_batch_ends_its_workers_forkserver_and_kernels(tmp_path):
    folder = tmp_path / "plan"
    folder.mkdir()
    write_notebook(
        folder / "block.ipynb", "marker = ''",
        "import os, subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)'])\n"
        "with open(marker + '.tmp', 'w') as f:\n"
        "    f.write(f'{os.getpid()} {child.pid}')\n"
        "os.replace(marker + '.tmp', marker)",
        "import time\ntime.sleep(3600)  # blocks until the kernel is killed",
    )
    markers = [tmp_path / f"kernel-{i}" for i in range(2)]
    plan = folder / "block.json"
    plan.write_text(json.dumps({"notebook": "block.ipynb",
                                "runs": [{"marker": str(m)} for m in markers]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATLASSIAN_")}
    batch = subprocess.Popen(
        [sys.executable, "-m", "atlassian_playbook", "batch", str(plan), "--workers", "2",
         "--progress", "none", "--output", str(tmp_path / "out")],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    descendants: list[psutil.Process] = []
    try:
        wait_for(lambda: all(m.exists() for m in markers) or batch.poll() is not None,
                 "both kernels to start")
        assert batch.poll() is None, "the batch ended before its kernels blocked"
        descendants = psutil.Process(batch.pid).children(recursive=True)
        pids = {p.pid for p in descendants}
        started = {int(pid) for m in markers for pid in m.read_text().split()}
        assert started <= pids  # the kernels and what they started are the batch's
        assert any("forkserver" in " ".join(p.cmdline()) for p in descendants)

        os.kill(batch.pid, signal.SIGKILL)
        batch.wait(timeout=60)
        wait_for(lambda: all(gone(p) for p in descendants),
                 "the killed batch's processes to end", seconds=60)
    finally:
        for process in descendants:  # never leave orphans behind, pass or fail
            try:
                process.kill()
            except psutil.Error:
                pass
        if batch.poll() is None:
            batch.kill()
