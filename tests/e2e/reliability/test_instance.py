"""The Dagster instance and the run queue under concurrency and killed processes: first use of
a new home from several commands at once, a damaged home, runs whose process was killed, what
they leave in the artifacts folder, and a demo data set generation killed half-way."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import duckdb
import psutil
import pytest

from playbook_assets.core.errors import TerminalStepError
from playbook_assets.dagster_adapter.automation import stale_runs_sensor
from playbook_assets.dagster_adapter.retention import prune_runs
from playbook_assets.dagster_adapter.stale_runs import (
    TAG_HOST,
    TAG_PID,
    TAG_PROCESS_STARTED,
    reap_dead_runs,
)
from playbook_assets.demo.generator import (
    CRM,
    WAREHOUSE,
    ensure_demo_crm,
    ensure_demo_warehouse,
    write_demo_crm,
    write_demo_dataset,
)
from tests.conftest import Project

PLAYBOOK_BIN = str(Path(sys.executable).parent / "playbook")

QUICK = """
playbook:
  id: quick
  name: Quick
  steps:
    - id: accounts
      type: query
      config: {template: "SELECT count(*) AS n FROM analytics.accounts"}
"""
# A first step that ends at once, then one that runs until it is killed.
SLOW = """
playbook:
  id: slow
  name: Slow
  steps:
    - id: fast
      type: query
      config: {template: "SELECT 1 AS x"}
    - id: wait
      type: query
      depends_on: [fast]
      config:
        template: "SELECT count(*) AS n FROM range(100000000000) t(x) WHERE x % 7 = 3"
"""


def playbook(project: Project, *args: str, home: Path | None = None) -> subprocess.Popen[str]:
    """The ``playbook`` command in a process of its own, on the project's config."""
    env = {**os.environ, "DAGSTER_HOME": str(home or project.dagster_home)}
    env.pop("PLAYBOOK_CONFIG", None)
    return subprocess.Popen(
        [PLAYBOOK_BIN, *args, "--config", str(project.config_path)],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 240) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def wait_for(condition: Callable[[], bool], timeout: float = 90, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(interval)


def instance_of(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(home))


@pytest.fixture
def single_thread(project: Project) -> Project:
    """The project's DuckDB connection on one thread: the slow query leaves a core free."""
    text = project.config_path.read_text()
    text = re.sub(r"(\n    duckdb:\n      database: .*\n)", r"\1      threads: 1\n", text)
    project.config_path.write_text(text, encoding="utf-8")
    return project


@pytest.fixture
def killed_run(single_thread: Project) -> Iterator[tuple[Project, str, int]]:
    """A ``playbook run`` killed (SIGKILL) while its second step runs: (project, Dagster run
    id, pid of the killed process)."""
    project = single_thread
    (project.dagster_home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
        "concurrency:\n  pools:\n    granularity: op\n    default_limit: 1\n",
        encoding="utf-8",
    )
    project.add_playbook("slow.yaml", SLOW)
    project.add_playbook("quick.yaml", QUICK)
    process = playbook(project, "run", "slow", "--json")
    fast_dir = project.artifacts_dir / "data" / "slow" / "fast"
    try:
        wait_for(lambda: fast_dir.is_dir() and any(fast_dir.glob("*.parquet")))
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    (fast_file,) = fast_dir.glob("*.parquet")
    yield project, fast_file.stem, process.pid


def test_concurrent_first_use_of_a_new_home(project: Project) -> None:
    """Eight commands started at once on a brand-new home: all succeed and leave it usable
    (they used to race on Dagster's schema creation: "table runs already exists", "more
    than one head present")."""
    project.add_playbook("quick.yaml", QUICK)
    home = project.root / "fresh_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    processes = [playbook(project, "run", "quick", "--json", home=home) for _ in range(8)]
    results = [finish(process) for process in processes]
    for code, out, err in results:
        assert code == 0, err[-3000:]
        assert json.loads(out)["status"] == "success"
    code, out, err = finish(playbook(project, "run", "quick", "--json", home=home))
    assert code == 0, err[-3000:]
    instance = instance_of(home)
    assert len(instance.get_run_records()) == 9
    assert all(
        r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in instance.get_run_records()
    )


def test_a_damaged_instance_is_reported_with_its_repair(project: Project) -> None:
    project.add_playbook("quick.yaml", QUICK)
    home = project.dagster_home
    instance_of(home).get_run_records(limit=1)  # creates the storage
    # What the race on a new home leaves: two schema versions stamped in one database.
    with sqlite3.connect(home / "schedules" / "schedules.db") as db:
        db.execute("INSERT INTO alembic_version VALUES ('0000deadbeef')")
    code, out, err = finish(playbook(project, "run", "quick", "--json"))
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: {home}/dagster.yaml: the Dagster instance in {home} cannot be ")
    assert "more than one head present" in line
    # The repair it gives works as written.
    repair = re.search(r"then move its storage aside \(it holds the run history\): (.*?) ;", line)
    assert repair is not None
    subprocess.run(repair.group(1), shell=True, check=True)
    code, out, err = finish(playbook(project, "run", "quick", "--json"))
    assert code == 0, err[-3000:]


def test_a_killed_run_is_marked_failed_and_frees_its_slot(
    killed_run: tuple[Project, str, int],
) -> None:
    project, run_id, pid = killed_run
    instance = instance_of(project.dagster_home)
    run = instance.get_run_by_id(run_id)
    assert run is not None
    assert run.status == dg.DagsterRunStatus.STARTED  # nothing reported its end
    assert run.tags[TAG_PID] == str(pid)
    info = instance.event_log_storage.get_concurrency_info("connection_duckdb")
    assert [slot.run_id for slot in info.claimed_slots] == [run_id]

    # The next command that opens the instance marks it failed and frees the slot.
    code, _, err = finish(playbook(project, "run", "quick", "--json"))
    assert code == 0, err[-3000:]
    run = instance.get_run_by_id(run_id)
    assert run is not None
    assert run.status == dg.DagsterRunStatus.FAILURE
    failure = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    assert [record.event_log_entry.message for record in failure] == [
        f"The process that ran this run (pid {pid} on {run.tags[TAG_HOST]}) ended without "
        "reporting the run's end (it was killed); marked as failed."
    ]
    info = instance.event_log_storage.get_concurrency_info("connection_duckdb")
    assert info.claimed_slots == []
    unfinished = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
    )
    assert unfinished == []


