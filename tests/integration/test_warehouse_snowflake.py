"""Snowflake: the real snowflake connector (through dagster-snowflake) against fakesnow's
server, which speaks the connector's HTTP protocol and executes on DuckDB."""

from __future__ import annotations

import importlib
import textwrap
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import fakesnow
import pyarrow as pa
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from playbook_assets.connections.warehouses.snowflake import SnowflakeWarehouse
from playbook_assets.core.errors import (
    SourceUnreachableError,
    StepTimeoutError,
    TerminalStepError,
)
from playbook_assets.core.sql import SqlValue, render_sql
from tests.conftest import DemoFiles, Project, connection_config_text
from tests.template_results import DuckDBReports, assert_same_results, run_template

# ``fakesnow.server`` is a function until the submodule of the same name is imported.
start_fakesnow = fakesnow.server
fakesnow_server = importlib.import_module("fakesnow.server")

TEMPLATES = [
    "at_risk_renewals",
    "churn_risk",
    "expansion_candidates",
    "health_dashboard",
    "presales_analysis",
    "segment_analysis",
]
DEMO_TABLES = ["analytics.accounts", "analytics.product_usage", "analytics.support_tickets"]
# Cross join of the usage table with itself three times: far too slow to finish.
SLOW_QUERY = (
    "SELECT COUNT(*) FROM analytics.product_usage a, analytics.product_usage b, "
    "analytics.product_usage c WHERE (a.logins * 7 + b.logins * 13 + c.logins) % 1000003 = 17"
)


@dataclass
class AbortLog:
    """What the stand-in saw of query aborts: fakesnow acknowledges an abort request but does
    not stop the query, so the tests' server interrupts DuckDB the way Snowflake cancels."""

    aborts: int = 0
    interrupted: int = 0
    running: dict[str, int] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _abort_aware_app(log: AbortLog) -> Starlette:
    original_query = fakesnow_server.query_request

    async def query_request(request: Request) -> Response:
        token = fakesnow_server.to_token(request)
        with log.lock:
            log.running[token] = log.running.get(token, 0) + 1
        try:
            response = await original_query(request)
        finally:
            with log.lock:
                log.running[token] -= 1
        with log.lock:
            cancelled = token in log.cancelled
            log.cancelled.discard(token)
        if cancelled:
            log.interrupted += 1
            return JSONResponse(
                {
                    "data": {"errorCode": "000604", "sqlState": "57014"},
                    "code": "000604",
                    "message": "SQL execution canceled",
                    "success": False,
                }
            )
        return response

    async def abort_request(request: Request) -> Response:
        token = fakesnow_server.to_token(request)
        with log.lock:
            log.aborts += 1
            if log.running.get(token):
                log.cancelled.add(token)
                fakesnow_server.sessions[token]._duck_conn.interrupt()
        return JSONResponse({"success": True})

    routes: list[Any] = []
    for route in fakesnow_server.routes:
        if route.path == "/queries/v1/query-request":
            routes.append(Route(route.path, query_request, methods=["POST"]))
        elif route.path == "/queries/v1/abort-request":
            routes.append(Route(route.path, abort_request, methods=["POST"]))
        else:
            routes.append(route)
    return Starlette(routes=routes)


@dataclass(frozen=True)
class FakeSnow:
    """A running fakesnow server and the connection settings that reach it."""

    port: int
    log: AbortLog

    def settings(self, database: str) -> dict[str, Any]:
        return {
            "account": "fakesnow",
            "user": "fake",
            "password": "snow",
            "database": database,
            "schema": "PUBLIC",
            "host": "127.0.0.1",
            "port": self.port,
            "protocol": "http",
            "network_timeout": 5,
            "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        }

    def warehouse(self, database: str) -> SnowflakeWarehouse:
        return SnowflakeWarehouse(**self.settings(database))


@pytest.fixture(scope="module")
def fake_snowflake() -> Iterator[FakeSnow]:
    """One fakesnow server per test module (and xdist worker), on a free loopback port."""
    log = AbortLog()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fakesnow_server, "app", _abort_aware_app(log))
        with start_fakesnow() as kwargs:
            yield FakeSnow(port=int(kwargs["port"]), log=log)


