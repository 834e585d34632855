"""Operating playbooks in Dagster: partitions and backfills, schedules, sensors, the run
request folder and asset checks, evaluated with Dagster's own contexts and real runs."""

import datetime as dt
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from playbook_assets.app.cli import EXIT_INVALID, EXIT_OK, EXIT_STEP_FAILED, main
from playbook_assets.app.runner import execute_playbook
from playbook_assets.core.catalog import load_catalog
from playbook_assets.core.config import load_config_file
from playbook_assets.dagster_adapter.factory import build_definitions
from tests.conftest import Project

QUERY = """
    - id: window
      type: query
      config:
        template: |
          SELECT {{key}} AS partition_key, {{start}} AS window_start, {{end}} AS window_end,
                 count(*) AS accounts
          FROM analytics.accounts WHERE renewal_date >= {{start}} AND renewal_date < {{end}}
        parameters:
          key: "${partition.key}"
          start: "${partition.start}"
          end: "${partition.end}"
"""


def playbook(playbook_id: str, partitions: str, steps: str = QUERY, extra: str = "") -> str:
    return (
        f"playbook:\n  id: {playbook_id}\n  name: {playbook_id}\n"
        + textwrap.indent(textwrap.dedent(partitions).strip(), "  ")
        + "\n  steps:\n"
        + textwrap.indent(textwrap.dedent(steps).strip("\n"), "  ")
        + "\n"
        + textwrap.indent(textwrap.dedent(extra).strip("\n"), "  ")
        + "\n"
    )


def definitions(project: Project) -> dg.Definitions:
    config = load_config_file(project.config_path)
    catalog = load_catalog(config, [])
    assert not catalog.broken, [str(b.error) for b in catalog.broken]
    return build_definitions(catalog, config)


def sql_of(instance: dg.DagsterInstance, key: list[str], partition: str | None = None) -> str:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(key), asset_partitions=[partition] if partition else None
        ),
        limit=1,
    ).records
    materialization = records[0].asset_materialization
    assert materialization is not None
    return str(materialization.metadata["sql"].value)


@pytest.mark.parametrize(
    ("partitions", "key", "expected"),
    [
        (
            "partitions: {type: daily, start: 2026-01-01}",
            "2026-03-04",
            "SELECT '2026-03-04' AS partition_key, CAST('2026-03-04' AS DATE) AS window_start, "
            "CAST('2026-03-05' AS DATE) AS window_end",
        ),
        (
            "partitions: {type: weekly, start: 2026-01-04}",
            "2026-03-01",
            "SELECT '2026-03-01' AS partition_key, CAST('2026-03-01' AS DATE) AS window_start, "
            "CAST('2026-03-08' AS DATE) AS window_end",
        ),
        (
            "partitions: {type: monthly, start: 2026-01-01}",
            "2026-02-01",
            "SELECT '2026-02-01' AS partition_key, CAST('2026-02-01' AS DATE) AS window_start, "
            "CAST('2026-03-01' AS DATE) AS window_end",
        ),
    ],
)
def test_time_partitions_render_their_window(
    project: Project, partitions: str, key: str, expected: str
) -> None:
    project.add_playbook("p.yaml", playbook("windows", partitions))
    defs = definitions(project)
    instance = dg.DagsterInstance.ephemeral()
    result = execute_playbook(defs, "windows", instance=instance, partition_key=key)
    assert result.success
    assert sql_of(instance, ["windows", "window"], key).startswith(f"```sql\n{expected}")


STATIC_STEP = """
    - id: segment_accounts
      type: query
      config:
        template: "SELECT count(*) AS accounts FROM analytics.accounts WHERE segment = {{segment}}"
        parameters: {segment: "${partition.key}"}
"""


def test_static_partition_key_is_a_safe_literal(project: Project) -> None:
    project.add_playbook(
        "s.yaml",
        playbook(
            "by_segment", "partitions: {type: static, values: [enterprise, smb]}", STATIC_STEP
        ),
    )
    instance = dg.DagsterInstance.ephemeral()
    defs = definitions(project)
    assert execute_playbook(defs, "by_segment", instance=instance, partition_key="smb").success
    assert "WHERE segment = 'smb'" in sql_of(instance, ["by_segment", "segment_accounts"], "smb")