def test_the_sensor_reaps_without_any_command(killed_run: tuple[Project, str, int]) -> None:
    project, run_id, _ = killed_run
    instance = instance_of(project.dagster_home)
    sensor = stale_runs_sensor()
    result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    assert result.skip_message == "marked 1 runs of killed processes as failed"
    run = instance.get_run_by_id(run_id)
    assert run is not None and run.status == dg.DagsterRunStatus.FAILURE


def test_live_and_foreign_runs_are_never_reaped(project: Project) -> None:
    instance = instance_of(project.dagster_home)
    me = os.getpid()
    started = psutil.Process(me).create_time()
    host = socket.gethostname()
    job = dg.GraphDefinition(name="noop", node_defs=[]).to_job()

    def run_with(tags: dict[str, str]) -> str:
        return instance.create_run_for_job(
            job_def=job, status=dg.DagsterRunStatus.STARTED, tags=tags
        ).run_id

    alive = run_with({TAG_PID: str(me), TAG_HOST: host, TAG_PROCESS_STARTED: f"{started:.3f}"})
    elsewhere = run_with({TAG_PID: "1", TAG_HOST: "another-host", TAG_PROCESS_STARTED: "1.0"})
    # The same pid, but a process started an hour after the recorded one: the pid was reused.
    reused = run_with(
        {TAG_PID: str(me), TAG_HOST: host, TAG_PROCESS_STARTED: f"{started - 3600:.3f}"}
    )
    untagged = run_with({})
    assert reap_dead_runs(instance) == [reused]
    statuses = {}
    for run_id in (alive, elsewhere, reused, untagged):
        run = instance.get_run_by_id(run_id)
        assert run is not None
        statuses[run_id] = run.status
    assert statuses == {
        alive: dg.DagsterRunStatus.STARTED,
        elsewhere: dg.DagsterRunStatus.STARTED,
        reused: dg.DagsterRunStatus.FAILURE,
        untagged: dg.DagsterRunStatus.STARTED,
    }


def test_prune_removes_what_killed_runs_left_and_nothing_in_progress(
    killed_run: tuple[Project, str, int],
) -> None:
    project, killed_id, killed_pid = killed_run
    artifacts = project.artifacts_dir
    killed_file = artifacts / "data" / "slow" / "fast" / f"{killed_id}.parquet"
    # What a writer killed mid-file leaves, and what a live writer is writing.
    dead_temporary = artifacts / "data" / "slow" / "wait" / f".{killed_id}.parquet.tmp-{killed_pid}"
    dead_temporary.parent.mkdir(parents=True)
    dead_temporary.write_bytes(b"PAR1 half")
    # A second run in progress: its first result is now the latest of its asset.
    running = playbook(project, "run", "slow", "--json")
    try:
        wait_for(lambda: len(list(killed_file.parent.glob("*.parquet"))) == 2)
        (in_progress_file,) = set(killed_file.parent.glob("*.parquet")) - {killed_file}
        live_temporary = artifacts / f".run_x.json.tmp-{running.pid}"
        live_temporary.write_text("{")
        instance = instance_of(project.dagster_home)
        # The killed run was reaped by the second command; a grace period later:
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
        dry = prune_runs(artifacts, 90, instance, now=later, dry_run=True)
        assert sorted(dry.removed_leftovers) == sorted([dead_temporary, killed_file])
        assert killed_file.exists()
        result = prune_runs(artifacts, 90, instance, now=later)
        assert sorted(result.removed_leftovers) == sorted([dead_temporary, killed_file])
        assert not killed_file.exists() and not dead_temporary.exists()
        assert in_progress_file.exists() and live_temporary.exists()
        # Within the grace period after a run's end, its unlisted results are kept.
        assert prune_runs(artifacts, 90, instance, dry_run=True).removed_leftovers == []
    finally:
        running.send_signal(signal.SIGKILL)
        running.communicate()


