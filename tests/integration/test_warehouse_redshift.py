"""Redshift: rendering in its dialect, and its connection path (PostgreSQL wire protocol)
against the throwaway PostgreSQL server.

The server stands in for Redshift in a database whose sessions read string literals as
Redshift does: a backslash escapes the next character (``standard_conforming_strings`` off),
which is how sqlglot's redshift dialect writes quotes inside strings.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pyarrow as pa
import pytest

from playbook_assets.connections.registry import CONNECTION_TYPES, resource_class
from playbook_assets.connections.warehouses.postgres_wire import PostgresWireWarehouse
from playbook_assets.connections.warehouses.redshift import RedshiftWarehouse
from playbook_assets.core.errors import SourceUnreachableError, StepTimeoutError, TerminalStepError
from playbook_assets.core.sql import SqlIdentifier, SqlValue, TemplateValue, render_sql
from standins.postgres_server import PostgresServer
from tests.conftest import DemoFiles, Project
from tests.postgres_demo import load_demo_database, write_warehouse_config
from tests.template_results import DuckDBReports, assert_same_results, run_template

pytest_plugins = ["tests.conftest_postgres"]

REDSHIFT_DATABASE = "redshift_like"
# Redshift's string literal rules, on the PostgreSQL server.
REDSHIFT_STRINGS = {"standard_conforming_strings": "off", "escape_string_warning": "off"}


def redshift(server: PostgresServer, **settings: object) -> RedshiftWarehouse:
    """A Redshift resource pointed at the test server (no TLS there)."""
    defaults: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "user": "postgres",
        "database": REDSHIFT_DATABASE,
        "sslmode": "disable",
    }
    return RedshiftWarehouse(**{**defaults, **settings})  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def redshift_server(postgres_server: PostgresServer, demo_files: DemoFiles) -> PostgresServer:
    """The server with a Redshift-like database holding the demo warehouse, loaded through
    RedshiftWarehouse.load_table (multi-row INSERTs)."""
    load_demo_database(
        postgres_server,
        demo_files,
        redshift(postgres_server),
        REDSHIFT_DATABASE,
        REDSHIFT_STRINGS,
    )
    return postgres_server


def test_registered_with_redshift_defaults() -> None:
    assert resource_class(CONNECTION_TYPES["redshift"]) is RedshiftWarehouse
    assert CONNECTION_TYPES["redshift"].category == "data_warehouse"
    assert (RedshiftWarehouse.dialect, RedshiftWarehouse.kind) == ("redshift", "redshift")
    assert issubclass(RedshiftWarehouse, PostgresWireWarehouse)


def test_default_port_is_5439() -> None:
    with pytest.raises(
        SourceUnreachableError, match=r"cannot connect to Redshift at 127.0.0.1:5439"
    ):
        RedshiftWarehouse(host="127.0.0.1", user="analyst").run_query("SELECT 1")


def test_tls_is_required_by_default(redshift_server: PostgresServer) -> None:
    resource = RedshiftWarehouse(
        host=redshift_server.host, port=redshift_server.port, user="postgres"
    )
    with pytest.raises(TerminalStepError, match=r"SSL was required.*sslmode") as caught:
        resource.run_query("SELECT 1")
    assert not isinstance(caught.value, SourceUnreachableError)


# ---------------------------------------------------------------------------------------------
# Rendering in the redshift dialect, run on the connection


def render(template: str, **values: TemplateValue) -> str:
    return render_sql(template, values, RedshiftWarehouse.dialect)


@pytest.mark.parametrize(
    "text",
    ["O'Brien", "back\\slash", "x' OR '1'='1", "\\' OR 1=1 --", "tab\tand\nnewline", ""],
)
def test_string_literals_round_trip(redshift_server: PostgresServer, text: str) -> None:
    sql = render("SELECT {{value}} AS value", value=SqlValue(text))
    table = redshift(redshift_server).run_query(sql)
    assert table.column("value").to_pylist() == [text]


def test_literals_of_each_kind(redshift_server: PostgresServer) -> None:
    sql = render(
        "SELECT {{name}} AS name, {{day}} AS day, {{at}} AS at, {{amount}} AS amount, "
        "{{count}} AS count, {{flag}} AS flag",
        name=SqlValue("O'Brien"),
        day=SqlValue(dt.date(2026, 11, 1)),
        at=SqlValue(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
        amount=SqlValue(Decimal("12.50")),
        count=SqlValue(42),
        flag=SqlValue(True),
    )
    assert "'O\\'Brien'" in sql  # Redshift's escape, not PostgreSQL's doubled quote
    assert "CAST('2026-11-01' AS DATE)" in sql
    row = redshift(redshift_server).run_query(sql).to_pylist()
    assert row == [
        {
            "name": "O'Brien",
            "day": dt.date(2026, 11, 1),
            "at": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
            "amount": 12.5,
            "count": 42,
            "flag": True,
        }
    ]


def test_lists_and_the_empty_list(redshift_server: PostgresServer) -> None:
    template = (
        "SELECT account_id FROM analytics.accounts WHERE account_id IN ({{ids}}) "
        "ORDER BY account_id"
    )
    resource = redshift(redshift_server)
    ids = [1_000_003, 1_000_001, 1_000_002, 42]  # demo account ids, and one that is not
    some = resource.run_query(render(template, ids=SqlValue(ids)))
    assert some.column("account_id").to_pylist() == [1_000_001, 1_000_002, 1_000_003]
    empty_sql = render(template, ids=SqlValue([], element_type="BIGINT"))
    assert "LIMIT 0" in empty_sql
    empty = resource.run_query(empty_sql)
    assert empty.num_rows == 0
    assert empty.schema.field("account_id").type == pa.int64()


def test_identifiers(redshift_server: PostgresServer) -> None:
    resource = redshift(redshift_server)
    resource.load_table('analytics."select"', pa.table({"x": [1]}))
    sql = render("SELECT x FROM {{table}}", table=SqlIdentifier("analytics.select"))
    assert sql == 'SELECT x FROM analytics."select"'
    assert resource.run_query(sql).column("x").to_pylist() == [1]


# ---------------------------------------------------------------------------------------------
# The connection path


def test_types_through_the_redshift_connection(redshift_server: PostgresServer) -> None:
    table = redshift(redshift_server).run_query(
        "SELECT 1::int8 AS big, 2.5::float8 AS ratio, 3.25::numeric(12, 2) AS arr, "
        "'x'::varchar(10) AS name, DATE '2026-01-01' AS day, true AS flag"
    )
    assert table.schema == pa.schema(
        [
            ("big", pa.int64()),
            ("ratio", pa.float64()),
            ("arr", pa.decimal128(12, 2)),
            ("name", pa.string()),
            ("day", pa.date32()),
            ("flag", pa.bool_()),
        ]
    )
    assert table.to_pylist() == [
        {
            "big": 1,
            "ratio": 2.5,
            "arr": Decimal("3.25"),
            "name": "x",
            "day": dt.date(2026, 1, 1),
            "flag": True,
        }
    ]


def test_load_table_inserts_in_batches(redshift_server: PostgresServer) -> None:
    rows = 2_500  # three INSERT statements
    source = pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "name": pa.array([f"n'{i}" if i % 7 else None for i in range(rows)]),
            "amount": pa.array([Decimal(i) / 4 for i in range(rows)], pa.decimal128(10, 2)),
            "day": pa.array([dt.date(2026, 1, 1) + dt.timedelta(days=i % 30) for i in range(rows)]),
        }
    )
    resource = redshift(redshift_server)
    resource.load_table("loaded.batches", source)
    assert resource.run_query("SELECT * FROM loaded.batches ORDER BY id").equals(source)
    with redshift_server.connect(REDSHIFT_DATABASE) as connection:
        column_type = connection.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'loaded.batches'::regclass AND attname = 'name'"
        ).fetchone()
    assert column_type == ("character varying(65535)",)


def test_read_only_and_allow_writes(redshift_server: PostgresServer) -> None:
    with pytest.raises(TerminalStepError, match=r"read-only transaction.*allow_writes: true"):
        redshift(redshift_server).run_query("CREATE TABLE rs_refused (a int)")
    writer = redshift(redshift_server, allow_writes=True)
    writer.run_query("CREATE TABLE rs_allowed (a int)")
    assert writer.run_query("SELECT count(*) AS n FROM rs_allowed").to_pylist() == [{"n": 0}]


def test_slow_query_is_cancelled(redshift_server: PostgresServer) -> None:
    resource = redshift(redshift_server, application_name="redshift-timeout")
    started = time.monotonic()
    with pytest.raises(StepTimeoutError, match="cancelled on the Redshift server"):
        resource.run_query("SELECT pg_sleep(30)", timeout_seconds=1)
    assert time.monotonic() - started < 2.5
    with redshift_server.connect() as connection:
        left = connection.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'redshift-timeout' AND state = 'active'"
        ).fetchone()
    assert left == (0,)


def test_error_names_the_line(redshift_server: PostgresServer) -> None:
    with pytest.raises(TerminalStepError) as caught:
        redshift(redshift_server).run_query("SELECT 1\nFROM analytics.missing")
    assert str(caught.value).startswith(
        'Redshift rejected the query at line 2 of the query: relation "analytics.missing" '
        "does not exist"
    )


# ---------------------------------------------------------------------------------------------
# Built-in templates through a redshift connection


@pytest.mark.parametrize("playbook_id", ["at_risk_renewals", "presales_analysis"])
def test_template_matches_duckdb(
    playbook_id: str,
    project: Project,
    redshift_server: PostgresServer,
    demo_files: DemoFiles,
    capsys: pytest.CaptureFixture[str],
    duckdb_reports: DuckDBReports,
) -> None:
    config = write_warehouse_config(
        project.root,
        demo_files,
        "rs",
        f"""
        type: redshift
        host: {redshift_server.host}
        port: {redshift_server.port}
        user: postgres
        database: {REDSHIFT_DATABASE}
        sslmode: disable
        """,
    )
    on_redshift = run_template(config, playbook_id, capsys)
    on_duckdb = duckdb_reports[playbook_id]
    assert_same_results(on_redshift, on_duckdb)
