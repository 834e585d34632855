"""The resource of a server speaking PostgreSQL's wire protocol, over psycopg 3: its
connection settings, how a query runs and how a table is loaded (see the package's doc)."""

from __future__ import annotations

import math
from typing import Any, ClassVar, LiteralString, cast

import psycopg
import pyarrow as pa
import sqlglot
from psycopg import sql as pg_sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import Field
from sqlglot import exp
from sqlglot.errors import SqlglotError

from playbook_assets.connections.warehouses.base import WarehouseResource
from playbook_assets.connections.warehouses.postgres_wire.cancel import CancelGuard
from playbook_assets.connections.warehouses.postgres_wire.errors import (
    connect_error,
    query_error,
    timeout_error,
)
from playbook_assets.connections.warehouses.postgres_wire.loading import (
    column_type,
    copy_rows,
    decoded,
    table_name,
)
from playbook_assets.connections.warehouses.postgres_wire.results import (
    ResultShape,
    result_adapters,
)
from playbook_assets.core.errors import PlaybookValidationError, TerminalStepError
from playbook_assets.core.redaction import MASK, redact
from playbook_assets.core.sql import ensure_read_only

_CURSOR = "playbook_result"
_DECLARE = f"DECLARE {_CURSOR} CURSOR FOR "
_FETCH = f"FETCH FORWARD {{rows}} FROM {_CURSOR}"
_FETCH_ROWS = 20_000


