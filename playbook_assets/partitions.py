"""Playbook partitions as Dagster partitions, and the ``${partition.*}`` values of a run.

``${partition.key}`` is the partition key; for time partitions ``${partition.start}`` (first
day, inclusive) and ``${partition.end}`` (the day after the last, exclusive) are dates, so a
query reads ``WHERE day >= {{start}} AND day < {{end}}``. With two dimensions each one's key
is ``${partition.<dimension>}``, and start/end come from the time dimension if there is one.
A single-run backfill gets the whole range: start of the first partition, end of the last.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dagster as dg

from playbook_assets.spec import (
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


def partition_values(
    context: dg.AssetExecutionContext, spec: PartitionsSpec | None
) -> dict[str, Any] | None:
    """The ``${partition.*}`` values of the running step."""
    if spec is None:
        return None
    values: dict[str, Any] = {}
    if context.has_partition_key:
        key = context.partition_key
        values["key"] = str(key)
        if isinstance(spec, MultiPartitions) and isinstance(key, dg.MultiPartitionKey):
            values.update(key.keys_by_dimension)
    else:
        key_range = context.partition_key_range
        values["key"] = f"{key_range.start}...{key_range.end}"
    if has_time(spec):
        window = context.partition_time_window
        values["start"] = _as_date(window.start)
        values["end"] = _as_date(window.end)
    return values


def _as_date(moment: dt.datetime) -> dt.date | dt.datetime:
    # Day, week and month boundaries are midnights: dates read naturally in SQL.
    if (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0):
        return moment.date()
    return moment
