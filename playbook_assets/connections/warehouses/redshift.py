"""Amazon Redshift as the data warehouse, over the PostgreSQL wire protocol (psycopg 3).

Everything but the defaults, the session settings and table loading is PostgreSQL's
(``warehouses/postgres_wire``): connection fields, the server-side statement timeout and cancel,
read-only transactions, the cursor-and-batches path to Arrow and the error classification.
Queries are rendered in sqlglot's ``redshift`` dialect.
"""

from __future__ import annotations

from typing import ClassVar

import psycopg
import pyarrow as pa
from psycopg import sql as pg_sql

from playbook_assets.connections.warehouses.postgres_wire import PostgresWireWarehouse

# Redshift binds at most 32767 parameters per statement; stay well below.
_MAX_PARAMETERS = 30_000
_MAX_ROWS_PER_INSERT = 1_000


class RedshiftWarehouse(PostgresWireWarehouse):
    """An Amazon Redshift database (provisioned or serverless), read-only unless ``allow_writes``.

    Same settings as a PostgreSQL connection, with Redshift's defaults: port 5439 and
    ``sslmode: require``. Sessions are read-only through ``BEGIN READ ONLY`` (Redshift has no
    ``default_transaction_read_only``); ``statement_timeout`` cancels slow queries on the
    server. Strings are stored as ``VARCHAR(65535)`` by ``load_table``, which inserts rows in
    batches of parameterised ``INSERT`` statements (Redshift has no ``COPY FROM STDIN``; load
    large tables with ``COPY`` from S3 instead).
    """

    dialect: ClassVar[str] = "redshift"
    kind: ClassVar[str] = "redshift"
    label: ClassVar[str] = "Redshift"
    default_port: ClassVar[int] = 5439
    default_sslmode: ClassVar[str | None] = "require"

    def _session_settings(self, read_only: bool, timeout: float | None) -> list[pg_sql.Composable]:
        settings: list[pg_sql.Composable] = [pg_sql.SQL("SET timezone TO 'UTC'")]
        if timeout:
            settings.append(self._statement_timeout(timeout))
        return settings

    def _text_type(self) -> str:
        # Redshift's TEXT is VARCHAR(256); take the longest it has.
        return "varchar(65535)"

    def _binary_type(self) -> str:
        return "varbyte"

    def _insert_rows(
        self, cursor: psycopg.Cursor, target: pg_sql.Composable, table: pa.Table
    ) -> None:
        """Fill the new table with multi-row ``INSERT ... VALUES`` statements."""
        width = max(1, table.num_columns)
        per_statement = max(1, min(_MAX_ROWS_PER_INSERT, _MAX_PARAMETERS // width))
        names = pg_sql.SQL(", ").join(pg_sql.Identifier(name) for name in table.column_names)
        row = pg_sql.SQL("({})").format(pg_sql.SQL(", ").join([pg_sql.Placeholder()] * width))

        def insert(rows: int) -> pg_sql.Composed:
            values = pg_sql.SQL(", ").join([row] * rows)
            return pg_sql.SQL("INSERT INTO {} ({}) VALUES {}").format(target, names, values)

        for batch in table.to_batches(max_chunksize=per_statement):
            columns = [column.to_pylist() for column in batch.columns]
            parameters = [value for values in zip(*columns, strict=True) for value in values]
            cursor.execute(insert(batch.num_rows), parameters)
