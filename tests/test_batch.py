"""The batch runner end to end: real papermill runs in real kernels, against the emulator.

Fixture notebooks (written here) make failures, timeouts and lost workers happen on purpose;
the health-check runs use the playbook's own notebook 11 on emulator workspaces seeded with one
login each. No test measures speed: ordering facts (run windows) are read from the results.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from atlassian_playbook.batch import PlanError, load_plan, plan_from_store, run_batch
from atlassian_playbook.batch.plan import plan_from_dict
from atlassian_playbook.batch.progress import live_summary_html
from atlassian_playbook.batch.results import RunResult
from atlassian_playbook.batch.workspace import (
    known_secrets,
    seed_emulator_workspace,
    store_entries,
    token_entry_key,
)
from atlassian_playbook.execute import NOTEBOOKS_DIR, run_notebook

from .conftest import assert_no_secrets

REPO = Path(__file__).resolve().parents[1]
HEALTH = NOTEBOOKS_DIR / "11-health-check.ipynb"
FAIL_CELL = 4  # in the executed notebook: parameters, injected parameters, record, kill, fail
FAIL_SOURCE = "from atlassian_playbook.errors import PlaybookError"


def write_notebook(path: Path, parameters: str, *cells: str) -> Path:
    notebook = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell(parameters)
    first.metadata["tags"] = ["parameters"]
    notebook.cells = [first, *(nbformat.v4.new_code_cell(c) for c in cells)]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)
    return path


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("notebooks")
    write_notebook(
        folder / "params.ipynb",
        'value = 1\nfail = False\nkill = False\nmarker = ""',
        "from atlassian_playbook.records import record\n"
        "record('double', value * 2)\n"
        "if marker:\n"
        "    with open(marker, 'a') as f:\n"
        "        f.write('started\\n')",
        "import os, signal\n"
        "if kill:  # the worker process that runs this kernel dies\n"
        "    os.kill(os.getppid(), signal.SIGKILL)",
        "from atlassian_playbook.errors import PlaybookError\n"
        "if fail:\n"
        "    raise PlaybookError(f'Value {value} is refused.', 'Choose another value.')",
    )
    # Eight cells: a run whose every cell is under the limit can still be far over it in all.
    write_notebook(folder / "sleeps.ipynb", "seconds = 0",
                   *["import time\ntime.sleep(seconds)"] * 8)
    return folder


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory) -> list[Path]:
    """Two emulator workspaces, one login (one token-store entry) each."""
    root = tmp_path_factory.mktemp("workspaces")
    for name in ("acme", "globex"):
        seed_emulator_workspace(root / name)
    return [root / "acme", root / "globex"]


def copy_notebook(notebooks: Path, name: str, folder: Path) -> Path:
    """The fixture notebook ``name`` next to a plan written in ``folder`` (a plan may only
    run a notebook in its own folder or in notebooks/)."""
    copy = folder / name
    copy.write_bytes((notebooks / name).read_bytes())
    return copy


def params_plan(notebooks: Path, **product) -> object:
    return plan_from_dict({"notebook": "params.ipynb", "product": product},
                          base_dir=notebooks, default_name="params")


def windows_overlap(a: RunResult, b: RunResult) -> bool:
    return a.started < b.finished and b.started < a.finished


# --- plans (no kernels) -----------------------------------------------------------------------


def test_plan_expands_product_resolves_workspaces_and_gives_stable_ids(tmp_path, notebooks):
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump({
        "name": "p", "notebook": str(copy_notebook(notebooks, "params.ipynb", tmp_path)),
        "timeout": 30,
        "parameters": {"workspace": "ws"},
        "product": {"value": [1, 2], "fail": [False, True]},
    }, sort_keys=False))
    plan = load_plan(tmp_path / "plan.yaml")
    assert [(r["value"], r["fail"]) for r in plan.runs] == [
        (1, False), (1, True), (2, False), (2, True)]
    assert {r["workspace"] for r in plan.runs} == {str((tmp_path / "ws").resolve())}
    specs = plan.specs(tmp_path / "out")
    assert len({s.run_id for s in specs}) == 4
    assert [s.run_id for s in plan.specs(tmp_path / "elsewhere")] == [s.run_id for s in specs]
    assert all(s.timeout == 30 and Path(s.output_path).parent == (tmp_path / "out/runs").resolve()
               for s in specs)

    (tmp_path / "plan.json").write_text(json.dumps({
        "notebook": "params.ipynb", "runs": [{"value": 1}, {"value": 1}]}))
    with pytest.raises(PlanError, match="same parameters"):
        load_plan(tmp_path / "plan.json")
    with pytest.raises(PlanError, match="looks like a secret"):
        plan_from_dict({"notebook": "params.ipynb", "runs": [{"client_secret": "x" * 20}]},
                       base_dir=notebooks)
    with pytest.raises(PlanError, match="Unknown plan key"):
        plan_from_dict({"notebook": "params.ipynb", "run": []}, base_dir=notebooks)
    with pytest.raises(PlanError, match="both `runs` and `product`"):
        plan_from_dict({"notebook": "params.ipynb", "runs": [{}], "product": {"value": [1]}},
                       base_dir=notebooks)


def test_example_plans_are_valid():
    yaml_plan = load_plan(REPO / "examples" / "batch-plan.yaml")
    json_plan = load_plan(REPO / "examples" / "batch-plan.json")
    for plan in (yaml_plan, json_plan):
        assert plan.notebook == HEALTH.resolve()
        assert len(plan.runs) == 2
        assert all(Path(r["workspace"]).is_absolute() for r in plan.runs)


def test_from_store_runs_each_entry_and_keys_runs_by_entry(tmp_path, workspaces):
    plan = plan_from_store(workspaces)
    assert plan.notebook.name == "11-health-check.ipynb"
    assert [Path(r["workspace"]) for r in plan.runs] == workspaces
    account = plan.runs[0]["account_id"]
    assert account
    acme = str(workspaces[0])
    # Naming the account or leaving it to "the only entry" is the same entry.
    assert token_entry_key({"workspace": acme}) == token_entry_key(
        {"workspace": acme, "account_id": account})
    assert token_entry_key({"workspace": acme}) != token_entry_key(
        {"workspace": str(workspaces[1])})
    assert token_entry_key({"value": 1}) is None
    (tmp_path / "empty").mkdir()
    with pytest.raises(PlanError, match="No token-store entries"):
        plan_from_store([tmp_path / "empty"])


def test_from_store_reads_each_workspace_once_and_still_refuses_its_secrets(workspaces,
                                                                           monkeypatch):
    from atlassian_playbook.tokens import TokenStore

    reads: list[Path] = []
    listed = TokenStore.list

    def counted(store):
        reads.append(store.path)
        return listed(store)

    monkeypatch.setattr(TokenStore, "list", counted)
    plan_from_store(workspaces)
    # Each workspace's entries and secrets from one read of its store (the runs' entry keys
    # name the account, so they read none; the current folder's store is read as well).
    stores = [w / ".playbook" / "tokens.json" for w in workspaces]
    assert sorted(path for path in reads if path in stores) == sorted(stores)
    (entry,) = store_entries(workspaces[1])
    token = entry.tokens.refresh_token.reveal()
    with pytest.raises(PlanError, match="secret known to this run") as refused:
        plan_from_store(workspaces, parameters={"note": token})
    assert token not in refused.value.one_line()


@pytest.mark.parametrize("env", [
    "",  # no credentials: the embedded emulator, the workspace's store
    "ATLASSIAN_CLIENT_ID=app\nATLASSIAN_CLIENT_SECRET=s3cret-value-123\n"
    "ATLASSIAN_AUTH_BASE_URL=http://127.0.0.1:9/\nATLASSIAN_API_BASE_URL=http://127.0.0.1:9/\n",
    "ATLASSIAN_CLIENT_ID=app\nATLASSIAN_CLIENT_SECRET=s3cret-value-123\n",  # real Atlassian
    "ATLASSIAN_TOKEN_STORE={root}/shared/tokens.json\n",
], ids=["emulator", "test-double", "atlassian", "configured-store"])
def test_runner_finds_the_store_the_notebook_will_open(tmp_path, env):
    import atlassian_playbook.playbook as pb
    from atlassian_playbook.batch.workspace import workspace_settings

    (tmp_path / ".env").write_text(env.format(root=tmp_path))
    opened = pb.start(tmp_path, quiet=True).settings
    assert workspace_settings(tmp_path).token_store == opened.token_store


def test_importing_the_package_and_batch_loads_neither_dask_nor_papermill():
    code = (
        "import sys, atlassian_playbook, atlassian_playbook.batch, atlassian_playbook.cli\n"
        "atlassian_playbook.cli.build_parser()\n"
        "heavy = ('papermill', 'dask', 'distributed', 'ipywidgets', 'jupyter_client', 'nbclient')\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_dask_executor_without_dask_says_how_to_install_it():
    code = (
        "import sys\n"
        "sys.modules['distributed'] = None  # as if dask[distributed] were not installed\n"
        "from atlassian_playbook.batch.executors import create_executor\n"
        "from atlassian_playbook.errors import PlaybookError\n"
        "try:\n"
        "    create_executor('dask', scheduler='tcp://127.0.0.1:1')\n"
        "except PlaybookError as error:\n"
        "    print(error.one_line())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "Dask is not installed" in out.stdout
    assert "pip install 'atlassian-oauth-playbook[dask]'" in out.stdout


def test_live_summary_counts_statuses_and_shows_hints():
    results = [
        RunResult(0, "a", "n.ipynb", {"value": 1}, "ok", started=1.0, finished=2.5),
        RunResult(1, "b", "n.ipynb", {"value": 2}, "failed", started=1.0, finished=2.0,
                  failure={"cell": 4, "error": "E", "message": "m", "hint": "Do this."}),
    ]
    page = live_summary_html(results, total=5)
    assert "2/5 runs" in page and "<b>failed</b>: 1" in page and "<b>ok</b>: 1" in page
    assert "Do this." in page and "1.5 s" in page


# --- local runs -------------------------------------------------------------------------------


@pytest.mark.xdist_group("batch")
def test_batch_reports_statuses_failing_cell_hint_and_records(tmp_path, notebooks):
    plan = params_plan(notebooks, value=[1, 2], fail=[False, True])
    summary = run_batch(plan, output_dir=tmp_path / "out", workers=2, progress="none")

    assert summary.counts == {"ok": 2, "failed": 2}
    assert summary.exit_code == 1
    data = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert data["counts"] == {"ok": 2, "failed": 2} and data["ok"] is False
    for run in data["runs"]:
        value, fail = run["parameters"]["value"], run["parameters"]["fail"]
        assert run["status"] == ("failed" if fail else "ok")
        assert run["records"] == {"double": value * 2}
        assert run["duration"] > 0
        assert Path(run["output"]).is_file()
        if fail:
            assert run["failure"] == {"cell": FAIL_CELL, "error": "PlaybookError",
                                      "message": f"Value {value} is refused.",
                                      "hint": "Choose another value.",
                                      "execution_count": run["failure"]["execution_count"],
                                      "source": run["failure"]["source"]}
            assert run["failure"]["execution_count"] >= 1  # the In [n] a person sees
            assert run["failure"]["source"] == FAIL_SOURCE  # and the first line of that cell
        else:
            assert run["failure"] is None
    page = (tmp_path / "out" / "summary.html").read_text()
    assert "Choose another value." in page and page.count("href='runs/") == 4
    journal = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["index"] for line in journal) == [0, 1, 2, 3]


@pytest.mark.xdist_group("batch")
def test_cli_batch_exits_non_zero_when_a_run_fails(tmp_path, notebooks):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "name": "cli", "notebook": str(copy_notebook(notebooks, "params.ipynb", tmp_path)),
        "runs": [{"value": 3}, {"value": 4, "fail": True}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATLASSIAN_")}
    done = subprocess.run(
        [sys.executable, "-m", "atlassian_playbook", "batch", str(plan), "--workers", "2",
         "--progress", "none", "--output", str(tmp_path / "out")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert f"failed: run 1 at cell {FAIL_CELL} (In [" in done.stdout
    assert f"]: {FAIL_SOURCE}): Value 4 is refused." in done.stdout
    assert "hint: Choose another value." in done.stdout
    data = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["status"] for r in data["runs"]] == ["ok", "failed"]
    assert (tmp_path / "out" / "summary.html").is_file()


@pytest.mark.xdist_group("batch")
def test_cli_ctrl_c_lets_running_runs_finish_and_keeps_them(tmp_path, notebooks):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"name": "stop",
                                "notebook": str(copy_notebook(notebooks, "params.ipynb", tmp_path)),
                                "product": {"value": list(range(6))}}))
    journal = tmp_path / "out" / "results.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATLASSIAN_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "atlassian_playbook", "batch", str(plan), "--workers", "1",
         "--progress", "none", "--output", str(tmp_path / "out")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not (journal.exists() and journal.read_text()) and process.poll() is None:
        assert time.monotonic() < deadline, "no run finished"
        time.sleep(0.05)  # waiting for the first result, not timing anything
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    stdout, stderr = process.communicate(timeout=120)

    assert process.returncode == 130, stderr
    data = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert data["interrupted"] is True
    statuses = [r["status"] for r in data["runs"]]
    assert statuses.count("ok") >= 1 and statuses.count("cancelled") >= 1
    assert set(statuses) == {"ok", "cancelled"}  # the run in flight finished, nothing broke
    assert len(journal.read_text().splitlines()) == statuses.count("ok")
    assert "not started (stopped)" in stdout


@pytest.mark.xdist_group("batch")
def test_cli_from_store_checks_every_entry_and_exits_zero(tmp_path, workspaces):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATLASSIAN_")}
    done = subprocess.run(
        [sys.executable, "-m", "atlassian_playbook", "batch", "--from-store",
         "--workspace", str(workspaces[0]), "--workspace", str(workspaces[1]),
         "--workers", "2", "--json", "--output", str(tmp_path / "out")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["notebook"] == "11-health-check.ipynb" and data["counts"] == {"ok": 2}
    assert [r["parameters"]["workspace"] for r in data["runs"]] == [str(w) for w in workspaces]
    assert all(r["records"]["health"]["healthy"] for r in data["runs"])


@pytest.mark.xdist_group("batch")
def test_resume_skips_succeeded_runs_and_reruns_failed_and_changed_ones(tmp_path, notebooks):
    folder = notebooks / "resume"
    folder.mkdir()
    source = write_notebook(folder / "params.ipynb", "value = 1\nfail = False",
                            "from atlassian_playbook.records import record\n"
                            "record('double', value * 2)\n"
                            "assert not fail, 'Told to fail.'")
    plan = plan_from_dict({"notebook": "params.ipynb", "product": {"fail": [False, True]}},
                          base_dir=folder)
    out = tmp_path / "out"
    first = run_batch(plan, output_dir=out, workers=2, progress="none")
    assert [r.status for r in first.results] == ["ok", "failed"]

    second = run_batch(plan, output_dir=out, workers=2, progress="none", resume=True)
    ok, failed = second.results
    assert ok.status == "ok" and ok.resumed and ok.started == first.results[0].started
    assert failed.status == "failed" and not failed.resumed
    assert failed.started > first.results[1].finished
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 3  # the first two, then the rerun of the failed one

    # The run id includes the notebook's bytes: an edited notebook runs everything again.
    notebook = nbformat.read(source, 4)
    notebook.cells.append(nbformat.v4.new_markdown_cell("Edited."))
    nbformat.write(notebook, source)
    third = run_batch(plan, output_dir=out, workers=2, progress="none", resume=True)
    assert [r.resumed for r in third.results] == [False, False]


@pytest.mark.xdist_group("batch")
def test_timeout_stops_a_blocked_run_and_a_slow_run_while_others_finish(tmp_path, notebooks):
    plan = plan_from_dict({"notebook": "sleeps.ipynb",
                           "runs": [{"seconds": 0}, {"seconds": 600}, {"seconds": 3}]},
                          base_dir=notebooks, default_name="sleeps")
    summary = run_batch(plan, output_dir=tmp_path / "out", workers=2, timeout=5,
                        progress="none")
    quick, blocked, slow = summary.results
    assert quick.status == "ok"
    # One cell blocks: papermill's per-cell limit stops it in that cell (or, on a machine so
    # busy that the kernel took seconds to start, the whole-run watchdog does).
    assert blocked.status == "timeout"
    assert "timeout (5 s)" in blocked.failure["hint"]
    if blocked.failure["error"] == "CellTimeoutError":
        assert blocked.failure["cell"] == 2
        assert blocked.failure["source"] == "import time"
    # Every cell is under the limit but the run is not: the whole-run watchdog stops it.
    assert slow.status == "timeout"
    assert slow.duration < 8 * 3  # stopped long before its cells could all finish
    assert summary.exit_code == 1


def test_a_timed_out_cell_is_named_even_when_its_interrupt_error_never_arrived(tmp_path,
                                                                              notebooks):
    """On a busy machine the kernel can go before the interrupt's error output reaches the
    client (seen once under `make test` x2): the last cell papermill started is the one."""
    from atlassian_playbook.batch.task import _running_cell
    from atlassian_playbook.execute import run_notebook

    out = tmp_path / "sleeps.ipynb"
    outcome = run_notebook(notebooks / "sleeps.ipynb", out, {"seconds": 600}, timeout=3)
    assert outcome.failure.ename == "CellTimeoutError"
    executed = json.loads(out.read_text())
    for cell in executed["cells"]:
        cell["outputs"] = [o for o in cell.get("outputs", []) if o["output_type"] != "error"]
    out.write_text(json.dumps(executed))
    assert _running_cell(out) == (2, 3, "import time")  # the first sleeping cell


@pytest.mark.xdist_group("batch")
def test_cancel_after_the_first_result_keeps_it_and_resume_runs_the_rest(tmp_path, notebooks):
    plan = params_plan(notebooks, value=[1, 2, 3, 4])
    cancel = threading.Event()
    out = tmp_path / "out"
    summary = run_batch(plan, output_dir=out, workers=1, progress="none", cancel=cancel,
                        on_result=lambda result: cancel.set())
    assert [r.status for r in summary.results] == ["ok", "cancelled", "cancelled", "cancelled"]
    assert summary.interrupted and summary.exit_code == 130
    assert len((out / "results.jsonl").read_text().splitlines()) == 1
    assert json.loads((out / "summary.json").read_text())["counts"] == {"ok": 1, "cancelled": 3}

    rest = run_batch(plan, output_dir=out, workers=2, progress="none", resume=True)
    assert [(r.status, r.resumed) for r in rest.results] == [
        ("ok", True), ("ok", False), ("ok", False), ("ok", False)]


@pytest.mark.xdist_group("batch")
def test_ctrl_c_while_a_result_is_recorded_loses_no_finished_run(tmp_path, notebooks):
    sent: list[int] = []

    def ctrl_c_once(result: RunResult) -> None:
        if not sent:  # what a terminal's Ctrl-C does, landing as the first result is recorded
            sent.append(result.index)
            os.kill(os.getpid(), signal.SIGINT)

    out = tmp_path / "out"
    summary = run_batch(params_plan(notebooks, value=[1, 2]), output_dir=out, workers=2,
                        progress="none", on_result=ctrl_c_once)
    # The other run was in flight (or done in the same wait): it finishes and is recorded.
    assert [r.status for r in summary.results] == ["ok", "ok"]
    assert summary.interrupted and summary.exit_code == 130
    assert len((out / "results.jsonl").read_text().splitlines()) == 2


@pytest.mark.xdist_group("batch")
def test_a_lost_local_worker_is_reported_and_the_batch_goes_on(tmp_path, notebooks):
    marker = tmp_path / "started.txt"
    plan = plan_from_dict({"notebook": "params.ipynb", "runs": [
        {"value": 1, "kill": True, "marker": str(marker)}, {"value": 2}, {"value": 3}]},
        base_dir=notebooks)
    summary = run_batch(plan, output_dir=tmp_path / "out", workers=1, progress="none")
    lost, *others = summary.results
    assert lost.status == "lost" and "--resume" in lost.failure["hint"]
    assert [r.status for r in others] == ["ok", "ok"]
    assert marker.read_text() == "started\n"  # run once, never retried


@pytest.mark.xdist_group("batch")
def test_runs_of_one_token_entry_never_overlap_and_all_stay_healthy(tmp_path, workspaces):
    acme, globex = (str(w) for w in workspaces)
    account = plan_from_store(workspaces).runs[0]["account_id"]
    plan = plan_from_dict({"notebook": str(HEALTH), "runs": [
        {"workspace": acme, "account_id": ""}, {"workspace": acme, "account_id": account},
        {"workspace": globex, "account_id": ""}, {"workspace": globex, "account_id": account},
    ]}, default_name="health")
    summary = run_batch(plan, output_dir=tmp_path / "out", workers=2, progress="none")

    assert [r.status for r in summary.results] == ["ok"] * 4, summary.to_text()
    assert all(r.records["health"]["healthy"] and r.records["health"]["rotated"]
               for r in summary.results)
    a1, a2, g1, g2 = summary.results
    assert a1.entry == a2.entry != g1.entry == g2.entry
    assert not windows_overlap(a1, a2)
    assert not windows_overlap(g1, g2)
    secrets = set().union(*(known_secrets(w) for w in workspaces))
    assert_no_secrets([tmp_path / "out"], secrets)


@pytest.mark.xdist_group("batch")
def test_run_batch_from_a_notebook_shows_a_live_summary(tmp_path, notebooks):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"name": "live",
                                "notebook": str(copy_notebook(notebooks, "params.ipynb", tmp_path)),
                                "runs": [{"value": 5}, {"value": 6, "fail": True}]}))
    driver = write_notebook(
        tmp_path / "driver.ipynb", f"plan = {str(plan)!r}\nout = {str(tmp_path / 'out')!r}",
        "from atlassian_playbook.batch import run_batch\n"
        "summary = run_batch(plan, output_dir=out, workers=1, progress='notebook')",
    )
    outcome = run_notebook(driver, tmp_path / "driver-out.ipynb")
    assert outcome.ok, outcome.failure
    executed = nbformat.read(tmp_path / "driver-out.ipynb", 4)
    shown = [o["data"]["text/html"] for o in executed.cells[-1].outputs
             if "text/html" in o.get("data", {})]
    assert len(shown) == 1  # one display, updated in place as runs finished
    assert "2/2 runs" in shown[0] and "Choose another value." in shown[0]


# --- Dask -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        yield cluster


@pytest.mark.xdist_group("dask")
def test_dask_executor_runs_the_plan_and_keeps_one_entry_sequential(
        tmp_path, notebooks, workspaces, dask_cluster):
    summary = run_batch(params_plan(notebooks, value=[1, 2], fail=[False, True]),
                        output_dir=tmp_path / "params", executor="dask",
                        scheduler=dask_cluster.scheduler_address, progress="none")
    assert summary.executor == "dask" and summary.workers == 2
    assert [r.status for r in summary.results] == ["ok", "failed", "ok", "failed"]
    assert all(r.failure["cell"] == FAIL_CELL for r in summary.results if not r.ok)
    # The workers shipped the executed notebooks back; the runner wrote them.
    assert all(Path(r.output).is_file() for r in summary.results)

    acme = str(workspaces[0])
    account = plan_from_store(workspaces).runs[0]["account_id"]
    health = plan_from_dict({"notebook": str(HEALTH), "runs": [
        {"workspace": acme, "account_id": ""}, {"workspace": acme, "account_id": account}]},
        default_name="health")
    summary = run_batch(health, output_dir=tmp_path / "health", executor="dask",
                        scheduler=dask_cluster.scheduler_address, progress="none")
    first, second = summary.results
    assert first.status == second.status == "ok", summary.to_text()
    assert first.entry == second.entry and not windows_overlap(first, second)


@pytest.mark.xdist_group("dask")
def test_dask_never_runs_a_run_twice_when_its_worker_dies(tmp_path, notebooks, dask_cluster):
    marker = tmp_path / "started.txt"
    plan = plan_from_dict({"notebook": "params.ipynb", "runs": [
        {"value": 1, "kill": True, "marker": str(marker)}, {"value": 2}]}, base_dir=notebooks)
    summary = run_batch(plan, output_dir=tmp_path / "out", executor="dask",
                        scheduler=dask_cluster.scheduler_address, progress="none")
    lost, other = summary.results
    assert lost.status == "lost", summary.to_text()
    # Dask did schedule it again (allowed-failures); the second attempt refused to run.
    assert lost.failure["error"] == "WorkerLost"
    assert other.status == "ok"
    assert marker.read_text() == "started\n"  # Dask rescheduled it, but it did not run again
