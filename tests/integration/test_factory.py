"""The factory: YAML in, Dagster definitions out, materialized with real resources."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from playbook_assets.app.runner import execute_playbook
from playbook_assets.core.catalog import load_catalog
from playbook_assets.core.config import load_config_file
from playbook_assets.core.errors import PlaybookValidationError
from playbook_assets.dagster_adapter.code_location import build_code_location
from playbook_assets.dagster_adapter.factory import build_definitions
from playbook_assets.dagster_adapter.run_config import parameters_run_config
from tests.conftest import DemoFiles, Project

PLAYBOOK = """
playbook:
  id: arr_by_segment
  name: ARR by Segment
  description: Accounts above a floor, grouped.
  parameters:
    - name: min_arr
      type: number
      default: 50000
      description: ARR floor.
    - name: segments
      type: array
      default: [enterprise, mid-market]
  steps:
    - id: accounts
      name: Big accounts
      type: query
      config:
        template: |
          SELECT account_id, segment, arr, health_status
          FROM analytics.accounts
          WHERE arr >= {{min_arr}} AND segment IN ({{segments}})
        parameters:
          min_arr: "${parameters.min_arr}"
          segments: "${parameters.segments}"
    - id: deals
      type: search
      config:
        object: deals
        filters:
          - {property: dealstage, operator: EQ, value: closedwon}
        properties: [amount]
        associations: [companies]
    - id: by_segment
      type: aggregate
      config:
        input: "${steps.accounts}"
        group_by: [segment]
        metrics:
          - {name: accounts, expression: "COUNT(*)"}
          - {name: arr, expression: "SUM(arr)"}
    - id: at_risk
      type: filter
      depends_on: [deals]
      config:
        input: "${steps.accounts}"
        condition: "health_status = 'At-Risk'"
  outputs:
    - name: segments
      source: "${steps.by_segment}"
    - name: totals
      type: aggregate
      source: "${steps.accounts}"
      metrics:
        - {name: total_arr, expression: "SUM(arr)"}
