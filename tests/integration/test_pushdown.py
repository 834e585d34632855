"""Transforms over views run on the warehouse, and give what the local DuckDB path gives:
on DuckDB, PostgreSQL (a real server), Snowflake (fakesnow) and the BigQuery stand-in.

Each playbook runs twice, its query steps as views (the transforms pushed down) and as tables
(the transforms on DuckDB here); both are compared with each other and with plain SQL written
here, run by DuckDB on the same rows.
"""

from __future__ import annotations

import math
import textwrap
import uuid
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import dagster as dg
import duckdb
import pyarrow as pa
import pytest
import yaml

from playbook_assets.app.local import LocalRun, run_playbook_locally
from playbook_assets.connections.warehouses.postgres import PostgresWarehouse
from playbook_assets.core.catalog import load_catalog, load_playbook_file
from playbook_assets.core.config import load_config_file
from playbook_assets.core.errors import PlaybookValidationError
from playbook_assets.dagster_adapter.factory import build_definitions
from standins.bigquery_standin import BigQueryStandIn
from standins.postgres_server import PostgresServer
from tests.conftest import DemoFiles, connection_config_text
from tests.integration.test_warehouse_snowflake import FakeSnow, fake_snowflake  # noqa: F401

pytest_plugins = ["tests.conftest_postgres"]

ACCOUNTS = pa.table(
    {
        "id": pa.array([1, 2, 3, 4, 5, None, 7], pa.int64()),
        "segment": pa.array(["smb", "ent", None, "smb", "ent", "smb", "mid"]),
        "arr": pa.array(
            [
                Decimal("120.50"),
                Decimal("99.99"),
                None,
                Decimal("5000.00"),
                Decimal("0.01"),
                Decimal("250.25"),
                None,
            ],
            pa.decimal128(12, 2),
        ),
        "score": pa.array([0.5, None, 2.25, 1.0, 3.5, 0.125, 4.0], pa.float64()),
    }
)
OWNERS = pa.table(
    {
        "id": pa.array([1, 1, 3, None, 8, 5], pa.int64()),
        "owner": pa.array(["ann", "bob", "cy", "dee", "eve", None]),
        "seats": pa.array([10, 20, None, 5, 7, 3], pa.int64()),
    }
)

