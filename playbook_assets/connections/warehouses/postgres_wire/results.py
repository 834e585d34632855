"""PostgreSQL results as Arrow: each column's type from its type OID, and rows made into record
batches column by column (numeric arrives as text and is cast by Arrow: no Decimal objects)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pyarrow as pa
from psycopg.adapt import AdaptersMap
from psycopg.types.string import TextLoader

from playbook_assets.core.errors import TerminalStepError


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
def result_adapters() -> AdaptersMap:
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
class ResultShape:
    """The Arrow schema of a result, and which columns arrive as text to be cast."""

    schema: pa.Schema
    from_text: tuple[bool, ...]

    @classmethod
    def of(cls, cursor: psycopg.Cursor) -> ResultShape:
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