def test_dynamic_partitions_added_from_the_command_line(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook(
        "d.yaml",
        playbook("by_client", "partitions: {type: dynamic, name: clients}", STATIC_STEP),
    )
    config = str(project.config_path)
    assert main(["run", "by_client", "--partition", "acme", "--config", config]) == EXIT_INVALID
    assert "add it with: playbook partitions add clients acme" in capsys.readouterr().err
    assert main(["partitions", "add", "clients", "acme", "smb", "--config", config]) == EXIT_OK
    assert capsys.readouterr().out == "clients: added 2, 2 in all\n"
    assert main(["partitions", "list", "by_client", "--config", config]) == EXIT_OK
    assert capsys.readouterr().out == "acme\nsmb\n"
    code = main(["run", "by_client", "--partition", "smb", "--config", config, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK and report["partition"] == "smb"
    assert report["steps"][0]["row_count"] == 1


MULTI = """
partitions:
  type: multi
  dimensions:
    month: {type: monthly, start: 2026-01-01}
    segment: {type: static, values: [enterprise, smb]}
"""
MULTI_STEP = """
    - id: cell
      type: query
      config:
        template: |
          SELECT count(*) AS accounts FROM analytics.accounts
          WHERE segment = {{segment}} AND renewal_date >= {{start}} AND renewal_date < {{end}}
        parameters:
          segment: "${partition.segment}"
          start: "${partition.start}"
          end: "${partition.end}"
"""


def test_two_dimensional_partitions(project: Project) -> None:
    project.add_playbook("m.yaml", playbook("grid", MULTI, MULTI_STEP))
    instance = dg.DagsterInstance.ephemeral()
    key = str(dg.MultiPartitionKey({"month": "2026-02-01", "segment": "smb"}))
    result = execute_playbook(definitions(project), "grid", instance=instance, partition_key=key)
    assert result.success
    assert (
        "WHERE segment = 'smb' AND renewal_date >= CAST('2026-02-01' AS DATE) "
        "AND renewal_date < CAST('2026-03-01' AS DATE)"
    ) in sql_of(instance, ["grid", "cell"], key)


BACKFILLED = """
    - id: renewals
      type: query
      partition_column: renewal_date
      config:
        template: |
          SELECT account_id, renewal_date, arr FROM analytics.accounts
          WHERE renewal_date >= {{start}} AND renewal_date < {{end}}
          ORDER BY account_id
        parameters:
          start: "${partition.start}"
          end: "${partition.end}"
    - id: segments
      type: query
      config: {template: "SELECT account_id AS id, segment FROM analytics.accounts"}
    - id: joined
      type: join
      config: {left: "${steps.renewals}", right: "${steps.segments}", on: "account_id = id"}
    - id: by_segment
      type: aggregate
      config:
        input: "${steps.joined}"
        group_by: [segment]
        metrics: [{name: renewals, expression: "COUNT(*)"}, {name: arr, expression: "SUM(arr)"}]
      checks:
        - {type: row_count, min: 1}
"""
BACKFILLED_OUTPUTS = """
outputs:
  - {name: renewing, source: "${steps.joined}"}
  - name: totals
    type: aggregate
    source: "${steps.joined}"
    metrics: [{name: accounts, expression: "COUNT(*)"}, {name: arr, expression: "SUM(arr)"}]
"""
MONTHS = ("2026-11-01", "2026-12-01", "2027-01-01")


def _stored(instance: dg.DagsterInstance, key: list[str], partition: str) -> tuple[Any, Any]:
    """A partition's stored table (rows sorted) and its materialization's metadata."""
    import pyarrow.parquet as pq

    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition]), limit=1
    ).records
    materialization = records[0].asset_materialization
    assert materialization is not None
    metadata = {name: value.value for name, value in materialization.metadata.items()}
    rows = pq.read_table(str(metadata["artifact_path"])).to_pylist()
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str)), metadata


