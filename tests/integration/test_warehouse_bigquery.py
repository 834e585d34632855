"""BigQuery: the real google-cloud-bigquery client against the local REST stand-in
(standins/bigquery_standin.py), which executes on DuckDB."""

from __future__ import annotations

import base64
import socket
import textwrap
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from dagster_gcp import BigQueryResource

from playbook_assets.connections.warehouses.bigquery import BigQueryWarehouse
from playbook_assets.core.errors import (
    SourceUnreachableError,
    StepTimeoutError,
    TerminalStepError,
    TransientStepError,
)
from playbook_assets.core.sql import SqlValue, render_sql
from standins.bigquery_standin import BigQueryStandIn
from tests.conftest import DemoFiles, Project, connection_config_text
from tests.template_results import DuckDBReports, assert_same_results, run_template

TEMPLATES = [
    "at_risk_renewals",
    "churn_risk",
    "expansion_candidates",
    "health_dashboard",
    "presales_analysis",
    "segment_analysis",
]
DEMO_TABLES = ["analytics.accounts", "analytics.product_usage", "analytics.support_tickets"]
PAGE_ROWS = 500
SLOW_QUERY = (
    "SELECT COUNT(*) AS n FROM UNNEST(GENERATE_ARRAY(1, 100000)) AS a "
    "CROSS JOIN UNNEST(GENERATE_ARRAY(1, 100000)) AS b "
    "CROSS JOIN UNNEST(GENERATE_ARRAY(1, 100000)) AS c WHERE MOD(a * 7 + b * 13 + c, 1000003) = 17"
)


@pytest.fixture(scope="module")
def standin(demo_files: DemoFiles) -> Iterator[BigQueryStandIn]:
    """A stand-in per module (and xdist worker) with the demo data loaded by ``load_table``."""
    with BigQueryStandIn(page_rows=PAGE_ROWS) as server:
        warehouse = _warehouse(server)
        with duckdb.connect(str(demo_files.warehouse), read_only=True) as con:
            for name in DEMO_TABLES:
                warehouse.load_table(name, con.sql(f"FROM {name}").to_arrow_table())
        yield server


def _warehouse(server: BigQueryStandIn, **overrides: Any) -> BigQueryWarehouse:
    settings: dict[str, Any] = {
        "project": server.project,
        "dataset": "analytics",
        "api_endpoint": server.base_url,
        "request_retry_seconds": 5,
    }
    return BigQueryWarehouse(**{**settings, **overrides})


def test_load_and_page_through_results(standin: BigQueryStandIn, demo_files: DemoFiles) -> None:
    with duckdb.connect(str(demo_files.warehouse), read_only=True) as con:
        expected = con.sql("FROM analytics.accounts ORDER BY account_id").to_arrow_table()
    before = len(standin.requests)
    actual = _warehouse(standin).run_query("SELECT * FROM accounts ORDER BY account_id")
    pages = [
        path
        for method, path in standin.requests[before:]
        if method == "GET" and "/queries/" in path
    ]
    assert actual.num_rows == expected.num_rows == 2000
    assert len(pages) >= 2000 // PAGE_ROWS  # one getQueryResults call per page at least
    assert actual.column_names == expected.column_names
    assert actual.schema.field("account_id").type == pa.int64()
    assert actual.schema.field("arr").type == pa.decimal128(38, 9)  # NUMERIC
    assert actual.schema.field("renewal_date").type == pa.date32()
    for name in ["account_id", "account_name", "arr", "renewal_date", "health_score", "segment"]:
        assert actual.column(name).to_pylist() == expected.column(name).to_pylist(), name


def test_value_encodings(standin: BigQueryStandIn) -> None:
    result = _warehouse(standin).run_query(
        "SELECT TIMESTAMP '2026-01-02 03:04:05.123456+00' AS ts, "
        "DATETIME '2026-01-02 03:04:05' AS dt, TRUE AS flag, 1.5 AS ratio, "
        "CAST('12.34' AS NUMERIC) AS amount, CAST(NULL AS INT64) AS nothing, "
        "9007199254740993 AS big, 'it\\'s' AS text"
    )
    row = result.to_pylist()[0]
    assert result.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert row["ts"].isoformat() == "2026-01-02T03:04:05.123456+00:00"
    assert row["dt"].isoformat() == "2026-01-02T03:04:05"
    assert row["flag"] is True and row["ratio"] == 1.5
    assert row["amount"] == Decimal("12.34")
    assert row["nothing"] is None
    assert row["big"] == 9007199254740993  # INT64 as a string keeps every digit
    assert row["text"] == "it's"


