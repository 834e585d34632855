"""Playbook partitions as Dagster partitions, and the partitions a running op covers."""

from __future__ import annotations

from typing import Any

import dagster as dg

from playbook_assets.core.errors import PlaybookValidationError
from playbook_assets.core.partitions import PartitionUnit, has_time, window_value
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
            values["start"], values["end"] = window_value(window[0]), window_value(window[1])
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
            values["start"], values["end"] = window_value(window[0]), window_value(window[1])
        units.append(PartitionUnit(key, values, window))
    return units