def test_a_single_run_backfill_stores_what_each_partition_alone_stores(
    project: Project, demo_files: Any
) -> None:
    partitions = "partitions: {type: monthly, start: 2026-01-01, end_offset: 12, backfill: %s}"
    project.add_playbook(
        "alone.yaml",
        playbook("alone", partitions % "per_partition", BACKFILLED, BACKFILLED_OUTPUTS),
    )
    project.add_playbook(
        "ranged.yaml", playbook("ranged", partitions % "single_run", BACKFILLED, BACKFILLED_OUTPUTS)
    )
    defs = definitions(project)
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    for month in MONTHS:
        assert execute_playbook(defs, "alone", instance=instance, partition_key=month).success
    ranged = execute_playbook(
        defs,
        "ranged",
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": MONTHS[0],
            "dagster/asset_partition_range_end": MONTHS[-1],
        },
    )
    assert ranged.success
    # The one range query ran once; every partition got its own materialization and file.
    sqls = {
        str(e.materialization.metadata["sql"].value)
        for e in ranged.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["ranged", "renewals"])
    }
    assert len(sqls) == 1 and "CAST('2026-11-01' AS DATE)" in sqls.pop()
    import duckdb

    with duckdb.connect(str(demo_files.warehouse), read_only=True) as con:
        for month in MONTHS:
            expected = con.execute(
                "SELECT count(*), sum(arr) FROM analytics.accounts "
                "WHERE date_trunc('month', renewal_date) = CAST(? AS DATE)",
                [month],
            ).fetchone()
            assert expected is not None and expected[0] > 0
            for name in ("renewals", "segments", "joined", "by_segment", "renewing", "totals"):
                alone_rows, alone_meta = _stored(instance, ["alone", name], month)
                ranged_rows, ranged_meta = _stored(instance, ["ranged", name], month)
                assert ranged_rows == alone_rows, (name, month)
                assert ranged_meta["dagster/row_count"] == alone_meta["dagster/row_count"]
                assert ranged_meta["artifact_path"] != alone_meta["artifact_path"]
            totals, _ = _stored(instance, ["ranged", "totals"], month)
            assert totals == [{"accounts": expected[0], "arr": expected[1]}]
    # One record per partition, each the report a run of that partition alone gives.
    config = load_config_file(project.config_path)
    from playbook_assets.core.run_records import iter_runs

    reports = {
        (r.playbook_id, r.manifest["partition"]): json.loads(
            (config.artifacts_dir / f"{r.run_id}.json").read_text()
        )
        for r in iter_runs(config.artifacts_dir)
    }
    for month in MONTHS:
        alone, ranged_report = reports[("alone", month)], reports[("ranged", month)]
        assert ranged_report["status"] == alone["status"] == "success"
        assert ranged_report["outputs"] == alone["outputs"]
        assert [s["row_count"] for s in ranged_report["steps"]] == [
            s["row_count"] for s in alone["steps"]
        ]
        assert ranged_report["partition"] == month
    assert len({r["run_id"] for (pid, _), r in reports.items() if pid == "ranged"}) == 3


def test_a_single_run_backfill_needs_a_column_to_split_on(project: Project) -> None:
    steps = BACKFILLED.replace("      partition_column: renewal_date\n", "")
    project.add_playbook(
        "r.yaml",
        playbook(
            "ranged", "partitions: {type: monthly, start: 2026-01-01, backfill: single_run}", steps
        ),
    )
    config = load_config_file(project.config_path)
    catalog = load_catalog(config, [])
    (broken,) = catalog.broken
    message = str(broken.error)
    assert "config/playbooks/r.yaml:6: step 'renewals': field 'partition_column'" in message
    assert "add 'partition_column: " in message and "backfill: per_partition" in message


def test_rows_outside_the_range_fail_the_split(project: Project) -> None:
    steps = BACKFILLED.replace(
        "WHERE renewal_date >= {{start}} AND renewal_date < {{end}}",
        "WHERE renewal_date >= {{start}} AND renewal_date < {{end}} + INTERVAL 1 MONTH",
    )
    project.add_playbook(
        "r.yaml",
        playbook(
            "ranged",
            "partitions: {type: monthly, start: 2026-01-01, end_offset: 12, backfill: single_run}",
            steps,
        ),
    )
    defs = definitions(project)
    result = execute_playbook(
        defs,
        "ranged",
        instance=dg.DagsterInstance.ephemeral(),
        tags={
            "dagster/asset_partition_range_start": MONTHS[0],
            "dagster/asset_partition_range_end": MONTHS[1],
        },
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    data = failure.step_failure_data.user_failure_data
    assert data is not None
    errors: Any = data.metadata["playbook/step_errors"].value
    assert "outside the partitions of the run" in errors["renewals"]["error"]
    assert "renewal_date" in errors["renewals"]["error"]


def test_schedule_runs_the_latest_complete_partition(project: Project) -> None:
    project.add_playbook(
        "p.yaml",
        playbook(
            "daily",
            "partitions: {type: daily, start: 2026-01-01}",
            extra="schedule: {cron: '0 6 * * *', timezone: UTC}",
        ),
    )
    defs = definitions(project)
    schedule = defs.resolve_schedule_def("daily_schedule")
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=dt.datetime(2026, 3, 10, 6, tzinfo=dt.UTC),
        repository_def=defs.get_repository_def(),
    )
    requests = schedule.evaluate_tick(context).run_requests or []
    assert [r.partition_key for r in requests] == ["2026-03-09"]


