"""The scratch database (``file_access.scratch_connection``): one in-memory DuckDB database
per process whose connections transforms, checks and statistics use. What one connection
registers or creates as temporary is its own, also while others run at the same time."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from playbook_assets.core.file_access import confined_connection, scratch_connection


def test_connections_see_only_their_own_tables() -> None:
    with scratch_connection() as first, scratch_connection() as second:
        first.register("input", pa.table({"v": [1, 2]}))
        second.register("input", pa.table({"v": [10]}))
        first.execute("CREATE TEMP TABLE kept AS SELECT 1 AS k")
        assert first.sql("SELECT sum(v) FROM input").fetchall() == [(3,)]
        assert second.sql("SELECT sum(v) FROM input").fetchall() == [(10,)]
        with pytest.raises(duckdb.CatalogException):
            second.sql("SELECT * FROM kept").fetchall()
    # Closed: nothing a connection registered is left for the next one.
    with scratch_connection() as third:
        with pytest.raises(duckdb.CatalogException):
            third.sql("SELECT * FROM input").fetchall()


def test_concurrent_steps_never_read_each_other_s_rows() -> None:
    """Eight threads register the same name with their own rows, many times over; each
    sum is what its own rows give (computed in Python)."""
    errors: list[str] = []
    start = threading.Barrier(8)

    def work(index: int) -> None:
        start.wait()
        values = list(range(index * 1000, index * 1000 + 500))
        for _ in range(40):
            with scratch_connection() as connection:
                connection.register("__playbook_input", pa.table({"v": values}))
                row = connection.execute("SELECT sum(v) FROM __playbook_input").fetchone()
            total = row[0] if row else None
            if total != sum(values):
                errors.append(f"thread {index}: {total} != {sum(values)}")

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_a_scratch_connection_opens_no_file_and_cannot_be_unlocked(tmp_path: Path) -> None:
    """What transforms, checks and statistics run on: no file access, configuration locked,
    insertion order kept (the filter relies on it)."""
    readable = tmp_path / "data.csv"
    readable.write_text("a\n1\n", encoding="utf-8")
    with scratch_connection() as connection:
        with pytest.raises(duckdb.PermissionException):
            connection.sql(f"SELECT * FROM read_csv('{readable}')").fetchall()
        with pytest.raises(duckdb.InvalidInputException, match="locked"):
            connection.execute("SET enable_external_access = true")
        setting = "SELECT current_setting('preserve_insertion_order')"
        assert connection.sql(setting).fetchall() == [(True,)]


def test_a_confined_in_memory_session_is_a_database_of_its_own() -> None:
    """Sessions that run a playbook's own SQL (a DuckDB warehouse, file steps) never share
    the scratch database."""
    with scratch_connection() as scratch, confined_connection() as confined:
        scratch.execute("CREATE TEMP TABLE mine AS SELECT 1 AS k")
        confined.execute("CREATE TABLE shared AS SELECT 2 AS k")
        with pytest.raises(duckdb.CatalogException):
            scratch.sql("SELECT * FROM shared").fetchall()
