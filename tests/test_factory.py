"""The factory: YAML in, Dagster definitions out, materialized with real resources."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from playbook_assets.catalog import load_catalog
from playbook_assets.code_location import build_code_location
from playbook_assets.config import load_config_file
from playbook_assets.errors import PlaybookValidationError
from playbook_assets.factory import build_definitions
from playbook_assets.run_config import parameters_run_config
from playbook_assets.runner import execute_playbook
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
    assert graph.get(dg.AssetKey(["arr_by_segment", "deals"])).kinds == {"duckdb"}
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