@pytest.fixture(scope="module")
def loaded(fake_snowflake: FakeSnow, demo_files: DemoFiles) -> str:
    """A database with the demo warehouse loaded through ``load_table``; returns its name."""
    database = f"DEMO_{uuid.uuid4().hex[:8].upper()}"
    warehouse = fake_snowflake.warehouse(database)
    with duckdb.connect(str(demo_files.warehouse), read_only=True) as con:
        for name in DEMO_TABLES:
            warehouse.load_table(name, con.sql(f"FROM {name}").to_arrow_table())
    return database


def test_load_table_round_trip(
    fake_snowflake: FakeSnow, demo_files: DemoFiles, loaded: str
) -> None:
    warehouse = fake_snowflake.warehouse(loaded)
    with duckdb.connect(str(demo_files.warehouse), read_only=True) as con:
        expected = con.sql("FROM analytics.accounts ORDER BY account_id").to_arrow_table()
    actual = warehouse.run_query("SELECT * FROM analytics.accounts ORDER BY account_id")
    assert actual.column_names == expected.column_names  # upper-cased by Snowflake, lowered back
    assert actual.num_rows == expected.num_rows == 2000
    assert actual.schema.field("arr").type == pa.decimal128(12, 2)
    assert actual.schema.field("renewal_date").type == pa.date32()
    for name in ["account_id", "account_name", "arr", "renewal_date", "health_score"]:
        assert actual.column(name).to_pylist() == expected.column(name).to_pylist(), name


def test_load_table_replaces_existing_table(fake_snowflake: FakeSnow) -> None:
    warehouse = fake_snowflake.warehouse(f"REPLACE_{uuid.uuid4().hex[:8].upper()}")
    warehouse.load_table("scratch.items", pa.table({"id": [1, 2, 3], "label": ["a", "b", None]}))
    warehouse.load_table("scratch.items", pa.table({"id": [7], "label": ["z"]}))
    result = warehouse.run_query("SELECT id, label FROM scratch.items")
    assert result.to_pylist() == [{"id": 7, "label": "z"}]


def test_query_types_and_quoted_names(fake_snowflake: FakeSnow, loaded: str) -> None:
    warehouse = fake_snowflake.warehouse(loaded)
    result = warehouse.run_query(
        'SELECT 1 AS plain, 2 AS "MixedCase", 1.5::FLOAT AS ratio, '
        "'x' AS label, DATE '2026-01-31' AS day, 12.34::NUMBER(10,2) AS amount"
    )
    assert result.column_names == ["plain", "MixedCase", "ratio", "label", "day", "amount"]
    row = result.to_pylist()[0]
    assert row["plain"] == 1 and row["ratio"] == 1.5 and row["label"] == "x"
    assert str(row["day"]) == "2026-01-31"
    assert row["amount"] == Decimal("12.34")


def test_rendered_literals_round_trip(fake_snowflake: FakeSnow, loaded: str) -> None:
    """Run-time values rendered for the snowflake dialect mean the same thing to the server."""
    sql = render_sql(
        "SELECT COUNT(*) AS n FROM analytics.accounts WHERE segment IN ({{segments}}) "
        "AND account_name <> {{tricky}}",
        {
            "segments": SqlValue(["mid-market", "enterprise"]),
            "tricky": SqlValue("it's a \\ test"),
        },
        "snowflake",
    )
    warehouse = fake_snowflake.warehouse(loaded)
    count = warehouse.run_query(sql).column("n").to_pylist()[0]
    expected = warehouse.run_query(
        "SELECT COUNT(*) AS n FROM analytics.accounts WHERE segment IN ('mid-market', 'enterprise')"
    )
    assert count == expected.column("n").to_pylist()[0] > 0


