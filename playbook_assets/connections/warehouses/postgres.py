"""PostgreSQL as the data warehouse, over psycopg 3.

Redshift speaks the same wire protocol: ``warehouses/redshift.py`` subclasses the resource
here and changes only its defaults, its session settings and how it loads tables.

How a query runs: one connection per query, a transaction (``BEGIN READ ONLY`` unless
``allow_writes``), ``SET statement_timeout`` so the server cancels a slow query itself, and a
client-side timer that sends a cancel request shortly after the limit in case the server did
not. A single query is read through a server-side cursor (``DECLARE ... CURSOR``, then
``FETCH`` in batches) and each batch becomes Arrow arrays column by column, typed from the
result's type OIDs (see ``PostgresWarehouse``); other statements (allowed with
``allow_writes``) run as they are.
"""

from __future__ import annotations

import functools
import io
import math
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, LiteralString, cast

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlglot
from psycopg import sql as pg_sql
from psycopg.adapt import AdaptersMap
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.string import TextLoader
from pydantic import Field
from sqlglot import exp
from sqlglot.errors import SqlglotError

from playbook_assets.connections.warehouses.base import WarehouseResource
from playbook_assets.core.errors import (
    PlaybookValidationError,
    SourceUnreachableError,
    StepTimeoutError,
    TerminalStepError,
    TransientStepError,
)
from playbook_assets.core.redaction import MASK, redact
from playbook_assets.core.sql import ensure_read_only

__all__ = ["PostgresWarehouse", "arrow_type_of_column"]

_CURSOR = "playbook_result"
_DECLARE = f"DECLARE {_CURSOR} CURSOR FOR "
_FETCH = f"FETCH FORWARD {{rows}} FROM {_CURSOR}"
_FETCH_ROWS = 20_000
# The client-side guard cancels this long after the limit, so that the server's own
# statement_timeout (exact, and reported as such) normally comes first.
_CLIENT_GRACE_SECONDS = 0.5
_CANCEL_WAIT_SECONDS = 5.0

# SQLSTATEs a retry may fix: serialization failure, deadlock, lock not available, the server
# shutting down or starting up, too many connections.
_TRANSIENT_STATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"})
_QUERY_CANCELED = "57014"
_READ_ONLY_TRANSACTION = "25006"

# libpq reports failures while connecting as text without a SQLSTATE. These mean the server
# answered and refused the login: a retry cannot fix them, the settings must change.
_LOGIN_REFUSED = (
    "authentication failed",
    "no password supplied",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied",
    "ssl was required",
    "does not support ssl",
    "certificate",
)
_TOO_MANY_CLIENTS = ("too many clients", "remaining connection slots")

_TIMEOUT_HINT = "raise timeout_seconds on the step or in execution.timeout_seconds"
_WRITE_HINT = "set allow_writes: true on the connection to allow writes"


@functools.cache
def _native_types() -> dict[int, pa.DataType]:
    """Type OIDs whose psycopg loader gives Python values pyarrow takes as they are."""
    types = psycopg.adapters.types
    mapping: dict[str, pa.DataType] = {
        "bool": pa.bool_(),
        "int2": pa.int16(),
        "int4": pa.int32(),
        "int8": pa.int64(),
        "float4": pa.float32(),
        "float8": pa.float64(),
        "date": pa.date32(),
        "time": pa.time64("us"),
        "timestamp": pa.timestamp("us"),
        # The session's TimeZone is UTC, so loaded values are UTC too.
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "bytea": pa.binary(),
    }
    found: dict[int, pa.DataType] = {}
    for name, arrow_type in mapping.items():
        info = types.get(name)
        if info is not None:
            found[info.oid] = arrow_type
    return found


@functools.cache
def _numeric_oid() -> int:
    info = psycopg.adapters.types.get("numeric")
    return info.oid if info is not None else 1700


@functools.cache
def _result_adapters() -> AdaptersMap:
    """psycopg's adapters, except that every type not in ``_native_types`` loads as text.

    Text is what Arrow gets for json/jsonb (the document as written), uuid, interval, arrays,
    ranges, network types and unknown types; numeric text is cast by Arrow (no Decimal
    objects are made).
    """
    adapters = AdaptersMap(psycopg.adapters)
    native = _native_types()
    for info in psycopg.adapters.types:
        for oid in (info.oid, info.array_oid):
            if oid and oid not in native:
                adapters.register_loader(oid, TextLoader)
    return adapters


