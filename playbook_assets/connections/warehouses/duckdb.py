"""DuckDB as the data warehouse (the embedded default)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
from pydantic import Field

from playbook_assets.connections.query_timeout import interrupt_after
from playbook_assets.connections.warehouses.base import WarehouseResource
from playbook_assets.core.errors import SourceUnreachableError, StepTimeoutError, TerminalStepError
from playbook_assets.core.file_access import ALLOWED_HINT, confined_connection, is_file_access_error
from playbook_assets.core.sql import BOUND_LIST_COLUMN, sql_identifier
from playbook_assets.demo.generator import ensure_demo_warehouse

# A writer holds DuckDB's file lock for a moment (demo data is written to a temporary file
# and renamed, so this is rare); retry the connect a few times before giving up.
_CONNECT_ATTEMPTS = 5


class DuckDBWarehouse(WarehouseResource):
    """A DuckDB database file queried read-only (read-write with ``allow_writes: true``).

    With ``demo_data: true`` the demo warehouse is generated into ``database`` on first use.
    Queries can open no file outside ``allowed_directories`` (``read_csv``, ``ATTACH``,
    ``COPY``): see ``playbook_assets.core.file_access``.
    """

    dialect: ClassVar[str] = "duckdb"
    kind: ClassVar[str] = "duckdb"

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

    binds_lists: ClassVar[bool] = True

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
        connection = self._connect()
        try:
            for relation, values in lists.items():
                connection.register(relation, pa.table({BOUND_LIST_COLUMN: values}))
            with interrupt_after(connection, timeout_seconds) as timed_out:
                try:
                    relation = connection.sql(sql)
                    # A statement that returns no rows (allowed with allow_writes) has none.
                    return relation.to_arrow_table() if relation is not None else pa.table({})
                except duckdb.Error as e:
                    if timed_out.is_set():
                        raise StepTimeoutError(
                            f"the query ran longer than {timeout_seconds:g} s and was cancelled",
                            hint="raise timeout_seconds on the step or in "
                            "execution.timeout_seconds",
                        ) from e
                    hint = ALLOWED_HINT if is_file_access_error(e) else None
                    raise TerminalStepError(f"DuckDB rejected the query: {e}", hint=hint) from e
        finally:
            connection.close()

    def load_table(self, name: str, table: pa.Table) -> None:
        """Create or replace ``schema.table`` from Arrow, in one transaction."""
        schema, _, _ = name.rpartition(".")
        target = sql_identifier(name, self.dialect)
        with duckdb.connect(self.database) as connection:
            connection.begin()
            if schema:
                connection.execute(
                    f"CREATE SCHEMA IF NOT EXISTS {sql_identifier(schema, 'duckdb')}"
                )
            connection.register("incoming", table)
            connection.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM incoming")
            connection.commit()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        config: dict[str, str | bool | int | float | list[str]] = {}
        if self.threads is not None:
            config["threads"] = self.threads
        read_only = not self.allow_writes and self.database != ":memory:"
        if read_only and not Path(self.database).exists():
            raise SourceUnreachableError(
                f"DuckDB database file not found: {self.database}",
                hint="check connections.<name>.database in the config, or set demo_data: true",
            )
        for attempt in range(_CONNECT_ATTEMPTS):
            try:
                return confined_connection(
                    self.database,
                    read_only=read_only,
                    allowed_directories=self.allowed_directories,
                    config=config,
                )
            except duckdb.IOException as e:
                if attempt == _CONNECT_ATTEMPTS - 1:
                    raise SourceUnreachableError(
                        f"cannot open DuckDB file {self.database}: {e}"
                    ) from e
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")