def test_rendered_literals_round_trip(standin: BigQueryStandIn) -> None:
    sql = render_sql(
        "SELECT COUNT(*) AS n FROM analytics.accounts\n"
        "WHERE segment IN ({{segments}}) AND account_name <> {{tricky}}",
        {
            "segments": SqlValue(["mid-market", "enterprise"]),
            "tricky": SqlValue("it's a \\ test"),
        },
        "bigquery",
    )
    warehouse = _warehouse(standin)
    expected = warehouse.run_query(
        "SELECT COUNT(*) AS n FROM analytics.accounts WHERE segment IN ('mid-market', 'enterprise')"
    )
    assert warehouse.run_query(sql).to_pylist() == expected.to_pylist()
    assert expected.column("n").to_pylist()[0] > 0


def test_unknown_column_is_terminal_with_line_and_column(standin: BigQueryStandIn) -> None:
    before = sum(1 for m, p in standin.requests if m == "POST" and p.endswith("/jobs"))
    with pytest.raises(TerminalStepError) as caught:
        _warehouse(standin).run_query("SELECT account_id,\n  no_such_column\nFROM accounts")
    message = str(caught.value)
    assert "Unrecognized name: no_such_column" in message
    assert "line 2, column 3 of the query: no_such_column" in message
    after = sum(1 for m, p in standin.requests if m == "POST" and p.endswith("/jobs"))
    assert after == before + 1  # not retried


def test_missing_table_is_terminal(standin: BigQueryStandIn) -> None:
    with pytest.raises(TerminalStepError) as caught:
        _warehouse(standin).run_query("SELECT *\nFROM analytics.nowhere")
    assert "Not found: Table" in str(caught.value) and "line 2 of the query" in str(caught.value)
    assert not isinstance(caught.value, StepTimeoutError)


def test_syntax_error_is_terminal(standin: BigQueryStandIn) -> None:
    with pytest.raises(TerminalStepError) as caught:
        _warehouse(standin).run_query("SELECT 1 FROM accounts WHERE (((")
    assert "Syntax error" in str(caught.value)


def test_timeout_cancels_the_job(standin: BigQueryStandIn) -> None:
    with pytest.raises(StepTimeoutError) as caught:
        _warehouse(standin).run_query(SLOW_QUERY, timeout_seconds=0.5)
    assert "longer than 0.5 s" in str(caught.value)
    job = next(j for j in standin.jobs.values() if "GENERATE_ARRAY" in str(j.configuration))
    assert job.job_id in standin.cancelled
    assert job.state == "DONE" and job.interrupted  # DuckDB's query was interrupted
    assert job.error is not None and job.error["reason"] == "stopped"
    assert standin.running_queries() == []


def test_503_is_retried_by_the_client(standin: BigQueryStandIn) -> None:
    standin.fail_next("/jobs", status=503)
    before = len(standin.requests)
    result = _warehouse(standin).run_query("SELECT COUNT(*) AS n FROM accounts")
    assert result.to_pylist() == [{"n": 2000}]
    inserts = [r for r in standin.requests[before:] if r[0] == "POST" and r[1].endswith("/jobs")]
    assert len(inserts) == 2  # the injected 503, then the client's own retry


def test_persistent_503_is_transient(standin: BigQueryStandIn) -> None:
    standin.fail_next("/jobs", status=503, times=50)
    try:
        with pytest.raises(TransientStepError) as caught:
            _warehouse(standin, request_retry_seconds=0.6).run_query("SELECT 1 AS x")
        assert not isinstance(caught.value, SourceUnreachableError)
        assert "Injected 503" in str(caught.value)
    finally:
        standin.fail_next("/jobs", times=0)
        standin._failures.clear()


def test_unreachable_endpoint() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    warehouse = BigQueryWarehouse(
        project="p", api_endpoint=f"http://127.0.0.1:{port}", request_retry_seconds=0.5
    )
    with pytest.raises(SourceUnreachableError) as caught:
        warehouse.run_query("SELECT 1")
    assert f"cannot reach BigQuery at http://127.0.0.1:{port}" in str(caught.value)


