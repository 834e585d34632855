"""Schedules and sensors declared in playbooks, and the sensor of runs whose process died.

- ``schedule:`` becomes a Dagster schedule; a partitioned playbook's schedule runs its latest
  complete time partition (crossed with every key of a second, non-time dimension).
- ``triggers: [{type: file}]`` runs the playbook for each new or changed file matching a glob
  (the file's path can be a parameter; with dynamic partitions the file's name becomes a new
  partition); ``{type: asset}`` runs it when another playbook's step or output is materialized.
- The run request folder's sensor is in ``request_folder``.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from playbook_assets.core.catalog import LoadedPlaybook
from playbook_assets.core.spec import (
    AssetTrigger,
    DynamicPartitions,
    FileTrigger,
    MultiPartitions,
    PlaybookSpec,
    TimePartitions,
)
from playbook_assets.dagster_adapter.partitions import partitions_definition
from playbook_assets.dagster_adapter.run_config import (
    ASSET_JOB,
    AssetKeys,
    asset_key,
    playbook_run_request,
)
from playbook_assets.dagster_adapter.stale_runs import reap_dead_runs

REQUEST_SUFFIXES = (".json", ".yaml", ".yml")
# An unknown key of a request is named in its rejection only when it is a plain name.


def latest_partition_keys(
    spec: PlaybookSpec, instance: dg.DagsterInstance, current_time: Any
) -> list[str] | None:
    """The partitions a scheduled or triggered run covers; None when not partitioned."""
    definition = spec.partitions
    partitions = partitions_definition(definition)
    if definition is None or partitions is None:
        return None
    if isinstance(definition, TimePartitions):
        keys = partitions.get_partition_keys(current_time=current_time)
        return [keys[-1]] if keys else []
    if isinstance(definition, MultiPartitions):
        assert isinstance(partitions, dg.MultiPartitionsDefinition)
        keys_by_dimension: dict[str, list[str]] = {}
        for dimension in partitions.partitions_defs:
            definition_of = dimension.partitions_def
            if isinstance(definition_of, dg.TimeWindowPartitionsDefinition):
                keys = definition_of.get_partition_keys(current_time=current_time)
                keys_by_dimension[dimension.name] = [keys[-1]] if keys else []
            else:
                keys_by_dimension[dimension.name] = list(
                    definition_of.get_partition_keys(dynamic_partitions_store=instance)
                )
        (first, first_keys), (second, second_keys) = keys_by_dimension.items()
        return [
            str(dg.MultiPartitionKey({first: a, second: b}))
            for a in first_keys
            for b in second_keys
        ]
    return list(partitions.get_partition_keys(dynamic_partitions_store=instance))


def playbook_schedule(
    loaded: LoadedPlaybook, asset_keys: AssetKeys = asset_key
) -> dg.ScheduleDefinition | None:
    """The playbook's schedule, if it declares one."""
    spec = loaded.spec
    schedule = spec.schedule
    if schedule is None:
        return None

    def evaluate(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest | dg.SkipReason]:
        if spec.partitions is None:
            yield playbook_run_request(spec, schedule.parameters, keys=asset_keys)
            return
        keys = latest_partition_keys(spec, context.instance, context.scheduled_execution_time)
        if not keys:
            yield dg.SkipReason("no complete partition yet")
            return
        for key in keys:
            yield playbook_run_request(
                spec, schedule.parameters, partition_key=key, keys=asset_keys
            )

    return dg.ScheduleDefinition(
        name=f"{spec.id}_schedule",
        cron_schedule=schedule.cron,
        execution_timezone=schedule.timezone,
        job_name=ASSET_JOB,
        execution_fn=evaluate,
        description=f"Runs {spec.name} ({schedule.cron}, {schedule.timezone}).",
        default_status=(
            dg.DefaultScheduleStatus.RUNNING
            if schedule.enabled
            else dg.DefaultScheduleStatus.STOPPED
        ),
    )


def playbook_sensors(
    loaded: LoadedPlaybook, asset_keys: AssetKeys = asset_key
) -> list[dg.SensorDefinition]:
    """The playbook's triggers as sensors."""
    sensors: list[dg.SensorDefinition] = []
    for index, trigger in enumerate(loaded.spec.triggers):
        if isinstance(trigger, FileTrigger):
            sensors.append(file_sensor(loaded, trigger, index, asset_keys))
        else:
            sensors.append(asset_sensor(loaded, trigger, index, asset_keys))
    return sensors


