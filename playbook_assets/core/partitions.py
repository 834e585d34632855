"""The ``${partition.*}`` values of a run, and splitting a range's result per partition.

``${partition.key}`` is the partition key; for time partitions ``${partition.start}`` (first
day, inclusive) and ``${partition.end}`` (the day after the last, exclusive) are dates, so a
query reads ``WHERE day >= {{start}} AND day < {{end}}``. With two dimensions each one's key
is ``${partition.<dimension>}``, and start/end come from the time dimension if there is one.
A run over a range of partitions (a single-run backfill) gives each partition what a run of
that partition alone would: see ``PartitionUnit`` and ``split_by_partition``; the Dagster
adapter's ``partitions`` module makes Dagster partitions of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from playbook_assets.core.errors import TerminalStepError, unknown_name_hint
from playbook_assets.core.spec import MultiPartitions, PartitionsSpec, TimePartitions


def has_time(spec: PartitionsSpec | None) -> bool:
    """Whether the partitions have a time dimension (so start and end exist)."""
    if isinstance(spec, MultiPartitions):
        return any(isinstance(d, TimePartitions) for d in spec.dimensions.values())
    return isinstance(spec, TimePartitions)


def reference_names(spec: PartitionsSpec | None) -> list[str]:
    """The names valid after ``${partition.``."""
    if spec is None:
        return []
    names = ["key"]
    if has_time(spec):
        names += ["start", "end"]
    if isinstance(spec, MultiPartitions):
        names += list(spec.dimensions)
    return names


@dataclass(frozen=True)
class PartitionUnit:
    """One partition a run covers (or the whole of an unpartitioned playbook: ``key`` None),
    with its ``${partition.*}`` values and, for time partitions, its window."""

    key: str | None
    values: dict[str, Any] | None
    window: tuple[dt.datetime, dt.datetime] | None = None


def range_values(units: Sequence[PartitionUnit]) -> dict[str, Any]:
    """``${partition.start}``/``${partition.end}`` of a whole range of time partitions: the
    first one's start and the last one's end (a step that declares ``partition_column`` reads
    the range once and its result is split per partition)."""
    first, last = units[0].window, units[-1].window
    assert first is not None and last is not None
    return {"start": window_value(first[0]), "end": window_value(last[1])}


def split_by_partition(
    table: pa.Table, column: str, units: Sequence[PartitionUnit]
) -> dict[str, pa.Table]:
    """A result over a range of time partitions as one table per partition: the rows whose
    ``column`` (a date or timestamp) falls in that partition's window. A row outside every
    window, or with no value, is an error: it would belong to no partition."""
    if column not in table.column_names:
        raise TerminalStepError(
            f"partition_column '{column}' is not a column of the result",
            hint=unknown_name_hint(column, table.column_names, "column"),
        )
    values = table.column(column)
    kind = values.type
    if not (pa.types.is_date(kind) or pa.types.is_timestamp(kind)):
        raise TerminalStepError(
            f"partition_column '{column}' is a {kind} column, not a date or timestamp",
            hint="choose the date or timestamp column that places each row in a partition",
        )
    parts: dict[str, pa.Table] = {}
    placed = 0
    for unit in units:
        assert unit.key is not None and unit.window is not None
        start, end = (_bound(moment, kind) for moment in unit.window)
        # pyarrow's generated compute wrappers are invisible to type checkers.
        after_start = pc.call_function("greater_equal", [values, start])
        before_end = pc.call_function("less", [values, end])
        inside = pc.call_function("and_kleene", [after_start, before_end])
        parts[unit.key] = table.filter(pc.fill_null(inside, False))
        placed += parts[unit.key].num_rows
    if placed != table.num_rows:
        first, last = units[0].window, units[-1].window
        assert first is not None and last is not None
        raise TerminalStepError(
            f"{table.num_rows - placed} of {table.num_rows} rows have a '{column}' outside "
            f"the partitions of the run ({first[0].isoformat()} to {last[1].isoformat()}) or "
            "no value, so they belong to no partition",
            hint="filter the query on the partition window (${partition.start}, "
            "${partition.end}) by that column",
        )
    return parts


def _bound(moment: dt.datetime, kind: pa.DataType) -> pa.Scalar:
    """A window boundary as a scalar comparable with a column of type ``kind``."""
    if pa.types.is_date(kind):
        if window_value(moment) != moment.date():
            raise TerminalStepError(
                "the partitions do not start at midnight, so a date column cannot place rows",
                hint="use a timestamp column as partition_column",
            )
        return pa.scalar(moment.date(), kind)
    assert isinstance(kind, pa.TimestampType)
    if kind.tz is None:  # wall-clock time in the partitions' time zone
        return pa.scalar(moment.replace(tzinfo=None), kind)
    return pa.scalar(moment, kind)


def window_value(moment: dt.datetime) -> dt.date | dt.datetime:
    """A partition window's boundary as ``${partition.start}``/``end`` give it: a date at
    midnight (day, week and month boundaries; dates read naturally in SQL), else the moment."""
    if (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0):
        return moment.date()
    return moment