def test_bad_credentials_json_does_not_leak(standin: BigQueryStandIn) -> None:
    warehouse = _warehouse(standin, credentials_json='{"private_key": "SECRET-KEY-TEXT"')
    with pytest.raises(TerminalStepError) as caught:
        warehouse.run_query("SELECT 1")
    assert "not a valid service-account JSON key" in str(caught.value)
    assert "SECRET" not in str(caught.value)


def test_it_is_dagster_gcps_resource_and_its_client_reads_the_same_rows(
    standin: BigQueryStandIn, demo_files: DemoFiles
) -> None:
    warehouse = _warehouse(standin)
    assert isinstance(warehouse, BigQueryResource)
    with duckdb.connect(str(demo_files.warehouse), read_only=True) as con:
        expected = con.sql(
            "SELECT account_id, arr FROM analytics.accounts WHERE arr > 100000 ORDER BY account_id"
        ).fetchall()
    # An asset of the user's own calls get_client(), as with dagster-gcp's resource.
    with warehouse.get_client() as client:
        rows = client.query(
            "SELECT account_id, arr FROM analytics.accounts WHERE arr > 100000 ORDER BY account_id"
        ).result()
        actual = [(row["account_id"], row["arr"]) for row in rows]
    assert len(expected) > 10
    assert actual == expected


def test_gcp_credentials_is_read_and_never_quoted(standin: BigQueryStandIn) -> None:
    not_base64 = _warehouse(standin, gcp_credentials="SECRET-KEY-TEXT!!")
    with pytest.raises(TerminalStepError) as caught:
        not_base64.run_query("SELECT 1")
    assert "gcp_credentials of the BigQuery connection is not base64 text" in str(caught.value)
    assert "SECRET" not in str(caught.value)
    # Base64 of a broken key: decoded, then refused as a key, without quoting it.
    encoded = base64.b64encode(b'{"private_key": "SECRET-KEY-TEXT"').decode()
    with pytest.raises(TerminalStepError) as caught:
        _warehouse(standin, gcp_credentials=encoded).run_query("SELECT 1")
    assert "not a valid service-account JSON key" in str(caught.value)
    assert "SECRET" not in str(caught.value)
    both = _warehouse(standin, gcp_credentials=encoded, credentials_json="{}")
    with pytest.raises(TerminalStepError, match="set only one of credentials_json and "):
        both.run_query("SELECT 1")


def test_resource_from_config(tmp_path: Path) -> None:
    from playbook_assets.connections.registry import build_resource
    from playbook_assets.core.config import load_config_file

    path = tmp_path / "playbook-executor.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            playbook_executor:
              defaults: {data_warehouse: bq, crm: demo}
              connections:
                demo: {type: demo, database: crm.duckdb}
                bq:
                  type: bigquery
                  project: my-project
                  dataset: analytics
                  location: EU
                  credentials_path: keys/sa.json
            """
        ),
        encoding="utf-8",
    )
    resource = build_resource(load_config_file(path), "bq")
    assert isinstance(resource, BigQueryWarehouse)
    assert resource.credentials_path == str(tmp_path / "keys" / "sa.json")
    assert (resource.project, resource.dataset, resource.location) == (
        "my-project",
        "analytics",
        "EU",
    )
    assert BigQueryWarehouse.dialect == "bigquery" and BigQueryWarehouse.kind == "bigquery"


def _config_text(server: BigQueryStandIn, demo: DemoFiles) -> str:
    settings = {
        "type": "bigquery",
        "project": server.project,
        "dataset": "analytics",
        "api_endpoint": server.base_url,
        "request_retry_seconds": 5,
    }
    return connection_config_text(demo, "bq", settings, role="data_warehouse")


@pytest.mark.parametrize("playbook_id", TEMPLATES)
def test_template_matches_duckdb(
    playbook_id: str,
    project: Project,
    demo_files: DemoFiles,
    standin: BigQueryStandIn,
    capsys: pytest.CaptureFixture[str],
    duckdb_reports: DuckDBReports,
) -> None:
    config = project.config_path.parent / "bigquery.yaml"
    config.write_text(_config_text(standin, demo_files), encoding="utf-8")
    assert_same_results(run_template(config, playbook_id, capsys), duckdb_reports[playbook_id])
