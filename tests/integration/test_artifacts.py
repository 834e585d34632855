"""The artifact store: exact paths and round trips through the I/O manager, checksums,
atomic writes, run records, verify, prune, rerun and the cached fallback."""

import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from playbook_assets.app.cli import EXIT_OK, EXIT_STEP_FAILED, main
from playbook_assets.app.runner import execute_playbook
from playbook_assets.core.artifacts import atomic_write_bytes, file_sha256
from playbook_assets.core.catalog import load_catalog
from playbook_assets.core.config import load_config_file
from playbook_assets.core.errors import TerminalStepError
from playbook_assets.core.run_records import iter_runs, load_run
from playbook_assets.dagster_adapter.dagster_runs import playbooks_of_run
from playbook_assets.dagster_adapter.factory import build_definitions
from playbook_assets.dagster_adapter.io_manager import ArtifactIOManager
from playbook_assets.dagster_adapter.retention import prune_runs
from playbook_assets.dagster_adapter.run_record_sensor import write_failed_run_record
from playbook_defs import TEMPLATES_DIR
from tests.conftest import DemoFiles, Project, write_config


def cli(project: Project, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args, "--config", str(project.config_path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_report(project: Project, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = cli(project, capsys, "run", *args, "--json")
    report = json.loads(out)
    assert code in (EXIT_OK, EXIT_STEP_FAILED), err
    return report


@pytest.fixture
def own_data(project: Project, demo_files: DemoFiles) -> DemoFiles:
    """Copies of the demo files that a test may break, with the project's config using them."""
    folder = project.root / "data"
    folder.mkdir()
    files = DemoFiles(warehouse=folder / "warehouse.duckdb", crm=folder / "demo_crm.duckdb")
    shutil.copy(demo_files.warehouse, files.warehouse)
    shutil.copy(demo_files.crm, files.crm)
    write_config(project.root, files)
    return files


# ----------------------------------------------------------------------------- I/O manager


def test_an_encoded_result_is_its_parquet_file_and_its_hash(tmp_path: Path) -> None:
    """The encoding arrives in many pieces (a result of a million rows): the file written
    from them is pyarrow's own encoding of the table, and the recorded sha256 is the file's
    (hashlib over the file's bytes)."""
    from playbook_assets.core.artifacts import PARQUET_COMPRESSION, encode_table

    count = 1_000_000
    table = pa.table(
        {
            "id": pa.array(range(count), pa.int64()),
            "name": pa.array([f"account {i % 977}" for i in range(count)]),
            "arr": pa.array([i * 0.25 for i in range(count)]),
        }
    )
    encoded = encode_table(table)
    path = tmp_path / "result.parquet"
    atomic_write_bytes(path, encoded.parquet, overwrite=False)

    assert len(encoded.parquet) > 1
    assert encoded.size == path.stat().st_size
    assert encoded.sha256 == file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    reference = tmp_path / "pyarrow.parquet"
    pq.write_table(table, reference, compression=PARQUET_COMPRESSION)
    assert path.read_bytes() == reference.read_bytes()
    assert pq.read_table(path).equals(table)


def test_io_manager_round_trip_with_exact_path_and_checksum(tmp_path: Path) -> None:
    table = pa.table({"id": [1, 2, 3], "name": ["a", "b", None]})

    @dg.asset(key=["pb", "source"])
    def source() -> pa.Table:
        return table

    @dg.asset(key=["pb", "copy"], ins={"upstream": dg.AssetIn(key=["pb", "source"])})
    def copy(upstream: pa.Table) -> pa.Table:
        return upstream

    instance = dg.DagsterInstance.ephemeral()
    manager = ArtifactIOManager(base_dir=str(tmp_path))
    result = dg.materialize([source, copy], instance=instance, resources={"io_manager": manager})
    assert result.success
    path = tmp_path / "data" / "pb" / "source" / f"{result.run_id}.parquet"
    assert pq.read_table(path).equals(table)
    event = instance.get_latest_materialization_event(dg.AssetKey(["pb", "source"]))
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    assert metadata["artifact_path"].value == str(path)
    assert metadata["artifact_sha256"].value == file_sha256(path)
    assert metadata["artifact_bytes"].value == path.stat().st_size
    assert result.output_for_node("pb__copy").equals(table)


def test_io_manager_is_partition_aware(tmp_path: Path) -> None:
    partitions = dg.StaticPartitionsDefinition(["emea", "na/west"])

    @dg.asset(key=["pb", "by_region"], partitions_def=partitions)
    def by_region(context: dg.AssetExecutionContext) -> pa.Table:
        return pa.table({"region": [context.partition_key]})

    instance = dg.DagsterInstance.ephemeral()
    manager = ArtifactIOManager(base_dir=str(tmp_path))
    for key in ("emea", "na/west"):
        result = dg.materialize(
            [by_region], instance=instance, partition_key=key, resources={"io_manager": manager}
        )
        assert result.success
    stored = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.parquet"))
    assert [p.parent for p in stored] == [
        Path("data/pb/by_region/emea"),
        Path("data/pb/by_region/na_west"),
    ]


BIG_ACCOUNTS_SQL = """
SELECT account_id, account_name, arr, renewal_date FROM analytics.accounts
WHERE arr >= 500000 ORDER BY account_id
"""
BIG_ACCOUNTS = f"""
playbook:
  id: big_accounts
  name: Big accounts
  steps:
    - id: accounts
      type: query
      config:
        template: "{" ".join(BIG_ACCOUNTS_SQL.split())}"
"""


def test_a_users_own_assets_get_a_step_result_as_a_dataframe_or_an_arrow_table(
    project: Project, demo_files: DemoFiles
) -> None:
    step = dg.AssetKey(["big_accounts", "accounts"])
    received: dict[str, list[Any]] = {"frame": [], "table": []}

    @dg.asset(ins={"accounts": dg.AssetIn(key=step)})
    def accounts_frame(accounts: pd.DataFrame) -> None:
        received["frame"].append(accounts)

    @dg.asset(ins={"accounts": dg.AssetIn(key=step)})
    def accounts_table(accounts: pa.Table) -> None:
        received["table"].append(accounts)

    project.add_playbook("big_accounts.yaml", BIG_ACCOUNTS)
    config = load_config_file(project.config_path)
    defs = dg.Definitions.merge(
        build_definitions(load_catalog(config, []), config),
        dg.Definitions(assets=[accounts_frame, accounts_table]),
    )
    job = defs.resolve_implicit_global_asset_job_def()
    instance = dg.DagsterInstance.ephemeral()
    users = [dg.AssetKey("accounts_frame"), dg.AssetKey("accounts_table")]
    # In the run that materializes the step, then in a run of their own (the stored result).
    together = job.execute_in_process(instance=instance, asset_selection=[step, *users])
    assert together.success
    alone = job.execute_in_process(instance=instance, asset_selection=users)
    assert alone.success

    with duckdb.connect(str(demo_files.warehouse), read_only=True) as con:
        cursor = con.execute(BIG_ACCOUNTS_SQL)
        columns = [column[0] for column in cursor.description or []]
        expected = cursor.fetchall()
    assert len(expected) > 10
    assert len(received["frame"]) == len(received["table"]) == 2
    for frame in received["frame"]:
        assert type(frame) is pd.DataFrame
        assert list(frame.columns) == columns
        assert list(frame.itertuples(index=False, name=None)) == expected
    for table in received["table"]:
        assert type(table) is pa.Table
        assert table.column_names == columns
        assert [tuple(row.values()) for row in table.to_pylist()] == expected


def test_artifacts_are_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    atomic_write_bytes(path, b"first", overwrite=False)
    atomic_write_bytes(path, b"first", overwrite=False)  # the same bytes again is fine
    with pytest.raises(TerminalStepError, match="already exists with different content"):
        atomic_write_bytes(path, b"second", overwrite=False)
    assert path.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet"]


def test_a_write_killed_midway_leaves_no_visible_file(tmp_path: Path) -> None:
    target = tmp_path / "data" / "big.parquet"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from playbook_assets.core.artifacts import atomic_write_bytes\n"
        "atomic_write_bytes(Path(sys.argv[1]), bytes(3_000_000_000))\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(target)])
    temporary = target.with_name(f".{target.name}.tmp-{writer.pid}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if temporary.exists() and temporary.stat().st_size > 50_000_000:
            break
        assert writer.poll() is None, "the writer finished before it could be interrupted"
        time.sleep(0.01)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir() if not p.name.startswith(".")] == []


# ----------------------------------------------------------------------------- run records


def test_run_writes_report_manifest_and_playbook_copy(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_report(project, capsys, "presales_analysis")
    record = load_run(project.artifacts_dir, report["run_id"])
    manifest = record.manifest
    template = TEMPLATES_DIR / "presales_analysis.yaml"
    assert manifest["playbook"] == {
        "id": "presales_analysis",
        "version": "1.0",
        "file": str(template),
        "sha256": file_sha256(template),
        "copy": f"{report['run_id']}.playbook.yaml",
        "copy_sha256": file_sha256(template),
    }
    assert (project.artifacts_dir / manifest["playbook"]["copy"]).read_bytes() == (
        template.read_bytes()
    )
    assert manifest["parameters"] == report["metadata"]["parameters_used"]
    assert manifest["connections"] == {"data_warehouse": "duckdb", "crm": "demo"}
    assets = {artifact["asset"]: artifact for artifact in manifest["artifacts"]}
    assert set(assets) == {
        "presales_analysis/open_deals",
        "presales_analysis/account_health",
        "presales_analysis/combine_results",
        "presales_analysis/opportunities_with_health",
        "presales_analysis/summary",
    }
    for step in report["steps"]:
        artifact = assets[f"presales_analysis/{step['step_id']}"]
        path = Path(artifact["path"])
        assert artifact["sha256"] == file_sha256(path)
        assert artifact["bytes"] == path.stat().st_size
        assert artifact["rows"] == step["row_count"] == pq.read_metadata(path).num_rows
    assert manifest["report"]["sha256"] == file_sha256(
        project.artifacts_dir / f"{report['run_id']}.json"
    )
    # A data output is its step's table: the same file under a second name, not a re-encode.
    output = Path(assets["presales_analysis/opportunities_with_health"]["path"])
    step = Path(assets["presales_analysis/combine_results"]["path"])
    assert output != step and output.stat().st_ino == step.stat().st_ino
    assert assets["presales_analysis/opportunities_with_health"]["sha256"] == file_sha256(step)


def test_verify_names_changed_and_missing_files(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_report(project, capsys, "health_dashboard")
    run_id = report["run_id"]
    code, out, _ = cli(project, capsys, "artifacts", "verify", run_id)
    # 8 artifacts (4 steps, 4 outputs), the report and the playbook copy.
    assert code == EXIT_OK and out == f"ok {run_id} (11 files)\n"
    artifacts = load_run(project.artifacts_dir, run_id).manifest["artifacts"]
    changed = Path(artifacts[0]["path"])
    data = bytearray(changed.read_bytes())
    data[len(data) // 2] ^= 0xFF
    changed.write_bytes(bytes(data))
    missing = Path(artifacts[1]["path"])
    missing.unlink()
    code, out, _ = cli(project, capsys, "artifacts", "verify", "--all")
    assert code == EXIT_STEP_FAILED
    assert out.splitlines() == [
        f"FAILED {run_id}: {changed}: changed (sha256 differs)",
        f"FAILED {run_id}: {missing}: missing",
    ]


def test_artifacts_list_and_show(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    first = run_report(project, capsys, "expansion_candidates")
    second = run_report(project, capsys, "health_dashboard")
    code, out, _ = cli(project, capsys, "artifacts", "list", "--json")
    assert code == EXIT_OK
    assert [row["run_id"] for row in json.loads(out)] == [first["run_id"], second["run_id"]]
    code, out, _ = cli(project, capsys, "artifacts", "list", "--playbook", "health_dashboard")
    assert out.startswith(second["run_id"]) and first["run_id"] not in out
    code, out, _ = cli(project, capsys, "artifacts", "show", first["run_id"])
    assert json.loads(out)["playbook"]["id"] == "expansion_candidates"
    code, _, err = cli(project, capsys, "artifacts", "show", "run_20200101_000000_abcdef")
    assert code == 2 and f"the latest runs: {first['run_id']}, {second['run_id']}" in err


def test_prune_removes_old_runs_but_keeps_latest_materializations(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    old = run_report(project, capsys, "health_dashboard")
    new = run_report(project, capsys, "health_dashboard")
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=91)
    old_files = load_run(project.artifacts_dir, old["run_id"]).files()
    assert project.artifacts_dir / f"{old['run_id']}.html" in old_files  # the page goes too
    new_record = load_run(project.artifacts_dir, new["run_id"])
    latest = [Path(a["path"]) for a in new_record.manifest["artifacts"]]

    dry = prune_runs(project.artifacts_dir, 90, instance, now=later, dry_run=True)
    assert dry.removed_runs == [old["run_id"], new["run_id"]]
    assert all(path.exists() for path in old_files)

    result = prune_runs(project.artifacts_dir, 90, instance, now=later)
    assert sorted(result.kept_latest) == sorted(latest)
    assert not any(path.exists() for path in old_files)
    assert all(path.exists() for path in latest)
    assert list(iter_runs(project.artifacts_dir)) == []
    # Within the retention period nothing goes.
    kept = run_report(project, capsys, "health_dashboard")
    assert prune_runs(project.artifacts_dir, 90, instance).removed_runs == []
    assert load_run(project.artifacts_dir, kept["run_id"]).manifest["status"] == "success"


def test_rerun_runs_the_same_playbook_with_the_same_parameters(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    playbook = project.playbooks_dir / "segment_analysis.yaml"
    shutil.copy(TEMPLATES_DIR / "segment_analysis.yaml", playbook)
    first = run_report(project, capsys, "segment_analysis", "segment=smb", "min_arr=5000")
    # The playbook changes afterwards: a rerun still runs it as it ran.
    playbook.write_text(playbook.read_text().replace("default: enterprise", "default: smb"))
    code, out, err = cli(project, capsys, "rerun", first["run_id"], "--json")
    assert code == EXIT_OK
    assert "rerunning the playbook as it ran" in err
    again = json.loads(out)
    assert again["run_id"] != first["run_id"]
    assert again["metadata"]["rerun_of"] == first["run_id"]
    assert again["metadata"]["parameters_used"] == first["metadata"]["parameters_used"]
    assert again["outputs"] == first["outputs"]
    assert again["metadata"]["playbook_sha256"] == first["metadata"]["playbook_sha256"]


def test_a_failed_run_records_itself_and_the_sensor_does_not_write_it_twice(
    project: Project,
) -> None:
    project.add_playbook(
        "broken_sql.yaml",
        """
        playbook:
          id: broken_sql
          name: Broken SQL
          steps:
            - id: first
              type: query
              config: {template: "SELECT * FROM analytics.nothing_here"}
        """,
    )
    config = load_config_file(project.config_path)
    catalog = load_catalog(config, [])
    defs = build_definitions(catalog, config)
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    result = execute_playbook(defs, "broken_sql", instance=instance)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    assert playbooks_of_run(instance, run) == ["broken_sql"]
    (record,) = [r for r in iter_runs(config.artifacts_dir) if r.playbook_id == "broken_sql"]
    assert record.manifest["status"] == "failed"
    report = json.loads((config.artifacts_dir / f"{record.run_id}.json").read_text())
    assert report["steps"][0]["status"] == "error"
    assert "nothing_here" in report["steps"][0]["error"]
    assert report["metadata"]["data_warehouse"] == "duckdb"
    # The run-failure sensor's path leaves a record the op wrote alone.
    written = write_failed_run_record(
        instance,
        catalog.get("broken_sql"),
        run,
        config.artifacts_dir,
        data_warehouse="duckdb",
        crm="demo",
    )
    assert written is None


def test_the_sensor_records_a_run_that_ended_before_its_op_finished(project: Project) -> None:
    # A run whose process died (or whose resources could not be set up) never reaches the end
    # of its op, which writes the record: the run-failure sensor writes it, and never fails.
    project.add_playbook(
        "two_steps.yaml",
        """
        playbook:
          id: two_steps
          name: Two steps
          steps:
            - {id: first, type: query, config: {template: "SELECT 1 AS x"}}
            - {id: second, type: filter, config: {input: "${steps.first}", condition: "x > 0"}}
        """,
    )
    config = load_config_file(project.config_path)
    catalog = load_catalog(config, [])
    defs = build_definitions(catalog, config)
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    job = defs.resolve_implicit_global_asset_job_def()
    run = instance.create_run_for_job(
        job,
        asset_selection=frozenset({dg.AssetKey(["two_steps", "second"])}),
        tags={"playbook/id": "two_steps"},
    )
    instance.report_run_failed(run, "the run's process was killed")
    failed = instance.get_run_by_id(run.run_id)
    assert failed is not None and failed.status == dg.DagsterRunStatus.FAILURE
    failure = next(
        r.event_log_entry.dagster_event
        for r in instance.get_records_for_run(run.run_id).records
        if r.event_log_entry.dagster_event is not None
        and r.event_log_entry.dagster_event.event_type == dg.DagsterEventType.RUN_FAILURE
    )
    assert failure is not None
    sensor = next(s for s in defs.sensors or [] if s.name == "playbook_run_records")
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=failed,
    ).for_run_failure()
    sensor(context)  # type: ignore[operator]
    (record,) = list(iter_runs(config.artifacts_dir))
    report = json.loads((config.artifacts_dir / f"{record.run_id}.json").read_text())
    assert report["status"] == "failed"
    assert "killed" in report["error"]
    assert [(s["step_id"], s["status"]) for s in report["steps"]] == [
        ("first", "not_selected"),
        ("second", "skipped"),
    ]
    assert "killed" in report["steps"][1]["reason"]
    sensor(context)  # type: ignore[operator]
    assert len(list(iter_runs(config.artifacts_dir))) == 1  # written once


def test_one_run_of_two_playbooks_leaves_a_record_of_each(project: Project) -> None:
    """What "Materialize all" across groups launches: one run, one op per playbook."""
    for playbook_id, table in (("good_one", "accounts"), ("bad_one", "nothing_here")):
        project.add_playbook(
            f"{playbook_id}.yaml",
            f"""
            playbook:
              id: {playbook_id}
              name: {playbook_id}
              steps:
                - id: first
                  type: query
                  config: {{template: "SELECT count(*) AS n FROM analytics.{table}"}}
            """,
        )
    config = load_config_file(project.config_path)
    catalog = load_catalog(config, [])
    defs = build_definitions(catalog, config)
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and not run.asset_selection
    # No selection and no tags: the playbooks are those whose op started.
    assert playbooks_of_run(instance, run) == ["bad_one", "good_one"]
    records = {r.playbook_id: r for r in iter_runs(config.artifacts_dir)}
    assert {name: r.manifest["status"] for name, r in records.items()} == {
        "good_one": "success",
        "bad_one": "failed",
    }
    assert records["good_one"].run_id != records["bad_one"].run_id
    bad = json.loads((config.artifacts_dir / f"{records['bad_one'].run_id}.json").read_text())
    assert [step["status"] for step in bad["steps"]] == ["error"]
    assert "nothing_here" in bad["steps"][0]["error"]
    # The ops tagged the run with the playbooks it covers, as runs launched by the product are.
    tagged = instance.get_run_by_id(result.run_id)
    assert tagged is not None and tagged.tags["playbook/id"] in {"bad_one", "good_one"}
    # And with the process the run executes in, so a killed run worker is found and failed.
    assert tagged.tags["playbook/pid"] == str(os.getpid())


# ----------------------------------------------------------------------------- cached fallback


def test_cached_fallback_when_the_warehouse_file_is_unreachable(
    project: Project, capsys: pytest.CaptureFixture[str], own_data: DemoFiles
) -> None:
    first = run_report(project, capsys, "health_dashboard")
    assert first["status"] == "success"
    own_data.warehouse.rename(own_data.warehouse.with_suffix(".moved"))
    second = run_report(project, capsys, "health_dashboard")
    steps = {step["step_id"]: step for step in second["steps"]}
    assert steps["accounts"]["status"] == "cached"
    assert steps["accounts"]["cached_from"]["run_id"] == first["run_id"]
    assert steps["accounts"]["cached_from"]["dagster_run_id"] == first["dagster_run_id"]
    assert steps["accounts"]["row_count"] == first["steps"][0]["row_count"]
    assert {steps[s]["status"] for s in ("by_status", "by_segment", "high_value_low_health")} == {
        "success"
    }
    assert second["outputs"] == first["outputs"]
    assert second["summary"]["cached_steps"] == 1
    # Parameters that differ never get a cached result.
    third = run_report(project, capsys, "health_dashboard", "min_arr=60000")
    assert third["status"] == "failed"
    error = third["steps"][0]["error"]
    assert "DuckDB database file not found" in error
    assert "no stored result of this step for the same request to fall back on" in error
    assert [s["status"] for s in third["steps"][1:]] == ["skipped", "skipped", "skipped"]


def test_cached_fallback_when_the_crm_is_unreachable(
    project: Project, capsys: pytest.CaptureFixture[str], own_data: DemoFiles
) -> None:
    first = run_report(project, capsys, "presales_analysis")
    own_data.crm.unlink()
    own_data.crm.mkdir()  # exists, but is no database: the CRM cannot be opened
    second = run_report(project, capsys, "presales_analysis")
    statuses = [(s["step_id"], s["status"]) for s in second["steps"]]
    assert statuses == [
        ("open_deals", "cached"),
        ("account_health", "success"),
        ("combine_results", "success"),
    ]
    assert second["outputs"]["summary"] == first["outputs"]["summary"]


def test_a_sql_error_is_not_covered_by_the_cache(
    project: Project, capsys: pytest.CaptureFixture[str], own_data: DemoFiles
) -> None:
    run_report(project, capsys, "health_dashboard")
    with duckdb.connect(str(own_data.warehouse)) as con:
        con.execute("ALTER TABLE analytics.accounts RENAME TO accounts_old")
    report = run_report(project, capsys, "health_dashboard")
    assert report["steps"][0]["status"] == "error"
    assert "Table with name accounts does not exist" in report["steps"][0]["error"]