PLAYBOOK = """
playbook:
  id: pushdown_{kind}
  name: Push-down
  steps:
    - id: accounts
      type: query
      connection: wh
      materialize: {kind}
      config: {{template: "SELECT id, segment, arr, score FROM {accounts}"}}
    - id: owners
      type: query
      connection: wh
      materialize: {kind}
      config: {{template: "SELECT id, owner, seats FROM {owners}"}}
    - id: inner_join
      type: join
      config: {{left: "${{steps.accounts}}", right: "${{steps.owners}}", on: "id = id"}}
    - id: left_join
      type: join
      config:
        left: "${{steps.accounts}}"
        right: "${{steps.owners}}"
        on: "id = id"
        type: left
    - id: outer_join
      type: join
      config:
        left: "${{steps.accounts}}"
        right: "${{steps.owners}}"
        on: "id = id"
        type: outer
    - id: by_segment
      type: aggregate
      config:
        input: "${{steps.accounts}}"
        group_by: [segment]
        metrics:
          - {{name: total_arr, expression: "SUM(arr)"}}
          - {{name: accounts, expression: "COUNT(*)"}}
          - {{name: with_arr, expression: "COUNT(arr)"}}
          - {{name: big, expression: "COUNT(*) WHERE arr > 100"}}
          - {{name: top_arr, expression: "MAX(arr)"}}
          - {{name: mean_score, expression: "AVG(score)"}}
    - id: totals
      type: aggregate
      config:
        input: "${{steps.accounts}}"
        metrics:
          - {{name: total_arr, expression: "SUM(arr)"}}
          - {{name: accounts, expression: "COUNT(*)"}}
    - id: big_accounts
      type: filter
      config: {{input: "${{steps.accounts}}", condition: "arr > 100 AND score < 2"}}
    - id: seats_by_owner
      type: aggregate
      config:
        input: "${{steps.left_join}}"
        group_by: [owner]
        metrics:
          - {{name: seats, expression: "SUM(seats)"}}
          - {{name: arr, expression: "SUM(arr)"}}
    - id: busy_owners
      type: filter
      config: {{input: "${{steps.seats_by_owner}}", condition: "seats >= 10"}}
"""
TRANSFORMS = [
    "inner_join",
    "left_join",
    "outer_join",
    "by_segment",
    "totals",
    "big_accounts",
    "seats_by_owner",
    "busy_owners",
]
ORDERED = {"by_segment", "seats_by_owner", "busy_owners"}
# The same results, as plain SQL on the same rows (DuckDB, here).
EXPECTED_SQL = {
    "inner_join": "SELECT a.id, a.segment, a.arr, a.score, o.owner, o.seats "
    "FROM accounts a JOIN owners o ON a.id = o.id",
    "left_join": "SELECT a.id, a.segment, a.arr, a.score, o.owner, o.seats "
    "FROM accounts a LEFT JOIN owners o ON a.id = o.id",
    "outer_join": "SELECT COALESCE(a.id, o.id), a.segment, a.arr, a.score, o.owner, o.seats "
    "FROM accounts a FULL JOIN owners o ON a.id = o.id",
    "by_segment": "SELECT segment, SUM(arr), COUNT(*), COUNT(arr), "
    "COUNT(*) FILTER (WHERE arr > 100), MAX(arr), AVG(score) FROM accounts "
    "GROUP BY segment ORDER BY segment NULLS LAST",
    "totals": "SELECT SUM(arr), COUNT(*) FROM accounts",
    "big_accounts": "SELECT * FROM accounts WHERE arr > 100 AND score < 2",
    "seats_by_owner": "SELECT o.owner, SUM(o.seats), SUM(a.arr) FROM accounts a "
    "LEFT JOIN owners o ON a.id = o.id GROUP BY o.owner ORDER BY o.owner NULLS LAST",
    "busy_owners": "SELECT * FROM (SELECT o.owner, SUM(o.seats) AS s, SUM(a.arr) FROM accounts a "
    "LEFT JOIN owners o ON a.id = o.id GROUP BY o.owner) WHERE s >= 10 "
    "ORDER BY owner NULLS LAST",
}


def _expected() -> dict[str, list[tuple[Any, ...]]]:
    with duckdb.connect() as con:
        con.register("accounts", ACCOUNTS)
        con.register("owners", OWNERS)
        return {name: con.sql(sql).fetchall() for name, sql in EXPECTED_SQL.items()}


def _rows(table: pa.Table, ordered: bool) -> list[tuple[Any, ...]]:
    rows = [tuple(row.values()) for row in table.to_pylist()]
    return rows if ordered else sorted(rows, key=repr)


