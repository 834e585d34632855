"""The scratch database (``file_access.scratch_connection``): one in-memory DuckDB database
per process whose connections transforms, checks and statistics use. What one connection
registers or creates as temporary is its own, also while others run at the same time."""

from __future__ import annotations

import threading

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


def test_the_in_memory_confined_session_is_a_scratch_connection_with_its_limits() -> None:
    """Without allowed folders a confined in-memory session (transforms, checks) is a scratch
    connection: no file access, configuration locked, insertion order kept."""
    with confined_connection() as connection:
        assert connection.sql("SELECT current_setting('enable_external_access')").fetchall() == [
            (False,)
        ]
        assert connection.sql("SELECT current_setting('lock_configuration')").fetchall() == [
            (True,)
        ]
        assert connection.sql("SELECT current_setting('preserve_insertion_order')").fetchall() == [
            (True,)
        ]
