"""DuckDB as the data warehouse (the embedded default), on dagster-duckdb's ``DuckDBResource``.

The warehouse is a ``DuckDBResource`` whose ``get_connection()`` opens a confined session
(``playbook_assets.core.file_access.confined_connection``: external access off, only the
allowed folders readable, the configuration locked), read-only unless ``allow_writes``. A
user's own asset that asks for the connection as a ``DuckDBResource`` gets the same session.

Documented behaviour this module relies on (DuckDB's documentation; each tested in
tests/test_sql.py, tests/reliability/test_paths.py and tests/reliability/test_timeouts.py):

- ``enable_external_access = false`` with ``allowed_directories`` refuses every file outside
  those folders (``read_csv``, ``ATTACH``, ``COPY``), and ``lock_configuration`` keeps a
  statement from turning it back;
- ``interrupt()`` from another thread stops the running query with an error;
- one writer holds the file's lock: opening it meanwhile raises ``IOException`` (retried).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
from dagster_duckdb import DuckDBResource
from pydantic import Field

from playbook_assets.connections.kit.deadline import interrupt_after, limit_text, step_timeout
from playbook_assets.connections.kit.errors import ErrorMapping, mapped_errors
from playbook_assets.connections.kit.retry import RetryPolicy, call_with_retries
from playbook_assets.connections.warehouses.base import WarehouseResource
from playbook_assets.core.errors import SourceUnreachableError, TerminalStepError
from playbook_assets.core.file_access import ALLOWED_HINT, confined_connection, is_file_access_error
from playbook_assets.core.sql import BOUND_LIST_COLUMN, sql_identifier
from playbook_assets.demo.generator import ensure_demo_warehouse

# A writer holds DuckDB's file lock for a moment (demo data is written to a temporary file
# and renamed, so this is rare): open the file again a few times, quickly, before giving up.
_LOCKED_FILE = RetryPolicy(retries=4, backoff_seconds=0.05, max_backoff_seconds=1.0)


class DuckDBWarehouse(WarehouseResource, DuckDBResource):
    """A DuckDB database file queried read-only (read-write with ``allow_writes: true``).

    With ``demo_data: true`` the demo warehouse is generated into ``database`` on first use.
    Queries can open no file outside ``allowed_directories`` (``read_csv``, ``ATTACH``,
    ``COPY``): see ``playbook_assets.core.file_access``.
    """

    dialect: ClassVar[str] = "duckdb"
    kind: ClassVar[str] = "duckdb"
    binds_lists: ClassVar[bool] = True

    # -- settings -------------------------------------------------------------------------------

    database: str = Field(description="Path of the DuckDB file, or ':memory:'.")
    demo_data: bool = Field(
        default=False, description="Generate the demo warehouse into the file when it is missing."
    )
    demo_scale: float = Field(default=1.0, gt=0, description="Scale of generated demo data.")
    threads: int | None = Field(default=None, ge=1, description="DuckDB threads (default: all).")
    allowed_directories: list[str] = Field(
        default_factory=list,
        description="Folders whose files queries may read (from files.allowed_directories).",
    )

    # -- connect --------------------------------------------------------------------------------

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:  # pyright: ignore[reportIncompatibleMethodOverride]
        """A confined session on the database (read-only unless ``allow_writes``), closed
        when the block ends."""
        config: dict[str, Any] = dict(self.connection_config)
        if self.threads is not None:
            config["threads"] = self.threads
        read_only = not self.allow_writes and self.database != ":memory:"
        if read_only and not Path(self.database).exists():
            raise SourceUnreachableError(
                f"DuckDB database file not found: {self.database}",
                hint="check connections.<name>.database in the config, or set demo_data: true",
            )

        def connect(_: object) -> duckdb.DuckDBPyConnection:
            with mapped_errors(self._connect_error):
                return confined_connection(
                    self.database,
                    read_only=read_only,
                    allowed_directories=self.allowed_directories,
                    config=config,
                )

        connection = call_with_retries(connect, _LOCKED_FILE)
        try:
            yield connection
        finally:
            connection.close()

    # -- run ------------------------------------------------------------------------------------

    def run_query(self, sql: str, *, timeout_seconds: float | None = None) -> pa.Table:
        """Run ``sql`` and return the whole result as an Arrow table.

        With ``timeout_seconds``, a timer interrupts the query inside DuckDB when it runs
        longer; the step then fails with ``StepTimeoutError``.
        """
        return self.run_query_with_lists(sql, {}, timeout_seconds=timeout_seconds)

    def run_query_with_lists(
        self,
        sql: str,
        lists: Mapping[str, Sequence[Any]],
        *,
        timeout_seconds: float | None = None,
    ) -> pa.Table:
        """``run_query``, with each list registered on the connection as an Arrow table."""
        if self.demo_data and self.database != ":memory:":
            ensure_demo_warehouse(Path(self.database), self.demo_scale)
        with self.get_connection() as connection:
            for relation, values in lists.items():
                connection.register(relation, pa.table({BOUND_LIST_COLUMN: values}))
            with interrupt_after(connection, timeout_seconds) as timed_out:
                with mapped_errors(_query_errors(timeout_seconds, timed_out.is_set)):
                    relation = connection.sql(sql)
                    # A statement that returns no rows (allowed with allow_writes) has none.
                    return relation.to_arrow_table() if relation is not None else pa.table({})

    def load_table(self, name: str, table: pa.Table) -> None:
        """Create or replace ``schema.table`` from Arrow, in one transaction (through
        ``DuckDBResource``'s own read-write connection: an administrator's command)."""
        schema, _, _ = name.rpartition(".")
        target = sql_identifier(name, self.dialect)
        with DuckDBResource.get_connection(self) as connection:
            connection.begin()
            if schema:
                connection.execute(
                    f"CREATE SCHEMA IF NOT EXISTS {sql_identifier(schema, 'duckdb')}"
                )
            connection.register("incoming", table)
            connection.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM incoming")
            connection.commit()

    # -- error mapping --------------------------------------------------------------------------

    def _connect_error(self, error: Exception) -> Exception:
        if isinstance(error, duckdb.IOException):
            return SourceUnreachableError(f"cannot open DuckDB file {self.database}: {error}")
        return error


def _query_errors(timeout_seconds: float | None, interrupted: Callable[[], bool]) -> ErrorMapping:
    def mapping(error: Exception) -> Exception:
        if not isinstance(error, duckdb.Error):
            return error
        if interrupted():
            return step_timeout(
                f"the query ran longer than {limit_text(timeout_seconds)} and was cancelled"
            )
        hint = ALLOWED_HINT if is_file_access_error(error) else None
        return TerminalStepError(f"DuckDB rejected the query: {error}", hint=hint)

    return mapping