def _same(actual: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> bool:
    """Equal rows: numbers by value (a warehouse's DECIMAL(38,0) count is the integer);
    floats (AVG) to 12 significant digits."""
    if len(actual) != len(expected):
        return False
    for row, want in zip(actual, expected, strict=True):
        if len(row) != len(want):
            return False
        for value, wanted in zip(row, want, strict=True):
            if isinstance(value, float) or isinstance(wanted, float):
                if value is None or wanted is None:
                    if value is not wanted:
                        return False
                elif not math.isclose(float(value), float(wanted), rel_tol=1e-12):
                    return False
            elif value != wanted:
                return False
    return True


def _run(root: Path, config_text: str, kind: str, tables: Mapping[str, str]) -> LocalRun:
    folder = root / kind
    folder.mkdir()
    config_path = folder / "playbook-executor.yaml"
    config_path.write_text(config_text, encoding="utf-8")
    playbook = folder / "pushdown.yaml"
    playbook.write_text(
        textwrap.dedent(PLAYBOOK.format(kind=kind, **tables)).lstrip(), encoding="utf-8"
    )
    config = load_config_file(config_path)
    run = run_playbook_locally(load_playbook_file(playbook, config), config)
    errors = [step["error"] for step in run.report["steps"] if "error" in step]
    assert run.report["status"] == "success", "\n".join(errors)
    return run


def _check_both_ways(root: Path, config_text: str, tables: Mapping[str, str]) -> None:
    pushed = _run(root, config_text, "view", tables)
    local = _run(root, config_text, "table", tables)
    expected = _expected()
    pushed_steps = {step["step_id"]: step for step in pushed.report["steps"]}
    local_steps = {step["step_id"]: step for step in local.report["steps"]}
    for name in TRANSFORMS:
        assert pushed_steps[name]["ran_in"] == "warehouse wh", name
        assert local_steps[name]["ran_in"] == "local", name
        pushed_table, local_table = pushed.table(name), local.table(name)
        assert pushed_table.schema.remove_metadata() == local_table.schema.remove_metadata()
        ordered = name in ORDERED
        pushed_rows, local_rows = _rows(pushed_table, ordered), _rows(local_table, ordered)
        assert _same(pushed_rows, local_rows), (name, pushed_rows, local_rows)
        want = expected[name] if ordered else sorted(expected[name], key=repr)
        assert _same(local_rows, want), (name, local_rows, want)
        assert pushed_steps[name]["row_count"] == len(want)
    for name in ("accounts", "owners"):
        assert pushed_steps[name]["materialized"] == "view"
        assert pushed_steps[name]["row_count"] is None
    assert local_steps["inner_join"]["ran_locally_because"].startswith("its left")


def test_duckdb_both_ways(tmp_path: Path, demo_files: DemoFiles) -> None:
    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as con:
        con.register("a", ACCOUNTS)
        con.register("o", OWNERS)
        con.execute("CREATE SCHEMA pd")
        con.execute("CREATE TABLE pd.accounts AS FROM a")
        con.execute("CREATE TABLE pd.owners AS FROM o")
    settings = {"type": "duckdb", "database": str(database)}
    config = connection_config_text(demo_files, "wh", settings, role="data_warehouse")
    _check_both_ways(tmp_path, config, {"accounts": "pd.accounts", "owners": "pd.owners"})


def test_postgres_both_ways(
    tmp_path: Path, demo_files: DemoFiles, postgres_server: PostgresServer
) -> None:
    settings: dict[str, Any] = {
        "host": postgres_server.host,
        "port": postgres_server.port,
        "user": "postgres",
        "database": "postgres",
    }
    schema = f"pd_{uuid.uuid4().hex[:8]}"
    warehouse = PostgresWarehouse(**settings)
    warehouse.load_table(f"{schema}.accounts", ACCOUNTS)
    warehouse.load_table(f"{schema}.owners", OWNERS)
    config = connection_config_text(
        demo_files, "wh", {"type": "postgres", **settings}, role="data_warehouse"
    )
    _check_both_ways(
        tmp_path, config, {"accounts": f"{schema}.accounts", "owners": f"{schema}.owners"}
    )


def test_snowflake_both_ways(
    tmp_path: Path,
    demo_files: DemoFiles,
    fake_snowflake: FakeSnow,  # noqa: F811
) -> None:
    database = f"PD_{uuid.uuid4().hex[:8].upper()}"
    warehouse = fake_snowflake.warehouse(database)
    warehouse.load_table("analytics.pd_accounts", ACCOUNTS)
    warehouse.load_table("analytics.pd_owners", OWNERS)
    settings = {"type": "snowflake", **fake_snowflake.settings(database)}
    config = connection_config_text(demo_files, "wh", settings, role="data_warehouse")
    _check_both_ways(
        tmp_path, config, {"accounts": "analytics.pd_accounts", "owners": "analytics.pd_owners"}
    )


@pytest.fixture
def bigquery() -> Iterator[BigQueryStandIn]:
    with BigQueryStandIn() as server:
        yield server


def test_bigquery_both_ways(
    tmp_path: Path, demo_files: DemoFiles, bigquery: BigQueryStandIn
) -> None:
    from playbook_assets.connections.warehouses.bigquery import BigQueryWarehouse

    settings: dict[str, Any] = {
        "project": bigquery.project,
        "dataset": "analytics",
        "api_endpoint": bigquery.base_url,
        "request_retry_seconds": 5,
    }
    warehouse = BigQueryWarehouse(**settings)
    warehouse.load_table("analytics.pd_accounts", ACCOUNTS)
    warehouse.load_table("analytics.pd_owners", OWNERS)
    config = connection_config_text(
        demo_files, "wh", {"type": "bigquery", **settings}, role="data_warehouse"
    )
    _check_both_ways(
        tmp_path, config, {"accounts": "analytics.pd_accounts", "owners": "analytics.pd_owners"}
    )


def _duckdb_project(tmp_path: Path, demo_files: DemoFiles, databases: int = 1) -> Path:
    """A config with DuckDB warehouses ``wh`` (and ``wh2``) holding the two tables."""
    connections: dict[str, Any] = {}
    for index in range(databases):
        name = "wh" if index == 0 else f"wh{index + 1}"
        database = tmp_path / f"{name}.duckdb"
        with duckdb.connect(str(database)) as con:
            con.register("a", ACCOUNTS)
            con.register("o", OWNERS)
            con.execute("CREATE TABLE accounts AS FROM a")
            con.execute("CREATE TABLE owners AS FROM o")
        connections[name] = {"type": "duckdb", "database": str(database)}
    text = connection_config_text(demo_files, "wh", connections["wh"], role="data_warehouse")
    config = yaml.safe_load(text)
    config["playbook_executor"]["connections"].update(connections)
    path = tmp_path / "playbook-executor.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _run_text(tmp_path: Path, config_path: Path, text: str) -> LocalRun:
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    config = load_config_file(config_path)
    return run_playbook_locally(load_playbook_file(playbook, config), config)


def _steps(run: LocalRun) -> dict[str, dict[str, Any]]:
    return {step["step_id"]: step for step in run.report["steps"]}


def test_a_transform_over_a_table_runs_locally_and_says_why(
    tmp_path: Path, demo_files: DemoFiles
) -> None:
    run = _run_text(
        tmp_path,
        _duckdb_project(tmp_path, demo_files),
        """
        playbook:
          id: mixed
          name: Mixed
          steps:
            - {id: accounts, type: query, materialize: view, config: {template: "FROM accounts"}}
            - {id: owners, type: query, config: {template: "FROM owners"}}
            - id: joined
              type: join
              config: {left: "${steps.accounts}", right: "${steps.owners}", on: "id = id"}
        """,
    )
    assert run.report["status"] == "success"
    joined = _steps(run)["joined"]
    assert joined["ran_in"] == "local"
    assert joined["ran_locally_because"] == (
        "its right ${steps.owners} is not a view (materialize: view)"
    )
    # The view was fetched to run the join here: all of its rows.
    assert joined["fetched_views"] == {"accounts": ACCOUNTS.num_rows}
    assert _same(_rows(run.table("joined"), False), sorted(_expected()["inner_join"], key=repr))


def test_views_on_two_connections_join_locally(tmp_path: Path, demo_files: DemoFiles) -> None:
    run = _run_text(
        tmp_path,
        _duckdb_project(tmp_path, demo_files, databases=2),
        """
        playbook:
          id: two
          name: Two
          steps:
            - id: accounts
              type: query
              materialize: view
              config: {template: "FROM accounts"}
            - id: owners
              type: query
              connection: wh2
              materialize: view
              config: {template: "FROM owners"}
            - id: joined
              type: join
              config:
                left: "${steps.accounts}"
                right: "${steps.owners}"
                on: "id = id"
                type: outer
        """,
    )
    joined = _steps(run)["joined"]
    assert joined["ran_in"] == "local"
    assert joined["ran_locally_because"] == "its inputs are on different connections (wh, wh2)"
    assert joined["fetched_views"] == {"accounts": 7, "owners": 6}
    assert _same(_rows(run.table("joined"), False), sorted(_expected()["outer_join"], key=repr))


def test_a_data_output_of_a_view_holds_its_rows(tmp_path: Path, demo_files: DemoFiles) -> None:
    run = _run_text(
        tmp_path,
        _duckdb_project(tmp_path, demo_files),
        """
        playbook:
          id: out
          name: Out
          steps:
            - id: accounts
              type: query
              materialize: view
              config: {template: "SELECT * FROM accounts WHERE arr > 100"}
          outputs:
            - {name: big, source: "${steps.accounts}"}
        """,
    )
    assert run.report["status"] == "success"
    assert run.report["outputs"]["big"]["row_count"] == 3
    with duckdb.connect() as con:
        con.register("accounts", ACCOUNTS)
        want = con.sql("SELECT * FROM accounts WHERE arr > 100").fetchall()
    assert _same(_rows(run.table("big"), False), sorted(want, key=repr))
    # The step itself keeps the SQL, not the rows.
    assert run.table("accounts").num_rows == 0
    assert _steps(run)["accounts"]["row_count"] is None


@pytest.mark.parametrize(
    ("step", "key", "message"),
    [
        (
            """
            - id: joined
              type: join
              materialize: view
              config: {left: "${steps.accounts}", right: "${steps.accounts}", on: "id = id"}
            """,
            "materialize: view",
            "a join step cannot be a view",
        ),
        (
            """
            - id: joined
              type: query
              materialize: view
              checks: [{type: row_count, min: 1}]
              config: {template: "FROM owners"}
            """,
            "checks:",
            "its checks would have nothing to read",
        ),
        (
            """
            - id: joined
              type: query
              materialize: view
              partition_column: day
              config: {template: "SELECT DATE '2026-01-05' AS day"}
            """,
            "partition_column:",
            "a view cannot be split by partition_column",
        ),
    ],
)
def test_misplaced_views_are_errors_at_their_line(
    tmp_path: Path, demo_files: DemoFiles, step: str, key: str, message: str
) -> None:
    text = (
        textwrap.dedent(
            """
        playbook:
          id: bad
          name: Bad
          partitions: {type: monthly, start: 2026-01-01, backfill: single_run}
          steps:
            - {id: accounts, type: query, materialize: view, config: {template: "FROM accounts"}}
        """
        ).lstrip()
        + textwrap.indent(textwrap.dedent(step).strip(), "    ")
        + "\n"
    )
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text(text, encoding="utf-8")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.strip().startswith(key))
    config = load_config_file(_duckdb_project(tmp_path, demo_files))
    with pytest.raises(PlaybookValidationError) as raised:
        load_playbook_file(playbook, config)
    assert f"playbook.yaml:{line}:" in str(raised.value)
    assert message in str(raised.value)


