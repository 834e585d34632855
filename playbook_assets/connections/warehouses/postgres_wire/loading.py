"""Loading an Arrow table into a server speaking PostgreSQL's protocol: the table's name, each
column's type, and the rows sent with ``COPY ... FROM STDIN``."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg import sql as pg_sql
from sqlglot import exp
from sqlglot.errors import SqlglotError

from playbook_assets.core.errors import PlaybookValidationError, TerminalStepError


def table_name(name: str, dialect: str) -> tuple[str | None, str]:
    """``schema.table`` or ``table`` as the server names it (unquoted parts folded to lower
    case, as the server folds them in queries)."""
    try:
        parsed = exp.to_table(name, dialect=dialect)
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


def decoded(table: pa.Table) -> pa.Table:
    """Dictionary-encoded columns as their plain values."""
    for index, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            plain = table.column(index).cast(field.type.value_type)
            table = table.set_column(index, field.name, plain)
    return table


def column_type(field: pa.Field, *, text: str, binary: str, label: str) -> str:
    """The column type a field of an Arrow table is stored as (``text`` and ``binary``: the
    server's types for strings and bytes)."""
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
        pa.null(): text,
    }
    if arrow_type in simple:
        return simple[arrow_type]
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return text
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return binary
    if pa.types.is_decimal(arrow_type):
        return f"numeric({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz else "timestamp"
    if pa.types.is_time(arrow_type):
        return "time"
    raise TerminalStepError(
        f"column '{field.name}' has Arrow type {arrow_type}, which cannot be stored in {label}",
        hint="cast it to text, a number, a date or a timestamp before loading",
    )


def copy_rows(cursor: psycopg.Cursor, target: pg_sql.Composable, table: pa.Table) -> None:
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


def _rows(table: pa.Table) -> Iterator[tuple[Any, ...]]:
    """The rows of ``table`` as tuples of Python values, a batch at a time."""
    for batch in table.to_batches(max_chunksize=10_000):
        yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)