def test_schedule_parameters_are_the_run_config(project: Project) -> None:
    text = (Path(__file__).parents[2] / "playbook_defs/templates/segment_analysis.yaml").read_text()
    text = text.replace(
        "  outputs:",
        "  schedule:\n    cron: '0 7 * * 1'\n"
        "    parameters: {segment: smb}\n    enabled: false\n  outputs:",
        1,
    )
    project.add_playbook("segment.yaml", text)
    schedule = definitions(project).resolve_schedule_def("segment_analysis_schedule")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    context = dg.build_schedule_context(instance=instance)
    request = (schedule.evaluate_tick(context).run_requests or [])[0]
    config = request.run_config["ops"]["segment_analysis"]["config"]
    assert config["segment"] == "smb" and config["min_arr"] == 100000.0
    assert request.job_name == "__ASSET_JOB" and request.tags["playbook/id"] == "segment_analysis"
    assert {key.path[0] for key in request.asset_selection or []} == {"segment_analysis"}


def test_file_trigger_runs_once_per_new_or_changed_file(project: Project) -> None:
    inbox = project.playbooks_dir / "inbox"
    inbox.mkdir()
    steps = """
    - id: rows
      type: read
      config: {path: "inbox/*.csv"}
    """
    project.add_playbook(
        "f.yaml",
        playbook(
            "on_files",
            "parameters: [{name: source_file, type: string, default: none}]",
            steps,
            extra="triggers: [{type: file, path: 'inbox/*.csv', parameter: source_file}]",
        ),
    )
    sensor = definitions(project).resolve_sensor_def("on_files_file_trigger_0")
    instance = dg.DagsterInstance.ephemeral()
    (inbox / "a.csv").write_text("x\n1\n")
    first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    assert [r.tags["playbook/trigger_file"] for r in first.run_requests or []] == [
        str(inbox / "a.csv")
    ]
    request = (first.run_requests or [])[0]
    parameters = request.run_config["ops"]["on_files"]["config"]
    assert parameters == {"source_file": str(inbox / "a.csv")}
    again = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert again.run_requests == []
    (inbox / "b.csv").write_text("x\n2\n")
    (inbox / "a.csv").write_text("x\n1\n3\n")
    third = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=again.cursor))
    assert sorted(r.tags["playbook/trigger_file"] for r in third.run_requests or []) == [
        str(inbox / "a.csv"),
        str(inbox / "b.csv"),
    ]


def test_file_trigger_adds_dynamic_partitions(project: Project) -> None:
    inbox = project.playbooks_dir / "drops"
    inbox.mkdir()
    (inbox / "acme.csv").write_text("x\n1\n")
    project.add_playbook(
        "f.yaml",
        playbook(
            "per_client",
            "partitions: {type: dynamic, name: clients}",
            "    - id: rows\n      type: read\n      config: {path: 'drops/*.csv'}\n",
            extra="triggers: [{type: file, path: 'drops/*.csv'}]",
        ),
    )
    defs = definitions(project)
    sensor = defs.resolve_sensor_def("per_client_file_trigger_0")
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    context = dg.build_sensor_context(instance=instance, definitions=defs)
    # Called directly: the daemon adds the new partition before it checks the run's key.
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    assert [r.partition_key for r in result.run_requests or []] == ["acme"]
    added = result.dynamic_partitions_requests or []
    assert [(r.partitions_def_name, list(r.partition_keys)) for r in added] == [
        ("clients", ["acme"])
    ]