CHAIN = """
playbook:
  id: chain
  name: Chain
  steps:
    - {id: accounts, type: query, materialize: view, config: {template: "FROM accounts"}}
    - id: by_segment
      type: aggregate
      config:
        input: "${steps.accounts}"
        group_by: [segment]
        metrics: [{name: total, expression: "SUM(arr)"}]
    - id: big
      type: filter
      config: {input: "${steps.by_segment}", condition: "total > 200"}
"""


def test_a_later_run_reads_a_pushed_result_as_the_rows_it_stored(
    tmp_path: Path, demo_files: DemoFiles
) -> None:
    config_path = _duckdb_project(tmp_path, demo_files)
    playbooks = config_path.parent / "playbooks"
    playbooks.mkdir(exist_ok=True)
    (playbooks / "chain.yaml").write_text(CHAIN.lstrip(), encoding="utf-8")
    config = load_config_file(config_path)
    defs = build_definitions(load_catalog(config, []), config)
    job = defs.resolve_implicit_global_asset_job_def()
    instance = dg.DagsterInstance.ephemeral()
    assert job.execute_in_process(instance=instance).success
    with duckdb.connect() as con:
        con.register("accounts", ACCOUNTS)
        stored = con.sql(
            "SELECT segment, SUM(arr) AS total FROM accounts GROUP BY segment HAVING SUM(arr) > 200"
        ).fetchall()
    assert stored == [("smb", Decimal("5370.75"))]
    # The warehouse changes; a run of `big` alone reads by_segment's stored rows, not its
    # SQL run again on today's data.
    with duckdb.connect(str(tmp_path / "wh.duckdb")) as con:
        con.execute("INSERT INTO accounts VALUES (9, 'smb', 1000000.00, 1.0)")
    big = dg.AssetKey(["chain", "big"])
    alone = job.execute_in_process(instance=instance, asset_selection=[big])
    assert alone.success
    value = defs.load_asset_value(big, instance=instance)
    assert isinstance(value, pa.Table)
    table = cast(pa.Table, value)
    assert [tuple(row.values()) for row in table.to_pylist()] == stored
    materialization = alone.asset_materializations_for_node(alone.all_node_events[0].node_name)
    metadata = next(m.metadata for m in materialization if m.asset_key == big)
    assert metadata["ran_in"].value == "local"