"""


def definitions(project: Project, text: str = PLAYBOOK) -> dg.Definitions:
    project.add_playbook("arr_by_segment.yaml", text)
    config = load_config_file(project.config_path)
    catalog = load_catalog(config, [])
    return build_definitions(catalog, config)


def test_asset_graph(project: Project) -> None:
    defs = definitions(project)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {
        "arr_by_segment/accounts",
        "arr_by_segment/deals",
        "arr_by_segment/by_segment",
        "arr_by_segment/at_risk",
        "arr_by_segment/segments",
        "arr_by_segment/totals",
        "arr_by_segment/run_report",
    }

    def parents(name: str) -> set[str]:
        node = graph.get(dg.AssetKey(["arr_by_segment", name]))
        return {key.path[1] for key in node.parent_keys}

    assert parents("accounts") == set()
    assert parents("by_segment") == {"accounts"}
    assert parents("at_risk") == {"accounts", "deals"}
    assert parents("segments") == {"by_segment"}
    assert parents("totals") == {"accounts"}
    assert parents("run_report") == {
        "accounts",
        "deals",
        "by_segment",
        "at_risk",
        "segments",
        "totals",
    }
    accounts = graph.get(dg.AssetKey(["arr_by_segment", "accounts"]))
    assert accounts.group_name == "arr_by_segment"
    assert accounts.description == "Big accounts"
    assert accounts.kinds == {"duckdb"}
    references = accounts.metadata["dagster/code_references"].code_references
    assert references[0].file_path.endswith("config/playbooks/arr_by_segment.yaml")
    assert references[0].line_number == 14
    # A CRM search shows its CRM, not the DuckDB file the demo CRM is stored in.
    assert graph.get(dg.AssetKey(["arr_by_segment", "deals"])).kinds == {"demo crm"}
    # One op per playbook, in the pool of its warehouse connection (it also queries the CRM).
    pools = {frozenset(graph.get(key).pools or ()) for key in graph.get_all_asset_keys()}
    assert pools == {frozenset({"connection_duckdb"})}
    assets_def = defs.resolve_assets_def(dg.AssetKey(["arr_by_segment", "accounts"]))
    assert assets_def.op.name == "arr_by_segment"
    assert assets_def.can_subset


def test_launchpad_config_is_the_typed_parameters(project: Project) -> None:
    defs = definitions(project)
    job = defs.resolve_implicit_global_asset_job_def()
    config_type: Any = job.run_config_schema.config_type
    ops = config_type.fields["ops"].config_type
    parameters = ops.fields["arr_by_segment"].config_type.fields["config"]
    assert set(parameters.config_type.fields) == {"min_arr", "segments"}
    min_arr = parameters.config_type.fields["min_arr"]
    assert min_arr.default_value == 50000.0
    assert min_arr.description == "ARR floor."
    # No job per playbook: only the artifact store's prune job is declared.
    assert [job.name for job in defs.jobs or []] == ["artifacts_prune"]


def test_materialize_with_real_resources(project: Project, demo_files: DemoFiles) -> None:
    defs = definitions(project)
    instance = dg.DagsterInstance.ephemeral()
    result = execute_playbook(
        defs,
        "arr_by_segment",
        instance=instance,
        run_config=parameters_run_config("arr_by_segment", {"min_arr": 100000.0}),
    )
    assert result.success
    with duckdb.connect(str(demo_files.warehouse), read_only=True) as con:
        expected = con.execute(
            """
            SELECT segment, COUNT(*), SUM(arr) FROM analytics.accounts
            WHERE arr >= 100000 AND segment IN ('enterprise', 'mid-market')
            GROUP BY segment ORDER BY segment
            """
        ).fetchall()
    by_segment = result.asset_value(dg.AssetKey(["arr_by_segment", "by_segment"])).table
    assert [tuple(row.values()) for row in by_segment.to_pylist()] == expected

    event = instance.get_latest_materialization_event(dg.AssetKey(["arr_by_segment", "accounts"]))
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    assert metadata["dagster/row_count"].value == sum(row[1] for row in expected)
    sql = metadata["sql"].value
    assert "arr >= 100000 AND segment IN ('enterprise', 'mid-market')" in str(sql)
    schema: Any = metadata["dagster/column_schema"].value
    assert [column.name for column in schema.columns] == [
        "account_id",
        "segment",
        "arr",
        "health_status",
    ]
    assert "| account_id | segment | arr | health_status |" in str(metadata["preview"].value)
    path = Path(str(metadata["artifact_path"].value))
    run_id = result.run_id
    assert (
        path == project.artifacts_dir / "data" / "arr_by_segment" / "accounts" / f"{run_id}.parquet"
    )
    assert pq.read_table(path).num_rows == metadata["dagster/row_count"].value
    assert not list(path.parent.glob(".*tmp*"))

    deals_event = instance.get_latest_materialization_event(
        dg.AssetKey(["arr_by_segment", "deals"])
    )
    assert deals_event is not None and deals_event.asset_materialization is not None
    request: Any = deals_event.asset_materialization.metadata["search_request"].value
    assert request["filterGroups"][0]["filters"][0] == {
        "propertyName": "dealstage",
        "operator": "EQ",
        "value": "closedwon",
    }


def test_downstream_alone_reads_latest_upstream(project: Project) -> None:
    defs = definitions(project)
    instance = dg.DagsterInstance.ephemeral()
    first = execute_playbook(defs, "arr_by_segment", instance=instance)
    assert first.success
    upstream = first.asset_value(dg.AssetKey(["arr_by_segment", "accounts"])).table
    only_filter = execute_playbook(defs, "arr_by_segment", instance=instance, assets=["at_risk"])
    assert only_filter.success
    at_risk = only_filter.asset_value(dg.AssetKey(["arr_by_segment", "at_risk"])).table
    expected = sum(1 for row in upstream.to_pylist() if row["health_status"] == "At-Risk")
    assert at_risk.num_rows == expected > 0


def test_step_failure_skips_downstream_and_names_the_step(project: Project) -> None:
    broken_sql = PLAYBOOK.replace("FROM analytics.accounts", "FROM analytics.acounts")
    defs = definitions(project, broken_sql)
    result = execute_playbook(defs, "arr_by_segment", instance=dg.DagsterInstance.ephemeral())
    assert not result.success
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert [e.step_key for e in failures] == ["arr_by_segment"]
    failure_data = failures[0].step_failure_data.user_failure_data
    assert failure_data is not None
    errors: Any = failure_data.metadata["playbook/step_errors"].value
    assert list(errors) == ["accounts"]
    message = errors["accounts"]["error"]
    assert message.startswith("config/playbooks/arr_by_segment.yaml:14: step 'accounts': ")
    assert "acounts" in message
    # The step that does not depend on it still ran; the ones that do were skipped.
    materialized = {
        e.asset_key.path[1]
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION and e.asset_key
    }
    assert materialized == {"deals"}


def test_broken_playbook_is_visible_next_to_good_ones(project: Project) -> None:
    project.add_playbook("good.yaml", PLAYBOOK)
    project.add_playbook(
        "broken.yaml",
        textwrap.dedent(
            """
            playbook:
              id: broken_one
              name: Broken
              steps:
                - id: a
                  type: filter
                  config: {input: "${steps.nope}", condition: "x > 1"}
            """
        ),
    )
    defs = build_code_location([], config_path=str(project.config_path))
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "arr_by_segment/accounts" in keys
    assert "broken_one/invalid_playbook" in keys
    spec = next(
        s
        for s in defs.resolve_all_asset_specs()
        if s.key == dg.AssetKey(["broken_one", "invalid_playbook"])
    )
    assert spec.group_name == "broken_one"
    assert "config/playbooks/broken.yaml:7: step 'a': unknown step 'nope'" in str(
        spec.metadata["error"]
    )
    with pytest.raises(PlaybookValidationError, match=r"1 playbook\(s\) failed to load"):
        build_code_location([], config_path=str(project.config_path), strict=True)


def test_executor_follows_the_config(project: Project) -> None:
    text = project.config_path.read_text().replace(
        "retry_attempts: 1",
        "retry_attempts: 1\n    executor: multiprocess\n    max_parallel_steps: 2",
    )
    project.config_path.write_text(text)
    defs = definitions(project)
    executor = defs.resolve_implicit_global_asset_job_def().executor_def
    assert executor.name == "multiprocess"
    resolved = executor.apply_config_mapping({}).value
    assert resolved is not None and resolved["config"]["max_concurrent"] == 2


def _records(project: Project, dagster_run_id: str) -> list[dict[str, Any]]:
    """The run reports stored for a Dagster run."""
    import json

    paths = [
        path
        for path in project.artifacts_dir.glob("run_*.json")
        if not path.name.endswith(".manifest.json")
    ]
    reports = [json.loads(path.read_text()) for path in paths]
    return [r for r in reports if r["dagster_run_id"] == dagster_run_id]


def test_a_subset_run_reports_what_it_ran(project: Project) -> None:
    """A selection in the UI, or Re-execute from asset failure: the steps left out are
    not_selected, and the run succeeds when what it ran succeeded."""
    defs = definitions(project)
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    assert execute_playbook(defs, "arr_by_segment", instance=instance).success
    subset = execute_playbook(
        defs, "arr_by_segment", instance=instance, assets=["at_risk", "totals"]
    )
    assert subset.success
    (report,) = _records(project, subset.run_id)
    assert report["status"] == "success"
    assert {s["step_id"]: s["status"] for s in report["steps"]} == {
        "accounts": "not_selected",
        "deals": "not_selected",
        "by_segment": "not_selected",
        "at_risk": "success",
    }
    assert {name: o["status"] for name, o in report["outputs"].items()} == {
        "segments": "not_selected",
        "totals": "success",
    }
    assert report["summary"]["not_selected_steps"] == 3
    # at_risk read the stored accounts of the first run: its rows are the At-Risk ones there.
    accounts = latest_table(instance, ["arr_by_segment", "accounts"])
    at_risk = [row for row in accounts.to_pylist() if row["health_status"] == "At-Risk"]
    assert (
        next(s for s in report["steps"] if s["step_id"] == "at_risk")["row_count"]
        == len(at_risk)
        > 0
    )
    total = sum(row["arr"] for row in accounts.to_pylist())
    assert report["outputs"]["totals"]["values"]["total_arr"] == float(total)


def latest_table(instance: dg.DagsterInstance, key: list[str]) -> Any:
    records = instance.fetch_materializations(dg.AssetKey(key), limit=1).records
    materialization = records[0].asset_materialization
    assert materialization is not None
    return pq.read_table(str(materialization.metadata["artifact_path"].value))


def test_a_launchpad_value_of_the_wrong_type_is_recorded_with_the_parameter(
    project: Project,
) -> None:
    text = PLAYBOOK.replace(
        "    - name: segments\n",
        "    - name: since\n      type: date\n      default: 2026-01-01\n    - name: segments\n",
        1,
    )
    defs = definitions(project, text)
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    result = execute_playbook(
        defs,
        "arr_by_segment",
        instance=instance,
        run_config=parameters_run_config("arr_by_segment", {"since": "last tuesday"}),
    )
    assert not result.success
    (report,) = _records(project, result.run_id)
    assert report["status"] == "failed"
    assert "parameter 'since' expects a date (YYYY-MM-DD), got 'last tuesday'" in report["error"]
    assert {s["status"] for s in report["steps"]} == {"skipped"}
    assert all("since" in s["reason"] for s in report["steps"])
    assert report["metadata"]["parameters_used"]["since"] == "last tuesday"


def test_a_failing_output_is_an_error_with_its_reason(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    from playbook_assets.app.cli import EXIT_STEP_FAILED, main

    # Validation cannot know the column's type; the aggregate fails when it runs.
    text = PLAYBOOK.replace(
        '{name: total_arr, expression: "SUM(arr)"}', '{name: total_arr, expression: "SUM(segment)"}'
    )
    definitions(project, text)
    code = main(["run", "arr_by_segment", "--config", str(project.config_path)])
    out = capsys.readouterr().out
    assert code == EXIT_STEP_FAILED
    import json

    report = json.loads(out)
    assert report["status"] == "failed"
    assert report["outputs"]["totals"]["status"] == "error"
    assert "arr_by_segment.yaml" in report["outputs"]["totals"]["error"]
    assert "sum" in report["outputs"]["totals"]["error"].lower()
    assert report["outputs"]["segments"]["status"] == "success"
    # A terminal shows the same, in words.
    import io

    from playbook_assets.app.cli import print_summary

    shown = io.StringIO()
    print_summary(report, shown)
    assert "outputs not produced:" in shown.getvalue()
    assert "error        totals: " in shown.getvalue()


def test_a_translator_sets_keys_groups_owners_and_tags(project: Project) -> None:
    from playbook_assets.dagster_adapter.translator import PlaybookTranslator

    project.add_playbook("arr_by_segment.yaml", PLAYBOOK)
    config = load_config_file(project.config_path)
    catalog = load_catalog(config, [])
    translator = PlaybookTranslator(
        key_prefix=["acme"], group_name="revops", owners=["team:revops"], tags={"client": "acme"}
    )
    defs = build_definitions(catalog, config, translator=translator)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert "acme/arr_by_segment/by_segment" in keys and "acme/arr_by_segment/run_report" in keys
    node = graph.get(dg.AssetKey(["acme", "arr_by_segment", "by_segment"]))
    assert node.group_name == "revops"
    assert node.owners == ["team:revops"]
    assert node.tags["client"] == "acme"
    assert {key.path[-1] for key in node.parent_keys} == {"accounts"}
    # The run is keyed the same way: the op finds its steps and stored results by the keys.
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    job = defs.resolve_implicit_global_asset_job_def()
    selection = [key for key in graph.get_all_asset_keys() if key.path[0] == "acme"]
    result = job.execute_in_process(instance=instance, asset_selection=selection)
    assert result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["acme", "arr_by_segment", "totals"]) in materialized
    (report,) = _records(project, result.run_id)
    assert report["status"] == "success"
    accounts = latest_table(instance, ["acme", "arr_by_segment", "accounts"])
    assert report["steps"][0]["row_count"] == accounts.num_rows > 0