def test_asset_trigger_chains_playbooks(project: Project) -> None:
    first = """
    - id: totals
      type: query
      config: {template: "SELECT count(*) AS n FROM analytics.accounts"}
    """
    project.add_playbook("a.yaml", playbook("upstream", "", first))
    project.add_playbook(
        "b.yaml",
        playbook(
            "downstream", "", first, extra="triggers: [{type: asset, asset: upstream/totals}]"
        ),
    )
    defs = definitions(project)
    instance = dg.DagsterInstance.ephemeral()
    sensor = defs.resolve_sensor_def("downstream_asset_trigger_0")
    context = dg.build_sensor_context(instance=instance)
    assert not (sensor.evaluate_tick(context).run_requests or [])
    assert execute_playbook(defs, "upstream", instance=instance).success
    requests = sensor.evaluate_tick(dg.build_sensor_context(instance=instance)).run_requests or []
    assert [r.tags["playbook/triggered_by"] for r in requests] == ["upstream/totals"]


def test_asset_trigger_on_an_unknown_asset_is_a_broken_playbook(project: Project) -> None:
    project.add_playbook(
        "b.yaml",
        playbook(
            "downstream",
            "",
            STATIC_STEP.replace("${partition.key}", "x"),
            extra="triggers: [{type: asset, asset: upstream/totals}]",
        ),
    )
    catalog = load_catalog(load_config_file(project.config_path), [])
    assert [str(b.error) for b in catalog.broken] == [
        "config/playbooks/b.yaml:11: field 'triggers.asset': the asset trigger names unknown "
        "asset 'upstream/totals'; valid assets: downstream/segment_accounts"
    ]


def test_request_folder(project: Project, demo_files: Any) -> None:
    requests = project.root / "requests"
    requests.mkdir()
    config_text = project.config_path.read_text() + "  requests:\n    directory: ../requests\n"
    project.config_path.write_text(config_text)
    project.add_playbook(
        "s.yaml",
        (Path(__file__).parents[2] / "playbook_defs/templates/segment_analysis.yaml").read_text(),
    )
    (requests / "good.json").write_text(
        json.dumps({"playbook_id": "segment_analysis", "parameters": {"segment": "smb"}})
    )
    (requests / "bad.yaml").write_text("playbook_id: segment_analysis\nparameters: {min_arr: x}\n")
    (requests / "unknown.json").write_text(json.dumps({"playbook_id": "segment_analysys"}))
    sensor = definitions(project).resolve_sensor_def("playbook_requests")
    result = sensor.evaluate_tick(dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()))
    runs = result.run_requests or []
    assert [(r.tags["playbook/id"], r.tags["playbook/request"]) for r in runs] == [
        ("segment_analysis", "good.json")
    ]
    assert runs[0].run_config["ops"]["segment_analysis"]["config"]["segment"] == "smb"
    assert sorted(os.listdir(requests / "accepted")) == ["good.json"]
    assert sorted(os.listdir(requests / "rejected")) == [
        "bad.yaml",
        "bad.yaml.error.txt",
        "unknown.json",
        "unknown.json.error.txt",
    ]
    assert (requests / "rejected" / "bad.yaml.error.txt").read_text() == (
        "parameter 'min_arr' expects a number, got 'x'; for example min_arr=50000\n"
    )
    assert (
        "did you mean 'segment_analysis'?"
        in (requests / "rejected" / "unknown.json.error.txt").read_text()
    )


CHECKED = """
    - id: accounts
      type: query
      config: {{template: "SELECT account_id, segment, arr FROM analytics.accounts"}}
      checks:
        - {{type: row_count, min: 1, max: {max_rows}}}
        - {{type: not_null, columns: [account_id]}}
        - {{type: unique, columns: [account_id]}}
        - {{type: accepted_values, column: segment, values: [{segments}]}}
        - {{type: expression, name: positive_arr, expression: "MIN(arr) > 0", severity: warn}}
    - id: after
      type: filter
      config: {{input: "${{steps.accounts}}", condition: "arr > 0"}}
"""