def test_missing_table_is_terminal_with_line(fake_snowflake: FakeSnow, loaded: str) -> None:
    warehouse = fake_snowflake.warehouse(loaded)
    with pytest.raises(TerminalStepError) as caught:
        warehouse.run_query("SELECT *\nFROM analytics.missing_table\nWHERE 1 = 1")
    message = str(caught.value)
    assert "MISSING_TABLE" in message.upper() and "does not exist" in message
    assert "line 2 of the query" in message
    assert not isinstance(caught.value, StepTimeoutError)


def test_syntax_error_is_terminal_with_line(fake_snowflake: FakeSnow, loaded: str) -> None:
    warehouse = fake_snowflake.warehouse(loaded)
    with pytest.raises(TerminalStepError) as caught:
        warehouse.run_query("SELECT 1\nFROM analytics.accounts\nWHERE (((")
    assert "Snowflake rejected the query" in str(caught.value)


def test_unreachable_server(fake_snowflake: FakeSnow) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free_port = sock.getsockname()[1]
    settings = {**fake_snowflake.settings("X"), "port": free_port, "login_timeout": 1}
    settings["network_timeout"] = 1
    with pytest.raises(SourceUnreachableError) as caught:
        SnowflakeWarehouse(**settings).run_query("SELECT 1")
    assert "cannot reach Snowflake at 127.0.0.1" in str(caught.value)
    assert "snow" not in str(caught.value).replace("Snowflake", "")  # no password


def test_timeout_aborts_the_query_on_the_server(fake_snowflake: FakeSnow, loaded: str) -> None:
    warehouse = fake_snowflake.warehouse(loaded)
    before = fake_snowflake.log.interrupted
    with pytest.raises(StepTimeoutError) as caught:
        warehouse.run_query(SLOW_QUERY, timeout_seconds=1)
    assert "longer than 1 s" in str(caught.value)
    log = fake_snowflake.log
    assert log.aborts >= 1 and log.interrupted == before + 1
    assert sum(log.running.values()) == 0  # nothing left running in the server
    # The session still works after the cancel.
    assert warehouse.run_query("SELECT 42 AS answer").to_pylist() == [{"answer": 42}]


def test_resource_from_config(tmp_path: Path) -> None:
    """A connection block builds the resource, secrets as ${VAR} templates (resolved when a run
    opens it), ``schema`` as written."""
    from playbook_assets.connections.registry import build_resource
    from playbook_assets.core.config import load_config_file

    path = tmp_path / "playbook-executor.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            playbook_executor:
              defaults: {data_warehouse: snow, crm: demo}
              connections:
                demo: {type: demo, database: crm.duckdb}
                snow:
                  type: snowflake
                  account: myorg-acct
                  user: analyst
                  private_key: ${SF_KEY}
                  passphrase: ${SF_PASS}
                  warehouse: WH
                  role: READER
                  database: DB
                  schema: ANALYTICS
            """
        ),
        encoding="utf-8",
    )
    resource = build_resource(
        load_config_file(path), "snow", environ={"SF_KEY": "k", "SF_PASS": "pw"}
    )
    assert isinstance(resource, SnowflakeWarehouse)
    assert resource.schema == "ANALYTICS" and resource.role == "READER"
    assert (resource.private_key, resource.passphrase) == ("${SF_KEY}", "${SF_PASS}")
    assert SnowflakeWarehouse.dialect == "snowflake" and SnowflakeWarehouse.kind == "snowflake"


def _config_text(fake: FakeSnow, database: str, demo: DemoFiles) -> str:
    settings = {"type": "snowflake", **fake.settings(database)}
    return connection_config_text(demo, "snow", settings, role="data_warehouse")


@pytest.mark.parametrize("playbook_id", TEMPLATES)
def test_template_matches_duckdb(
    playbook_id: str,
    project: Project,
    demo_files: DemoFiles,
    fake_snowflake: FakeSnow,
    loaded: str,
    capsys: pytest.CaptureFixture[str],
    duckdb_reports: DuckDBReports,
) -> None:
    config = project.config_path.parent / "snowflake.yaml"
    config.write_text(_config_text(fake_snowflake, loaded, demo_files), encoding="utf-8")
    assert_same_results(run_template(config, playbook_id, capsys), duckdb_reports[playbook_id])