def test_prune_from_the_command_line_lists_the_leftovers(
    killed_run: tuple[Project, str, int],
) -> None:
    project, _, killed_pid = killed_run
    temporary = project.artifacts_dir / f".run_20260101_000000_abcdef.json.tmp-{killed_pid}"
    temporary.write_text("{", encoding="utf-8")
    code, out, err = finish(playbook(project, "artifacts", "prune"))
    assert code == 0, err
    assert f"removed {temporary} (left by an interrupted run)\n" in out
    assert not temporary.exists()


# The demo data set ----------------------------------------------------------------------------


def _count(path: Path, table: str) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return int(con.sql(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def demo_config(project: Project) -> tuple[Path, Path]:
    """The project on generated demo files of its own, in ``data/``."""
    warehouse, crm = (
        project.root / "data" / "warehouse.duckdb",
        project.root / "data" / "crm.duckdb",
    )
    project.config_path.write_text(
        textwrap.dedent(
            f"""\
            playbook_executor:
              connections:
                duckdb: {{database: {warehouse}, demo_data: true, threads: 1}}
                demo: {{database: {crm}}}
              artifacts: {{directory: ../artifacts}}
            """
        ),
        encoding="utf-8",
    )
    return warehouse, crm


JOINED = """
playbook:
  id: joined
  name: Joined
  steps:
    - id: accounts
      type: query
      config: {template: "SELECT account_id FROM analytics.accounts"}
    - id: companies
      type: search
      config: {object: companies, properties: [name]}
"""


def test_demo_init_killed_half_way_never_leaves_a_mixed_set_in_use(project: Project) -> None:
    warehouse, crm = demo_config(project)
    project.add_playbook("joined.yaml", JOINED)
    code, _, err = finish(playbook(project, "demo", "init", "--scale", "0.02"))
    assert code == 0, err
    before = {path: os.stat(path).st_ino for path in (warehouse, crm)}
    process = playbook(project, "demo", "init", "--force", "--scale", "0.5")
    try:
        wait_for(
            lambda: any(os.stat(path).st_ino != before[path] for path in before),
            timeout=120,
            interval=0.001,
        )
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    accounts = _count(warehouse, "analytics.accounts")
    companies = _count(crm, "companies")
    code, out, err = finish(playbook(project, "run", "joined", "--json"))
    if accounts == companies:
        assert code == 0, err
        steps = {step["step_id"]: step["row_count"] for step in json.loads(out)["steps"]}
        assert steps == {"accounts": accounts, "companies": companies}
    else:  # killed between the two renames: the run must say so, not use the mix
        assert code == 1
        report = json.loads(out)
        assert "the demo data set is mixed" in json.dumps(report)
    # `demo init` then completes the set (or finds it whole).
    code, out, err = finish(playbook(project, "demo", "init", "--scale", "0.5"))
    assert code == 0, err
    assert _count(warehouse, "analytics.accounts") == _count(crm, "companies")


def test_a_half_set_is_completed_with_the_same_generation(tmp_path: Path) -> None:
    warehouse, crm = tmp_path / "wh.duckdb", tmp_path / "crm.duckdb"
    write_demo_dataset([(WAREHOUSE, warehouse), (CRM, crm)], scale=0.02)
    crm.unlink()  # as if killed before the CRM was moved into place
    # The warehouse's own configured scale does not matter: the set was made at 0.02.
    ensure_demo_warehouse(warehouse, scale=1.0)
    assert _count(crm, "companies") == _count(warehouse, "analytics.accounts") == 200


def test_a_mixed_set_is_an_error_naming_both_files(tmp_path: Path) -> None:
    warehouse, crm = tmp_path / "wh.duckdb", tmp_path / "crm.duckdb"
    write_demo_dataset([(WAREHOUSE, warehouse), (CRM, crm)], scale=0.05)
    write_demo_crm(crm, scale=0.02, dataset=[(WAREHOUSE, warehouse)])  # another generation
    with pytest.raises(TerminalStepError) as info:
        ensure_demo_warehouse(warehouse)
    assert str(info.value) == (
        f"the demo data set is mixed: {warehouse} holds scale 0.05, seed 42, generator version "
        f"1, but {crm} holds scale 0.02, seed 42, generator version 1; an interrupted "
        "`playbook demo init` leaves this; regenerate the set with "
        "`playbook demo init --force --scale 0.05`"
    )
    with pytest.raises(TerminalStepError, match="the demo data set is mixed"):
        ensure_demo_crm(crm)
