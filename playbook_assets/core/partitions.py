"""Playbook partitions as Dagster partitions, and the ``${partition.*}`` values of a run.

``${partition.key}`` is the partition key; for time partitions ``${partition.start}`` (first
day, inclusive) and ``${partition.end}`` (the day after the last, exclusive) are dates, so a
query reads ``WHERE day >= {{start}} AND day < {{end}}``. With two dimensions each one's key
is ``${partition.<dimension>}``, and start/end come from the time dimension if there is one.
A run over a range of partitions (a single-run backfill) gives each partition what a run of
that partition alone would: see ``run_units`` and ``split_by_partition``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from playbook_assets.core.errors import (
    PlaybookValidationError,
    TerminalStepError,
    unknown_name_hint,
)
from playbook_assets.core.spec import (
    DynamicPartitions,
    MultiPartitions,
    PartitionsSpec,
    StaticPartitions,
    TimePartitions,
)


def _single(spec: TimePartitions | StaticPartitions | DynamicPartitions) -> dg.PartitionsDefinition:
    if isinstance(spec, StaticPartitions):
        return dg.StaticPartitionsDefinition(spec.values)
    if isinstance(spec, DynamicPartitions):
        return dg.DynamicPartitionsDefinition(name=spec.name)
    kinds: dict[str, Any] = {
        "daily": dg.DailyPartitionsDefinition,
        "weekly": dg.WeeklyPartitionsDefinition,
        "monthly": dg.MonthlyPartitionsDefinition,
    }
    return kinds[spec.type](
        start_date=spec.start, timezone=spec.timezone, end_offset=spec.end_offset
    )


def partitions_definition(spec: PartitionsSpec | None) -> dg.PartitionsDefinition | None:
    """The Dagster partitions of a playbook's assets (None when it is not partitioned)."""
    if spec is None:
        return None
    if isinstance(spec, MultiPartitions):
        return dg.MultiPartitionsDefinition(
            {name: _single(dimension) for name, dimension in spec.dimensions.items()}
        )
    return _single(spec)


def backfill_policy(spec: PartitionsSpec | None) -> dg.BackfillPolicy | None:
    """One run per partition (Dagster's default) or one run for the whole range."""
    if spec is not None and spec.backfill == "single_run":
        return dg.BackfillPolicy.single_run()
    return None


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


def run_units(
    context: dg.AssetExecutionContext, spec: PartitionsSpec | None
) -> list[PartitionUnit]:
    """The partitions the running op covers, each on its own: one for an unpartitioned
    playbook or a one-partition run, one per partition for a run over a range (a single-run
    backfill), so that each partition gets exactly what a run of it alone would give."""
    if spec is None:
        return [PartitionUnit(None, None)]
    if context.has_partition_key:
        key = context.partition_key
        values: dict[str, Any] = {"key": str(key)}
        if isinstance(spec, MultiPartitions) and isinstance(key, dg.MultiPartitionKey):
            values.update(key.keys_by_dimension)
        window = None
        if has_time(spec):
            time_window = context.partition_time_window
            window = (time_window.start, time_window.end)
            values["start"], values["end"] = _as_date(window[0]), _as_date(window[1])
        return [PartitionUnit(str(key), values, window)]
    definition = partitions_definition(spec)
    if isinstance(spec, MultiPartitions):
        raise PlaybookValidationError(
            "a run over a range of two-dimensional partitions is not supported",
            hint="launch one run per partition",
        )
    units: list[PartitionUnit] = []
    for key in context.partition_keys:
        values = {"key": key}
        window = None
        if isinstance(definition, dg.TimeWindowPartitionsDefinition):
            time_window = definition.time_window_for_partition_key(key)
            window = (time_window.start, time_window.end)
            values["start"], values["end"] = _as_date(window[0]), _as_date(window[1])
        units.append(PartitionUnit(key, values, window))
    return units


def range_values(units: Sequence[PartitionUnit]) -> dict[str, Any]:
    """``${partition.start}``/``${partition.end}`` of a whole range of time partitions: the
    first one's start and the last one's end (a step that declares ``partition_column`` reads
    the range once and its result is split per partition)."""
    first, last = units[0].window, units[-1].window
    assert first is not None and last is not None
    return {"start": _as_date(first[0]), "end": _as_date(last[1])}


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
        if _as_date(moment) != moment.date():
            raise TerminalStepError(
                "the partitions do not start at midnight, so a date column cannot place rows",
                hint="use a timestamp column as partition_column",
            )
        return pa.scalar(moment.date(), kind)
    assert isinstance(kind, pa.TimestampType)
    if kind.tz is None:  # wall-clock time in the partitions' time zone
        return pa.scalar(moment.replace(tzinfo=None), kind)
    return pa.scalar(moment, kind)


def _as_date(moment: dt.datetime) -> dt.date | dt.datetime:
    # Day, week and month boundaries are midnights: dates read naturally in SQL.
    if (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0):
        return moment.date()
    return moment