def file_sensor(
    loaded: LoadedPlaybook, trigger: FileTrigger, index: int, asset_keys: AssetKeys = asset_key
) -> dg.SensorDefinition:
    """Runs the playbook once per new or changed file matching the trigger's glob."""
    spec = loaded.spec
    pattern = str(loaded.path.parent / trigger.path)
    dynamic = spec.partitions if isinstance(spec.partitions, DynamicPartitions) else None

    @dg.sensor(
        name=f"{spec.id}_file_trigger_{index}",
        job_name=ASSET_JOB,
        minimum_interval_seconds=trigger.interval_seconds,
        description=f"Runs {spec.name} for each new or changed file matching {trigger.path}.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def watch(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        current: dict[str, str] = {}
        requests: list[dg.RunRequest] = []
        new_partitions: list[str] = []
        for path in sorted(glob.glob(pattern)):
            stat = os.stat(path)
            stamp = f"{stat.st_mtime_ns}:{stat.st_size}"
            current[path] = stamp
            if seen.get(path) == stamp:
                continue
            given = {trigger.parameter: path} if trigger.parameter else {}
            partition_key: str | None = None
            if dynamic is not None:
                partition_key = Path(path).stem
                new_partitions.append(partition_key)
            else:
                keys = latest_partition_keys(spec, context.instance, None)
                partition_key = keys[-1] if keys else None
            requests.append(
                playbook_run_request(
                    spec,
                    given,
                    run_key=f"{path}:{stamp}",
                    partition_key=partition_key,
                    tags={"playbook/trigger_file": path},
                    keys=asset_keys,
                )
            )
        dynamic_requests = (
            [dg.DynamicPartitionsDefinition(name=dynamic.name).build_add_request(new_partitions)]
            if dynamic is not None and new_partitions
            else []
        )
        return dg.SensorResult(
            run_requests=requests,
            cursor=json.dumps(current, sort_keys=True),
            dynamic_partitions_requests=dynamic_requests,
        )

    return watch


def asset_sensor(
    loaded: LoadedPlaybook, trigger: AssetTrigger, index: int, asset_keys: AssetKeys = asset_key
) -> dg.SensorDefinition:
    """Runs the playbook when another playbook's step or output is materialized."""
    spec = loaded.spec
    key = asset_keys(*trigger.asset.split("/"))
    own_partitions = partitions_definition(spec.partitions)

    @dg.asset_sensor(
        asset_key=key,
        job_name=ASSET_JOB,
        name=f"{spec.id}_asset_trigger_{index}",
        description=f"Runs {spec.name} after {trigger.asset} is materialized.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def after(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry) -> Any:
        event = asset_event.dagster_event
        partition = event.partition if event is not None else None
        partition_key: str | None = None
        if own_partitions is not None:
            valid = partition is not None and partition in own_partitions.get_partition_keys(
                dynamic_partitions_store=context.instance
            )
            if valid:
                partition_key = partition
            else:
                keys = latest_partition_keys(spec, context.instance, None)
                if not keys:
                    return dg.SkipReason("no partition of this playbook matches")
                partition_key = keys[-1]
        return playbook_run_request(
            spec,
            {},
            run_key=f"{trigger.asset}:{asset_event.run_id}:{partition}",
            partition_key=partition_key,
            tags={"playbook/triggered_by": trigger.asset},
            keys=asset_keys,
        )

    return after


def stale_runs_sensor(interval_seconds: int = 60) -> dg.SensorDefinition:
    """Marks failed the runs of ``playbook`` commands killed on this host (see
    ``stale_runs``), so they stop holding the run queue even when no command runs."""

    @dg.sensor(
        name="playbook_stale_runs",
        minimum_interval_seconds=interval_seconds,
        description="Marks failed the runs whose `playbook run` process was killed, and frees "
        "their concurrency slots.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def stale_runs(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        reaped = reap_dead_runs(context.instance)
        for run_id in reaped:
            context.log.warning(f"run {run_id}: its process was killed; marked as failed")
        return dg.SkipReason(f"marked {len(reaped)} runs of killed processes as failed")

    return stale_runs