def arrow_type_of_column(column: psycopg.Column) -> pa.DataType:
    """The Arrow type a result column becomes.

    bool, int2/4/8, float4/8, date, time, timestamp, timestamptz (UTC) and bytea map to their
    Arrow types; numeric with a declared precision and scale becomes decimal128 (decimal256
    past 38 digits), numeric without one (``SUM(...)``, ``AVG(...)``, ``x * 1.0``) becomes
    float64; everything else (text, varchar, json, jsonb, uuid, interval, arrays, ...) is
    the text PostgreSQL prints for it.
    """
    native = _native_types().get(column.type_code)
    if native is not None:
        return native
    if column.type_code == _numeric_oid():
        precision, scale = column.precision, column.scale
        if precision is not None and scale is not None and 0 <= scale <= precision:
            if precision <= 38:
                return pa.decimal128(precision, scale)
            if precision <= 76:
                return pa.decimal256(precision, scale)
        return pa.float64()
    return pa.string()


def _column_array(values: Sequence[Any], field: pa.Field, from_text: bool, label: str) -> pa.Array:
    """One column of a batch as an Arrow array (numeric arrives as text and is cast by Arrow)."""
    if not from_text:
        return pa.array(values, type=field.type)
    try:
        return pa.array(values, type=pa.string()).cast(field.type)
    except pa.ArrowInvalid as e:
        raise TerminalStepError(
            f"column '{field.name}' holds a {label} numeric value that {field.type} cannot "
            f"hold (NaN or Infinity): {e}",
            hint=f"cast the column in the query, e.g. {field.name}::float8",
        ) from e


