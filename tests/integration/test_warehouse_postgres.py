"""PostgreSQL as the data warehouse, against a real throwaway server
(standins/postgres_server.py)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from psycopg import sql

from playbook_assets.connections.registry import build_resource
from playbook_assets.connections.warehouses.postgres import PostgresWarehouse
from playbook_assets.core.config import load_config_file
from playbook_assets.core.errors import (
    SourceUnreachableError,
    StepTimeoutError,
    TerminalStepError,
    TransientStepError,
)
from standins.postgres_server import PASSWORD, PASSWORD_USER, PostgresServer, free_port
from tests.conftest import DemoFiles, Project
from tests.postgres_demo import DEMO_DATABASE, TEMPLATE_IDS, write_warehouse_config
from tests.template_results import DuckDBReports, assert_same_results, run_template

pytest_plugins = ["tests.conftest_postgres"]


def warehouse(server: PostgresServer, **settings: object) -> PostgresWarehouse:
    """A resource connected to the test server as the superuser (trust auth)."""
    defaults: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "user": "postgres",
        "database": "postgres",
    }
    return PostgresWarehouse(**{**defaults, **settings})  # type: ignore[arg-type]


def active_queries(
    server: PostgresServer, application_name: str, running_for: float = 0.0
) -> list[int]:
    """The pids of the sessions of ``application_name`` that have been running a statement
    for at least ``running_for`` seconds."""
    with server.connect() as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND state = 'active' "
            "AND now() - query_start >= make_interval(secs => %s)",
            [application_name, running_for],
        ).fetchall()
    return [int(pid) for (pid,) in rows]


# ---------------------------------------------------------------------------------------------
# Results as Arrow


def test_each_type_round_trips_to_arrow(postgres_server: PostgresServer) -> None:
    table = warehouse(postgres_server).run_query(
        """
        SELECT 7::int2 AS small, 70000::int4 AS regular, 9000000000::int8 AS big,
               1.5::float4 AS real_value, 0.1::float8 AS double_value,
               12.34::numeric(10, 2) AS money, 1.5::numeric(40, 5) AS wide,
               1.0 / 4 AS ratio, 'NaN'::numeric AS not_a_number,
               'héllo'::text AS text_value, 'ab'::varchar(5) AS varchar_value,
               'x'::char(3) AS char_value, true AS flag,
               DATE '2026-11-01' AS day, TIME '13:14:15.5' AS clock,
               TIMESTAMP '2026-01-02 03:04:05.123456' AS naive,
               TIMESTAMPTZ '2026-01-02 03:04:05+02' AS aware,
               '{"a": [1, 2]}'::json AS doc, '{"b": 1}'::jsonb AS docb,
               '\\x00ff'::bytea AS raw, '8c0e1a3e-25f0-4d4b-9f6b-6b2b8b0b6a11'::uuid AS id,
               interval '1 day 2 hours' AS span, ARRAY[1, 2] AS list,
               NULL::int4 AS missing
        """
    )
    expected_types = {
        "small": pa.int16(),
        "regular": pa.int32(),
        "big": pa.int64(),
        "real_value": pa.float32(),
        "double_value": pa.float64(),
        "money": pa.decimal128(10, 2),
        "wide": pa.decimal256(40, 5),
        "ratio": pa.float64(),
        "not_a_number": pa.float64(),
        "text_value": pa.string(),
        "varchar_value": pa.string(),
        "char_value": pa.string(),
        "flag": pa.bool_(),
        "day": pa.date32(),
        "clock": pa.time64("us"),
        "naive": pa.timestamp("us"),
        "aware": pa.timestamp("us", tz="UTC"),
        "doc": pa.string(),
        "docb": pa.string(),
        "raw": pa.binary(),
        "id": pa.string(),
        "span": pa.string(),
        "list": pa.string(),
        "missing": pa.int32(),
    }
    assert dict(zip(table.column_names, table.schema.types, strict=True)) == expected_types
    row = table.to_pylist()[0]
    nan = row.pop("not_a_number")
    assert nan != nan  # NaN
    assert row == {
        "small": 7,
        "regular": 70000,
        "big": 9000000000,
        "real_value": 1.5,
        "double_value": 0.1,
        "money": Decimal("12.34"),
        "wide": Decimal("1.50000"),
        "ratio": 0.25,
        "text_value": "héllo",
        "varchar_value": "ab",
        "char_value": "x  ",
        "flag": True,
        "day": dt.date(2026, 11, 1),
        "clock": dt.time(13, 14, 15, 500000),
        "naive": dt.datetime(2026, 1, 2, 3, 4, 5, 123456),
        "aware": dt.datetime(2026, 1, 2, 1, 4, 5, tzinfo=dt.UTC),
        "doc": '{"a": [1, 2]}',  # json keeps the text as written
        "docb": '{"b": 1}',
        "raw": b"\x00\xff",
        "id": "8c0e1a3e-25f0-4d4b-9f6b-6b2b8b0b6a11",
        "span": "1 day 02:00:00",
        "list": "{1,2}",
        "missing": None,
    }


def test_large_result_arrives_in_batches_with_nulls(postgres_server: PostgresServer) -> None:
    rows = 45_000  # more than two fetches
    table = warehouse(postgres_server).run_query(
        f"SELECT g AS n, CASE WHEN g % 3 = 0 THEN NULL ELSE g::text END AS label, "
        f"(g / 100.0)::numeric(12, 2) AS amount FROM generate_series(1, {rows}) AS g ORDER BY g"
    )
    assert table.num_rows == rows
    assert table.column("n").to_pylist() == list(range(1, rows + 1))
    assert table.column("label").null_count == rows // 3
    assert table.column("label")[1].as_py() == "2"
    assert sum(table.column("amount").to_pylist()) == Decimal(rows * (rows + 1) // 2) / 100


def test_empty_result_keeps_the_columns(postgres_server: PostgresServer) -> None:
    table = warehouse(postgres_server).run_query("SELECT 1::int8 AS a, 'x' AS b WHERE false")
    assert table.num_rows == 0
    assert table.schema == pa.schema([("a", pa.int64()), ("b", pa.string())])


def test_nan_in_a_declared_numeric_says_how_to_fix_it(postgres_server: PostgresServer) -> None:
    with pytest.raises(TerminalStepError, match=r"column 'v'.*NaN.*v::float8"):
        warehouse(postgres_server).run_query("SELECT 'NaN'::numeric(10, 2) AS v")


# ---------------------------------------------------------------------------------------------
# Loading tables


def test_load_table_round_trip_and_replace(postgres_server: PostgresServer) -> None:
    utc = dt.UTC
    source = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "small": pa.array([1, None, -3], pa.int16()),
            "count": pa.array([10, 20, None], pa.int32()),
            "score": pa.array([0.5, float("inf"), None], pa.float64()),
            "flag": pa.array([True, False, None]),
            "name": pa.array(['a "quoted", text', "", None]),
            "note": pa.array(["line\nbreak", "ünïcode", "x"]),
            "day": pa.array([dt.date(2026, 1, 1), None, dt.date(1999, 12, 31)]),
            "at": pa.array([dt.datetime(2026, 1, 1, 12), None, None], pa.timestamp("us")),
            "at_utc": pa.array(
                [dt.datetime(2026, 1, 1, 12, tzinfo=utc), None, None], pa.timestamp("us", "UTC")
            ),
            "amount": pa.array([Decimal("1.20"), Decimal("-3.00"), None], pa.decimal128(12, 2)),
            "clock": pa.array([dt.time(1, 2, 3), None, None], pa.time64("us")),
            "segment": pa.array(["smb", "smb", "enterprise"]).dictionary_encode(),
        }
    )
    resource = warehouse(postgres_server)
    resource.load_table("Load_Test.things", source)  # unquoted: folded to lower case
    loaded = resource.run_query("SELECT * FROM load_test.things ORDER BY id")
    expected = source.set_column(
        source.schema.get_field_index("segment"),
        "segment",
        source.column("segment").cast(pa.string()),
    )
    assert loaded.equals(expected), (loaded.to_pylist(), expected.to_pylist())

    resource.load_table("load_test.things", source.slice(0, 1).select(["id", "name"]))
    replaced = resource.run_query("SELECT * FROM load_test.things")
    assert replaced.to_pylist() == [{"id": 1, "name": 'a "quoted", text'}]


def test_load_table_with_bytes(postgres_server: PostgresServer) -> None:
    source = pa.table({"id": [1, 2], "raw": pa.array([b"\x00\x01,\n", None], pa.binary())})
    resource = warehouse(postgres_server)
    resource.load_table("blobs", source)
    assert resource.run_query("SELECT * FROM blobs ORDER BY id").equals(source)


def test_load_table_rejects_a_type_it_cannot_store(postgres_server: PostgresServer) -> None:
    source = pa.table({"tags": pa.array([["a"], ["b", "c"]])})
    with pytest.raises(TerminalStepError, match=r"column 'tags' has Arrow type list"):
        warehouse(postgres_server).load_table("lists", source)


# ---------------------------------------------------------------------------------------------
# The built-in templates give the same results as on DuckDB


@pytest.mark.parametrize("playbook_id", TEMPLATE_IDS)
def test_template_matches_duckdb(
    playbook_id: str,
    project: Project,
    postgres_demo: PostgresServer,
    demo_files: DemoFiles,
    capsys: pytest.CaptureFixture[str],
    duckdb_reports: DuckDBReports,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Log in with a password read from the environment at run time (${VAR}).
    monkeypatch.setenv("PLAYBOOK_TEST_PG_PASSWORD", PASSWORD)
    config = write_warehouse_config(
        project.root,
        demo_files,
        "pg",
        f"""
        type: postgres
        host: {postgres_demo.host}
        port: {postgres_demo.port}
        user: {PASSWORD_USER}
        password: "${{PLAYBOOK_TEST_PG_PASSWORD}}"
        database: {DEMO_DATABASE}
        """,
    )
    on_postgres = run_template(config, playbook_id, capsys)
    on_duckdb = duckdb_reports[playbook_id]
    assert_same_results(on_postgres, on_duckdb)
    assert all(step["row_count"] > 0 for step in on_postgres["steps"])
    assert PASSWORD not in json.dumps(on_postgres)


def test_password_setting_is_read_at_run_time(
    tmp_path: Path, demo_files: DemoFiles, postgres_server: PostgresServer
) -> None:
    config_path = write_warehouse_config(
        tmp_path,
        demo_files,
        "pg",
        f"""
        type: postgres
        dsn: "${{PLAYBOOK_TEST_PG_DSN}}"
        password: "${{PLAYBOOK_TEST_PG_PASSWORD}}"
        port: {postgres_server.port}
        """,
    )
    resource = build_resource(load_config_file(config_path), "pg", environ={})
    assert isinstance(resource, PostgresWarehouse)
    assert resource.password == "${PLAYBOOK_TEST_PG_PASSWORD}"
    assert resource.dsn == "${PLAYBOOK_TEST_PG_DSN}"
    assert resource.port == postgres_server.port


# ---------------------------------------------------------------------------------------------
# Timeouts and failures


def test_slow_query_is_cancelled_on_the_server(postgres_server: PostgresServer) -> None:
    resource = warehouse(postgres_server, application_name="timeout-test")
    started = time.monotonic()
    with pytest.raises(StepTimeoutError, match=r"longer than 1 s and was cancelled") as caught:
        resource.run_query("SELECT pg_sleep(30)", timeout_seconds=1)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.5
    assert "timeout_seconds" in str(caught.value)
    assert active_queries(postgres_server, "timeout-test") == []


class _ServerIgnoresTimeouts(PostgresWarehouse):
    """Stands in for a server or proxy that does not apply statement_timeout."""

    def _session_settings(self, read_only: bool, timeout: float | None) -> list[sql.Composable]:
        return super()._session_settings(read_only, None)


def test_client_cancels_when_the_server_does_not(postgres_server: PostgresServer) -> None:
    resource = _ServerIgnoresTimeouts(
        host=postgres_server.host,
        port=postgres_server.port,
        user="postgres",
        application_name="client-cancel-test",
    )
    started = time.monotonic()
    with pytest.raises(StepTimeoutError, match=r"longer than 1 s"):
        resource.run_query("SELECT pg_sleep(30)", timeout_seconds=1)
    assert 1.4 <= time.monotonic() - started < 3
    assert active_queries(postgres_server, "client-cancel-test") == []


def test_time_limit_covers_the_whole_fetch(postgres_server: PostgresServer) -> None:
    # Each FETCH of 20 000 rows sleeps 0.7 s: no single statement passes the limit, all ten
    # together take 7 s. Cut at the 1 s limit, the query ends well before (a loaded machine
    # adds its own delay, hence the margin).
    resource = warehouse(postgres_server)
    started = time.monotonic()
    with pytest.raises(StepTimeoutError):
        resource.run_query(
            "SELECT g, CASE WHEN g % 20000 = 1 THEN pg_sleep(0.7) END AS pause "
            "FROM generate_series(1, 200000) AS g",
            timeout_seconds=1,
        )
    assert time.monotonic() - started < 4


def test_fast_query_within_the_time_limit(postgres_server: PostgresServer) -> None:
    table = warehouse(postgres_server).run_query("SELECT pg_sleep(0.1), 1 AS x", timeout_seconds=5)
    assert table.column("x").to_pylist() == [1]


def test_connection_refused_is_unreachable(postgres_server: PostgresServer) -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(SourceUnreachableError, match=rf"cannot connect to PostgreSQL.*{port}"):
        warehouse(postgres_server, port=port).run_query("SELECT 1")
    assert time.monotonic() - started < 2


def test_backend_killed_mid_query_is_transient(postgres_server: PostgresServer) -> None:
    resource = warehouse(postgres_server, application_name="kill-test")
    killed: list[bool] = []

    def kill_when_running() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            running = active_queries(postgres_server, "kill-test", running_for=0.2)
            if running:
                with postgres_server.connect() as connection:
                    connection.execute("SELECT pg_terminate_backend(%s)", [running[0]])
                killed.append(True)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_running)
    killer.start()
    try:
        with pytest.raises(TransientStepError, match="terminating connection") as caught:
            resource.run_query("SELECT pg_sleep(10)")
    finally:
        killer.join()
    assert killed == [True]
    assert not isinstance(caught.value, SourceUnreachableError | TerminalStepError)


def test_syntax_error_names_the_line(postgres_server: PostgresServer) -> None:
    sql = "SELECT account_id,\n       arr\nFORM accounts\nWHERE arr > 0"
    with pytest.raises(TerminalStepError) as caught:
        warehouse(postgres_server).run_query(sql)
    message = str(caught.value)
    assert "at line 3 of the query: syntax error at or near" in message
    assert "(line 3: FORM accounts)" in message
    assert not isinstance(caught.value, TransientStepError)


def test_missing_table_names_the_line(postgres_server: PostgresServer) -> None:
    sql = "SELECT *\nFROM analytics.no_such_table\nLIMIT 5"
    with pytest.raises(TerminalStepError) as caught:
        warehouse(postgres_server).run_query(sql)
    assert str(caught.value) == (
        "PostgreSQL rejected the query at line 2 of the query: relation "
        '"analytics.no_such_table" does not exist (line 2: FROM analytics.no_such_table)'
    )


def test_read_only_session_refuses_writes(postgres_server: PostgresServer) -> None:
    with postgres_server.connect() as connection:
        connection.execute("CREATE SEQUENCE IF NOT EXISTS ro_sequence")
    resource = warehouse(postgres_server)
    # Passes the SQL guard (a function call), and still writes: the session refuses it.
    with pytest.raises(TerminalStepError, match=r"read-only transaction.*allow_writes: true"):
        resource.run_query("SELECT nextval('ro_sequence')")
    # A write statement that reached the warehouse anyway.
    with pytest.raises(TerminalStepError, match=r"read-only transaction.*allow_writes: true"):
        resource.run_query("CREATE TABLE ro_refused (a int)")
    with postgres_server.connect() as connection:
        exists = connection.execute("SELECT to_regclass('ro_refused')").fetchone()
    assert exists == (None,)


def test_allow_writes_commits(postgres_server: PostgresServer) -> None:
    resource = warehouse(postgres_server, allow_writes=True)
    assert resource.run_query("CREATE TABLE rw_allowed (a int)").num_rows == 0
    inserted = resource.run_query("INSERT INTO rw_allowed VALUES (1), (2) RETURNING a")
    assert inserted.column("a").to_pylist() == [1, 2]
    with postgres_server.connect() as connection:
        assert connection.execute("SELECT count(*) FROM rw_allowed").fetchone() == (2,)


def test_password_login_and_no_password_in_errors(postgres_server: PostgresServer) -> None:
    ok = warehouse(postgres_server, user=PASSWORD_USER, password=PASSWORD)
    assert ok.run_query("SELECT current_user AS u").column("u").to_pylist() == [PASSWORD_USER]

    wrong = "Wr0ng-" + PASSWORD
    attempts = [
        warehouse(postgres_server, user=PASSWORD_USER, password=wrong),
        PostgresWarehouse(
            dsn=f"postgresql://{PASSWORD_USER}:{wrong}@{postgres_server.host}:"
            f"{postgres_server.port}/postgres"
        ),
    ]
    for resource in attempts:
        with pytest.raises(TerminalStepError) as caught:
            resource.run_query("SELECT 1")
        message = str(caught.value)
        assert "password authentication failed" in message
        assert "check user, password" in message
        assert wrong not in message and PASSWORD not in message
        assert not isinstance(caught.value, TransientStepError)

    broken_dsn = PostgresWarehouse(dsn=f"host=127.0.0.1 password={wrong} oops")
    with pytest.raises(TerminalStepError, match="not a valid connection string") as caught:
        broken_dsn.run_query("SELECT 1")
    assert wrong not in str(caught.value) and caught.value.__cause__ is None


def test_dsn_and_fields_combine(postgres_server: PostgresServer) -> None:
    # A field that is set wins over the same part of the DSN.
    dsn = postgres_server.conninfo(dbname="template1")
    resource = PostgresWarehouse(dsn=dsn, database="postgres", application_name="dsn-test")
    table = resource.run_query(
        "SELECT current_database() AS db, current_setting('application_name') AS app"
    )
    assert table.to_pylist() == [{"db": "postgres", "app": "dsn-test"}]