class PostgresWireWarehouse(WarehouseResource):
    """A database speaking PostgreSQL's protocol, queried in read-only sessions (unless
    ``allow_writes``); ``PostgresWarehouse`` and ``RedshiftWarehouse`` set its defaults.

    Connect with ``dsn`` (a libpq connection string or ``postgresql://`` URL) and/or the
    separate fields; a field that is set wins over the same part of the DSN. Write secrets as
    ``${VAR}`` (``dsn: "${PG_DSN}"``, ``password: "${PG_PASSWORD}"``, or inside a DSN) so that
    they are read only when a run opens the connection; they never appear in messages.

    Result types: see ``arrow_type_of_column``. Numeric values without a declared
    precision and scale (aggregates, arithmetic) arrive as float64, exact to about 15
    significant digits; cast them in SQL (``SUM(arr)::numeric(18,2)``) to get decimals.
    """

    # Used in messages; each server's class sets its defaults.
    label: ClassVar[str]
    default_port: ClassVar[int]
    default_sslmode: ClassVar[str | None] = None

    dsn: str | None = Field(
        default=None,
        description=(
            "libpq connection string or postgresql:// URL (may hold the password: write it "
            "as ${VAR}). Fields set below win over the same parts of the DSN."
        ),
    )
    host: str | None = Field(default=None, description="Server host name or address.")
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Server port (default: the DSN's, else 5432; 5439 for Redshift).",
    )
    user: str | None = Field(default=None, description="User name to log in as.")
    password: str | None = Field(
        default=None, description="Password of the user; write it as ${VAR}."
    )
    database: str | None = Field(default=None, description="Database name.")
    sslmode: str | None = Field(
        default=None,
        description=(
            "libpq sslmode: disable, allow, prefer, require, verify-ca or verify-full "
            "(default: the DSN's, else libpq's 'prefer'; 'require' for Redshift)."
        ),
    )
    connect_timeout_seconds: float = Field(
        default=10, gt=0, description="Give up connecting after this many seconds."
    )
    application_name: str = Field(
        default="playbook-executor",
        description="Shown in pg_stat_activity and the server's logs.",
    )

    # ------------------------------------------------------------------------------------
    # Queries

    def run_query(self, sql: str, *, timeout_seconds: float | None = None) -> pa.Table:
        """Run ``sql`` and return its result as Arrow.

        With ``timeout_seconds``, the server cancels the query when it runs longer
        (``statement_timeout``), and the client cancels it shortly after in case the server
        did not; the step then fails with ``StepTimeoutError``. A statement that returns
        no rows (allowed with ``allow_writes``) gives an empty table and is committed.
        """
        text = sql.rstrip().rstrip(";").rstrip()
        streamed = self._is_single_query(text)
        connection = self._connect(read_only=not self.allow_writes, timeout=timeout_seconds)
        guard = CancelGuard(connection, timeout_seconds)
        try:
            with guard:
                if streamed:
                    table = self._fetch_cursor(connection, text, guard)
                else:
                    table = self._execute(connection, text)
                if self.allow_writes:
                    connection.commit()
                return table
        except psycopg.Error as e:
            offset = len(_DECLARE) if streamed else 0
            raise self._query_error(e, text, offset, connection, guard) from e
        finally:
            connection.close()

    def _is_single_query(self, sql: str) -> bool:
        """Whether ``sql`` is one read-only query a cursor can be declared for."""
        try:
            ensure_read_only(sql, self.dialect)
            statement = sqlglot.parse_one(sql, read=self.dialect)
        except (PlaybookValidationError, SqlglotError):
            return False
        return isinstance(statement, exp.Query)

    def _fetch_cursor(
        self, connection: psycopg.Connection, sql: str, guard: CancelGuard
    ) -> pa.Table:
        fetch = _FETCH.format(rows=_FETCH_ROWS)
        with connection.cursor() as cursor:
            # Only SQL that sqlglot read as exactly one query gets here (_is_single_query).
            cursor.execute(dynamic_sql(_DECLARE + sql))
            shape: ResultShape | None = None
            batches: list[pa.RecordBatch] = []
            while True:
                if guard.expired():
                    raise timeout_error(self.label, guard.timeout_seconds)
                cursor.execute(dynamic_sql(fetch))
                if shape is None:
                    shape = ResultShape.of(cursor)
                rows = cursor.fetchall()
                if rows:
                    batches.append(shape.batch(rows, self.label))
                if len(rows) < _FETCH_ROWS:
                    return pa.Table.from_batches(batches, schema=shape.schema)

    def _execute(self, connection: psycopg.Connection, sql: str) -> pa.Table:
        with connection.cursor() as cursor:
            cursor.execute(dynamic_sql(sql))
            while cursor.nextset():
                pass  # several statements (allow_writes): the result is the last one's
            if cursor.description is None:
                return pa.table({})
            shape = ResultShape.of(cursor)
            rows = cursor.fetchall()
            batches = [shape.batch(rows, self.label)] if rows else []
            return pa.Table.from_batches(batches, schema=shape.schema)

    # ------------------------------------------------------------------------------------
    # Loading tables

    def load_table(self, name: str, table: pa.Table) -> None:
        """Create or replace the table ``name`` (``schema.table`` or ``table``) from Arrow.

        The schema is created when missing; dropping, creating and filling the table happen
        in one transaction, so readers see the old table or the new one. This writes even
        when ``allow_writes`` is false: it is an administrator's command (``playbook demo
        load``), not a playbook step.
        """
        schema_name, name_in_schema = table_name(name, self.dialect)
        target = (
            pg_sql.Identifier(schema_name, name_in_schema)
            if schema_name
            else pg_sql.Identifier(name_in_schema)
        )
        table = decoded(table)
        columns = pg_sql.SQL(", ").join(
            pg_sql.SQL("{} {}").format(
                pg_sql.Identifier(field.name), pg_sql.SQL(dynamic_sql(self._column_type(field)))
            )
            for field in table.schema
        )
        connection = self._connect(read_only=False, timeout=None)
        try:
            with connection.cursor() as cursor:
                if schema_name:
                    cursor.execute(
                        pg_sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                            pg_sql.Identifier(schema_name)
                        )
                    )
                cursor.execute(pg_sql.SQL("DROP TABLE IF EXISTS {}").format(target))
                cursor.execute(pg_sql.SQL("CREATE TABLE {} ({})").format(target, columns))
                if table.num_rows:
                    self._insert_rows(cursor, target, table)
            connection.commit()
        except psycopg.Error as e:
            raise self._query_error(e, "", 0, connection, None) from e
        finally:
            connection.close()

    def _column_type(self, field: pa.Field) -> str:
        return column_type(
            field, text=self._text_type(), binary=self._binary_type(), label=self.label
        )

    def _text_type(self) -> str:
        return "text"

    def _binary_type(self) -> str:
        return "bytea"

    def _insert_rows(
        self, cursor: psycopg.Cursor, target: pg_sql.Composable, table: pa.Table
    ) -> None:
        """Fill the new table (``COPY ... FROM STDIN``; a server without it changes this)."""
        copy_rows(cursor, target, table)

    # ------------------------------------------------------------------------------------
    # Connections

    def _session_settings(self, read_only: bool, timeout: float | None) -> list[pg_sql.Composable]:
        """The SET statements that start each session."""
        settings: list[pg_sql.Composable] = [pg_sql.SQL("SET timezone TO 'UTC'")]
        if read_only:
            # BEGIN READ ONLY covers the transaction; this covers any later one as well.
            settings.append(pg_sql.SQL("SET default_transaction_read_only TO on"))
        if timeout:
            settings.append(self._statement_timeout(timeout))
        return settings

    @staticmethod
    def _statement_timeout(timeout: float) -> pg_sql.Composable:
        milliseconds = max(1, math.ceil(timeout * 1000))
        return pg_sql.SQL("SET statement_timeout TO {}").format(pg_sql.Literal(milliseconds))

    def _connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.dsn:
            try:
                params = conninfo_to_dict(self.dsn)
            except psycopg.ProgrammingError:
                # libpq quotes the faulty part of the string, which may be the password.
                raise TerminalStepError(
                    f"the dsn setting of the {self.label} connection is not a valid "
                    "connection string",
                    hint="write key=value pairs (host=... dbname=...) or a postgresql:// URL",
                ) from None
        explicit = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password or None,
            "dbname": self.database,
            "sslmode": self.sslmode,
        }
        params.update({key: value for key, value in explicit.items() if value is not None})
        params.setdefault("port", self.default_port)
        if self.default_sslmode is not None:
            params.setdefault("sslmode", self.default_sslmode)
        params["connect_timeout"] = max(2, math.ceil(self.connect_timeout_seconds))
        params["application_name"] = self.application_name
        return params

    def _where(self, params: dict[str, Any]) -> str:
        host = params.get("host") or params.get("hostaddr") or "the default host"
        user = params.get("user")
        who = f" as user '{user}'" if user else ""
        return f"{self.label} at {host}:{params.get('port')}{who}"

    def _connect(self, *, read_only: bool, timeout: float | None) -> psycopg.Connection:
        """A connection in a new transaction with the session settings applied."""
        params = self._connection_params()
        try:
            connection = psycopg.connect(make_conninfo(**params), context=result_adapters())
        except psycopg.Error as e:
            raise connect_error(e, self._where(params), self._scrub) from e
        try:
            connection.read_only = read_only
            statements = self._session_settings(read_only, timeout)
            connection.execute(pg_sql.SQL("; ").join(statements))
        except psycopg.Error as e:
            connection.close()
            raise self._query_error(e, "", 0, connection, None) from e
        return connection

    # ------------------------------------------------------------------------------------
    # Errors

    def _scrub(self, text: str) -> str:
        """``text`` without any password this connection knows, nor any configured secret."""
        secrets: list[str | None] = [self.password]
        if self.dsn:
            try:
                secrets.append(str(conninfo_to_dict(self.dsn).get("password") or ""))
            except psycopg.ProgrammingError:
                secrets.append(self.dsn)
        for secret in secrets:
            if secret:
                text = text.replace(secret, MASK)
        return redact(text)

    def _query_error(
        self,
        e: psycopg.Error,
        sql: str,
        offset: int,
        connection: psycopg.Connection,
        guard: CancelGuard | None,
    ) -> Exception:
        return query_error(
            e,
            label=self.label,
            scrub=self._scrub,
            sql=sql,
            offset=offset,
            connection=connection,
            guard=guard,
        )


def dynamic_sql(text: str) -> LiteralString:
    """SQL text built at run time (rendered templates, type names from a fixed table).

    psycopg's types ask for literal strings to catch values formatted into SQL; the text
    here was rendered safely before it arrived (``playbook_assets.core.sql``).
    """
    return cast(LiteralString, text)