@dataclass(frozen=True)
class _ResultShape:
    """The Arrow schema of a result, and which columns arrive as text to be cast."""

    schema: pa.Schema
    from_text: tuple[bool, ...]

    @classmethod
    def of(cls, cursor: psycopg.Cursor) -> _ResultShape:
        description = cursor.description or []
        return cls(
            schema=pa.schema(
                [pa.field(column.name, arrow_type_of_column(column)) for column in description]
            ),
            from_text=tuple(column.type_code == _numeric_oid() for column in description),
        )

    def batch(self, rows: list[tuple[Any, ...]], label: str) -> pa.RecordBatch:
        """Rows as a record batch, built column by column."""
        columns = list(zip(*rows, strict=True))
        arrays = [
            _column_array(values, field, from_text, label)
            for values, field, from_text in zip(columns, self.schema, self.from_text, strict=True)
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


class _CancelGuard:
    """Tracks the time limit of one query and cancels it from the client when it overruns."""

    def __init__(self, connection: psycopg.Connection, timeout_seconds: float | None) -> None:
        self.timeout_seconds = timeout_seconds
        self.fired = threading.Event()
        self._connection = connection
        self._deadline = time.monotonic() + timeout_seconds if timeout_seconds else None
        self._timer: threading.Timer | None = None
        if timeout_seconds:
            self._timer = threading.Timer(timeout_seconds + _CLIENT_GRACE_SECONDS, self._cancel)
            self._timer.daemon = True

    def _cancel(self) -> None:
        self.fired.set()
        try:
            self._connection.cancel_safe(timeout=_CANCEL_WAIT_SECONDS)
        except psycopg.Error:
            pass  # the connection is closing; closing it ends the query as well

    def expired(self) -> bool:
        """Whether the time limit has passed."""
        return self.fired.is_set() or (
            self._deadline is not None and time.monotonic() >= self._deadline
        )

    def __enter__(self) -> _CancelGuard:
        if self._timer is not None:
            self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._timer is not None:
            self._timer.cancel()


class PostgresWarehouse(WarehouseResource):
    """A PostgreSQL database, queried in read-only sessions (unless ``allow_writes``).

    Connect with ``dsn`` (a libpq connection string or ``postgresql://`` URL) and/or the
    separate fields; a field that is set wins over the same part of the DSN. Write secrets as
    ``${VAR}`` (``dsn: "${PG_DSN}"``, ``password: "${PG_PASSWORD}"``, or inside a DSN) so that
    they are read only when a run opens the connection; they never appear in messages.

    Result types: see ``arrow_type_of_column``. Numeric values without a declared
    precision and scale (aggregates, arithmetic) arrive as float64, exact to about 15
    significant digits; cast them in SQL (``SUM(arr)::numeric(18,2)``) to get decimals.
    """

    dialect: ClassVar[str] = "postgres"
    kind: ClassVar[str] = "postgres"
    # Used in messages, and by subclasses to change the defaults.
    label: ClassVar[str] = "PostgreSQL"
    default_port: ClassVar[int] = 5432
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
        guard = _CancelGuard(connection, timeout_seconds)
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
        self, connection: psycopg.Connection, sql: str, guard: _CancelGuard
    ) -> pa.Table:
        fetch = _FETCH.format(rows=_FETCH_ROWS)
        with connection.cursor() as cursor:
            # Only SQL that sqlglot read as exactly one query gets here (_is_single_query).
            cursor.execute(_dynamic(_DECLARE + sql))
            shape: _ResultShape | None = None
            batches: list[pa.RecordBatch] = []
            while True:
                if guard.expired():
                    raise self._timeout_error(guard.timeout_seconds)
                cursor.execute(_dynamic(fetch))
                if shape is None:
                    shape = _ResultShape.of(cursor)
                rows = cursor.fetchall()
                if rows:
                    batches.append(shape.batch(rows, self.label))
                if len(rows) < _FETCH_ROWS:
                    return pa.Table.from_batches(batches, schema=shape.schema)

    def _execute(self, connection: psycopg.Connection, sql: str) -> pa.Table:
        with connection.cursor() as cursor:
            cursor.execute(_dynamic(sql))
            while cursor.nextset():
                pass  # several statements (allow_writes): the result is the last one's
            if cursor.description is None:
                return pa.table({})
            shape = _ResultShape.of(cursor)
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
        schema_name, table_name = self._table_name(name)
        target = (
            pg_sql.Identifier(schema_name, table_name)
            if schema_name
            else pg_sql.Identifier(table_name)
        )
        table = self._decoded(table)
        columns = pg_sql.SQL(", ").join(
            pg_sql.SQL("{} {}").format(
                pg_sql.Identifier(field.name), pg_sql.SQL(_dynamic(self._column_type(field)))
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

    def _table_name(self, name: str) -> tuple[str | None, str]:
        try:
            parsed = exp.to_table(name, dialect=self.dialect)
        except SqlglotError as e:
            raise PlaybookValidationError(
                f"cannot read '{name}' as a table name: {e}", hint="write schema.table"
            ) from e
        if parsed.catalog or not parsed.name:
            raise PlaybookValidationError(
                f"'{name}' is not a table name of the form schema.table",
                hint="leave out the database: the connection chooses it",
            )

        def folded(part: exp.Identifier | None) -> str | None:
            if part is None:
                return None
            # Unquoted names are folded to lower case, as the server folds them in queries.
            return part.name if part.quoted else part.name.lower()

        schema_part = parsed.args.get("db")
        table_part = parsed.this
        schema_name = folded(schema_part if isinstance(schema_part, exp.Identifier) else None)
        table_name = folded(table_part if isinstance(table_part, exp.Identifier) else None)
        return schema_name, table_name or parsed.name

    @staticmethod
    def _decoded(table: pa.Table) -> pa.Table:
        """Dictionary-encoded columns as their plain values."""
        for index, field in enumerate(table.schema):
            if pa.types.is_dictionary(field.type):
                plain = table.column(index).cast(field.type.value_type)
                table = table.set_column(index, field.name, plain)
        return table

    def _column_type(self, field: pa.Field) -> str:
        """The column type a field of an Arrow table is stored as."""
        arrow_type = field.type
        simple = {
            pa.bool_(): "boolean",
            pa.int8(): "smallint",
            pa.int16(): "smallint",
            pa.int32(): "integer",
            pa.int64(): "bigint",
            pa.uint8(): "smallint",
            pa.uint16(): "integer",
            pa.uint32(): "bigint",
            pa.uint64(): "numeric(20,0)",
            pa.float16(): "real",
            pa.float32(): "real",
            pa.float64(): "double precision",
            pa.date32(): "date",
            pa.date64(): "date",
            pa.null(): self._text_type(),
        }
        if arrow_type in simple:
            return simple[arrow_type]
        if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
            return self._text_type()
        if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
            return self._binary_type()
        if pa.types.is_decimal(arrow_type):
            return f"numeric({arrow_type.precision},{arrow_type.scale})"
        if pa.types.is_timestamp(arrow_type):
            return "timestamptz" if arrow_type.tz else "timestamp"
        if pa.types.is_time(arrow_type):
            return "time"
        raise TerminalStepError(
            f"column '{field.name}' has Arrow type {arrow_type}, which cannot be stored in "
            f"{self.label}",
            hint="cast it to text, a number, a date or a timestamp before loading",
        )

    def _text_type(self) -> str:
        return "text"

    def _binary_type(self) -> str:
        return "bytea"

    def _insert_rows(
        self, cursor: psycopg.Cursor, target: pg_sql.Composable, table: pa.Table
    ) -> None:
        """Fill the new table: ``COPY ... FROM STDIN`` of CSV that pyarrow writes."""
        names = pg_sql.SQL(", ").join(pg_sql.Identifier(name) for name in table.column_names)
        if any(
            pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type)
            for field in table.schema
        ):
            # CSV has no spelling for bytes: send rows as values instead (slower).
            statement = pg_sql.SQL("COPY {} ({}) FROM STDIN").format(target, names)
            with cursor.copy(statement) as copy:
                for row in _rows(table):
                    copy.write_row(row)
            return
        statement = pg_sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(target, names)
        options = pa_csv.WriteOptions(include_header=False)
        with cursor.copy(statement) as copy:
            for batch in table.to_batches(max_chunksize=50_000):
                buffer = io.BytesIO()
                pa_csv.write_csv(batch, buffer, options)
                copy.write(buffer.getvalue())

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
            connection = psycopg.connect(make_conninfo(**params), context=_result_adapters())
        except psycopg.Error as e:
            raise self._connect_error(e, params) from e
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

    def _connect_error(self, e: psycopg.Error, params: dict[str, Any]) -> Exception:
        reason = self._scrub(str(e).strip())
        lowered = reason.lower()
        where = self._where(params)
        if any(marker in lowered for marker in _TOO_MANY_CLIENTS):
            return TransientStepError(f"{where} has too many connections: {reason}")
        if any(marker in lowered for marker in _LOGIN_REFUSED):
            return TerminalStepError(
                f"{where} refused the connection: {reason}",
                hint="check user, password, database and sslmode of the connection",
            )
        return SourceUnreachableError(
            f"cannot connect to {where}: {reason}",
            hint="check host and port, and that the server is running and reachable",
        )

    def _timeout_error(self, timeout_seconds: float | None) -> StepTimeoutError:
        limit = f"{timeout_seconds:g} s" if timeout_seconds else "its time limit"
        return StepTimeoutError(
            f"the query ran longer than {limit} and was cancelled on the {self.label} server",
            hint=_TIMEOUT_HINT,
        )

    def _query_error(
        self,
        e: psycopg.Error,
        sql: str,
        offset: int,
        connection: psycopg.Connection,
        guard: _CancelGuard | None,
    ) -> Exception:
        """The product's error for a failure after connecting, classified by SQLSTATE."""
        state = e.sqlstate
        primary = self._scrub(e.diag.message_primary or str(e).strip())
        if guard is not None and (guard.fired.is_set() or state == _QUERY_CANCELED):
            if guard.fired.is_set() or "statement timeout" in primary:
                return self._timeout_error(guard.timeout_seconds)
        if state == _QUERY_CANCELED:
            return TransientStepError(
                f"{self.label} cancelled the query: {primary}",
                hint="an administrator or another session cancelled it; it will be retried",
            )
        if state in _TRANSIENT_STATES:
            return TransientStepError(f"{self.label} could not finish the query: {primary}")
        if state is not None and state.startswith("08"):
            return SourceUnreachableError(f"lost the connection to {self.label}: {primary}")
        if state is None and (isinstance(e, psycopg.OperationalError) or connection.broken):
            return TransientStepError(
                f"the connection to {self.label} was lost during the query: {primary}"
            )
        hint = e.diag.message_hint
        if state == _READ_ONLY_TRANSACTION:
            hint = _WRITE_HINT
        return TerminalStepError(
            self._located(f"{self.label} rejected the query", primary, e, sql, offset),
            hint=self._scrub(hint) if hint else None,
        )

    @staticmethod
    def _located(lead: str, primary: str, e: psycopg.Error, sql: str, offset: int) -> str:
        """The message with the line of ``sql`` the server's error position points at."""
        position = e.diag.statement_position
        if sql and position and position.isdigit():
            index = int(position) - 1 - offset
            if 0 <= index <= len(sql):
                line = sql.count("\n", 0, index) + 1
                text = sql.split("\n")[line - 1].strip()
                return f"{lead} at line {line} of the query: {primary} (line {line}: {text})"
        return f"{lead}: {primary}"


def _dynamic(text: str) -> LiteralString:
    """SQL text built at run time (rendered templates, type names from a fixed table).

    psycopg's types ask for literal strings to catch values formatted into SQL; the text
    here was rendered safely before it arrived (``playbook_assets.core.sql``).
    """
    return cast(LiteralString, text)


def _rows(table: pa.Table) -> Iterator[tuple[Any, ...]]:
    """The rows of ``table`` as tuples of Python values, a batch at a time."""
    for batch in table.to_batches(max_chunksize=10_000):
        yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)