def test_checks_pass_and_fail(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.add_playbook(
        "c.yaml",
        playbook(
            "checked", "", CHECKED.format(max_rows=100000, segments="enterprise, mid-market, smb")
        ),
    )
    assert main(["run", "checked", "--config", str(project.config_path), "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert {c["check"]: c["passed"] for c in report["checks"]} == {
        "row_count": True,
        "not_null_account_id": True,
        "unique_account_id": True,
        "accepted_values_segment": True,
        "positive_arr": True,
    }
    project.add_playbook(
        "c.yaml", playbook("checked", "", CHECKED.format(max_rows=10, segments="enterprise, smb"))
    )
    assert main(["run", "checked", "--config", str(project.config_path), "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    failed = {c["check"]: c["observed"] for c in report["checks"] if not c["passed"]}
    assert failed == {"row_count": 2000, "accepted_values_segment": report["checks"][3]["observed"]}
    assert failed["accepted_values_segment"] > 0
    assert [s["status"] for s in report["steps"]] == ["success", "success"]


def test_a_blocking_check_stops_downstream(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = CHECKED.format(max_rows=10, segments="enterprise").replace(
        "{type: row_count, min: 1, max: 10}", "{type: row_count, min: 1, max: 10, blocking: true}"
    )
    project.add_playbook("c.yaml", playbook("blocked", "", steps))
    code = main(["run", "blocked", "--config", str(project.config_path), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == EXIT_STEP_FAILED
    assert [s["status"] for s in report["steps"]] == ["error", "skipped"]
    assert "row_count" in report["steps"][0]["error"]


def test_every_check_kind_fails_on_bad_data(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = """
    - id: bad
      type: query
      config:
        template: "SELECT * FROM (VALUES (1, 'a', -5), (1, NULL, 3)) AS t(id, segment, arr)"
      checks:
        - {type: row_count, min: 3}
        - {type: not_null, columns: [segment]}
        - {type: unique, columns: [id]}
        - {type: accepted_values, column: segment, values: [b]}
        - {type: expression, name: positive_arr, expression: "MIN(arr) > 0", severity: warn}
    """
    project.add_playbook("bad.yaml", playbook("bad_data", "", steps))
    assert main(["run", "bad_data", "--config", str(project.config_path), "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    observed = {c["check"]: (c["passed"], c["severity"], c["observed"]) for c in report["checks"]}
    assert observed == {
        "row_count": (False, "error", 2),
        "not_null_segment": (False, "error", 1),
        "unique_id": (False, "error", 1),
        "accepted_values_segment": (False, "error", 1),
        "positive_arr": (False, "warn", False),
    }


def test_checks_treat_nulls_as_sql_and_dbt_do(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = "(1, 'a', 'x'), (2, NULL, 'x'), (NULL, 'b', NULL), (NULL, 'b', NULL), (3, 'b', 'y')"
    steps = f"""
    - id: nulls
      type: query
      config:
        template: "SELECT * FROM (VALUES {rows}) AS t(id, segment, region)"
      checks:
        - {{type: unique, columns: [id]}}
        - {{type: unique, name: unique_pair, columns: [segment, region]}}
        - {{type: not_null, columns: [segment, region]}}
        - {{type: accepted_values, column: segment, values: [a, b]}}
        - {{type: expression, name: min_of_nothing,
           expression: "MIN(CASE WHEN id > 10 THEN id END) > 0"}}
        - {{type: expression, name: max_positive, expression: "MAX(id) > 0"}}
    """
    project.add_playbook("n.yaml", playbook("nulls", "", steps))
    assert main(["run", "nulls", "--config", str(project.config_path), "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    observed = {c["check"]: (c["passed"], c["observed"]) for c in report["checks"]}

    # The same checks as plain SQL, the way dbt's generic tests are written.
    data = f"(VALUES {rows}) AS t(id, segment, region)"
    con = duckdb_connection()

    def count(sql: str) -> int:
        found = con.execute(sql).fetchone()
        assert found is not None
        return int(found[0])

    unique_id = count(
        f"SELECT count(*) FROM (SELECT id FROM {data} WHERE id IS NOT NULL "
        "GROUP BY id HAVING count(*) > 1)"
    )
    unique_pair = count(
        f"SELECT count(*) FROM (SELECT segment, region FROM {data} WHERE segment IS NOT NULL "
        "AND region IS NOT NULL GROUP BY segment, region HAVING count(*) > 1)"
    )
    nulls = count(f"SELECT count(*) FROM {data} WHERE segment IS NULL OR region IS NULL")
    outside = count(f"SELECT count(*) FROM {data} WHERE segment NOT IN ('a', 'b')")
    assert (unique_id, unique_pair, nulls, outside) == (0, 0, 3, 0)
    assert observed == {
        "unique_id": (True, unique_id),
        "unique_pair": (True, unique_pair),
        "not_null_segment_region": (False, nulls),
        "accepted_values_segment": (True, outside),
        "min_of_nothing": (True, None),
        "max_positive": (True, True),
    }


def duckdb_connection() -> Any:
    import duckdb

    return duckdb.connect()
