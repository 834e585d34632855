"""Schedules and sensors declared in playbooks, and the run request folder.

- ``schedule:`` becomes a Dagster schedule; a partitioned playbook's schedule runs its latest
  complete time partition (crossed with every key of a second, non-time dimension).
- ``triggers: [{type: file}]`` runs the playbook for each new or changed file matching a glob
  (the file's path can be a parameter; with dynamic partitions the file's name becomes a new
  partition); ``{type: asset}`` runs it when another playbook's step or output is materialized.
- The request folder (``requests.directory`` in the config) lets another system start a run by
  dropping ``{"playbook_id": ..., "parameters": {...}, "partition": ...}`` as a JSON or YAML
  file (written to a dot-file or ``*.tmp``, then renamed into place); each request is
  validated on its own, then moved to ``accepted/`` (its run is requested) or ``rejected/``
  (with the reason in ``<name>.error.txt``), so none is lost silently.
"""

from __future__ import annotations

import errno
import glob
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from playbook_assets.core.artifacts import atomic_write_bytes
from playbook_assets.core.catalog import LoadedPlaybook, PlaybookCatalog
from playbook_assets.core.errors import PlaybookError, PlaybookValidationError
from playbook_assets.core.spec import (
    AssetTrigger,
    DynamicPartitions,
    FileTrigger,
    MultiPartitions,
    PlaybookSpec,
    TimePartitions,
)
from playbook_assets.core.yaml_source import DEFAULT_LIMITS, YamlLimitError, YamlLimits, load_yaml
from playbook_assets.dagster_adapter.partitions import partitions_definition
from playbook_assets.dagster_adapter.run_config import ASSET_JOB, playbook_run_request
from playbook_assets.dagster_adapter.stale_runs import reap_dead_runs

REQUEST_SUFFIXES = (".json", ".yaml", ".yml")
# An unknown key of a request is named in its rejection only when it is a plain name.
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


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


def playbook_schedule(loaded: LoadedPlaybook) -> dg.ScheduleDefinition | None:
    """The playbook's schedule, if it declares one."""
    spec = loaded.spec
    schedule = spec.schedule
    if schedule is None:
        return None

    def evaluate(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest | dg.SkipReason]:
        if spec.partitions is None:
            yield playbook_run_request(spec, schedule.parameters)
            return
        keys = latest_partition_keys(spec, context.instance, context.scheduled_execution_time)
        if not keys:
            yield dg.SkipReason("no complete partition yet")
            return
        for key in keys:
            yield playbook_run_request(spec, schedule.parameters, partition_key=key)

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


def playbook_sensors(loaded: LoadedPlaybook) -> list[dg.SensorDefinition]:
    """The playbook's triggers as sensors."""
    sensors: list[dg.SensorDefinition] = []
    for index, trigger in enumerate(loaded.spec.triggers):
        if isinstance(trigger, FileTrigger):
            sensors.append(file_sensor(loaded, trigger, index))
        else:
            sensors.append(asset_sensor(loaded, trigger, index))
    return sensors


def file_sensor(loaded: LoadedPlaybook, trigger: FileTrigger, index: int) -> dg.SensorDefinition:
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


def asset_sensor(loaded: LoadedPlaybook, trigger: AssetTrigger, index: int) -> dg.SensorDefinition:
    """Runs the playbook when another playbook's step or output is materialized."""
    spec = loaded.spec
    key = dg.AssetKey(trigger.asset.split("/"))
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
        )

    return after


def read_request(path: Path, limits: YamlLimits = DEFAULT_LIMITS) -> Mapping[str, Any]:
    """A run request file's content, read safely from a folder anyone may write to.

    A symbolic link is refused, never followed (``O_NOFOLLOW``), so a request cannot make the
    sensor read a file outside the folder; only a regular file is read, and only up to
    ``limits.max_file_bytes``; nesting and aliases are bounded as in playbooks. No error
    repeats what the file holds beyond its playbook id, parameters and partition: a syntax
    error gives its line only, an unknown key its name only when it is a plain name.
    """
    name = path.name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise PlaybookValidationError(
                "the request is a symbolic link, which is refused",
                hint="write the request itself into the folder (to a dot-file, then rename it)",
            ) from None
        raise PlaybookValidationError(f"cannot read the request: {e.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise PlaybookValidationError("the request is not a regular file")
        if status.st_size > limits.max_file_bytes:
            raise PlaybookValidationError(
                f"the request is {status.st_size:,} bytes, over the limit of "
                f"{limits.max_file_bytes:,} (limits.max_file_bytes)"
            )
        raw = handle.read(limits.max_file_bytes + 1)
    if len(raw) > limits.max_file_bytes:
        raise PlaybookValidationError(
            f"the request grew past the limit of {limits.max_file_bytes:,} bytes "
            "(limits.max_file_bytes) while it was read"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PlaybookValidationError("the request is not UTF-8 text") from None
    try:
        data = load_yaml(text, name, limits).data
    except PlaybookValidationError as e:
        raise _content_free(e) from None
    if not isinstance(data, dict):
        raise PlaybookValidationError(
            "a request is a mapping with playbook_id and parameters",
            hint='e.g. {"playbook_id": "segment_analysis", "parameters": {"segment": "smb"}}',
        )
    unknown = sorted(str(key) for key in set(data) - {"playbook_id", "parameters", "partition"})
    if unknown:
        shown = f"'{unknown[0]}'" if _PLAIN_KEY.fullmatch(unknown[0]) else "(not a plain name)"
        raise PlaybookValidationError(
            f"unknown key {shown} in the request",
            hint="a request has playbook_id, parameters and (optionally) partition",
        )
    if not isinstance(data.get("playbook_id"), str):
        raise PlaybookValidationError("the request has no playbook_id")
    if not isinstance(data.get("parameters") or {}, dict):
        raise PlaybookValidationError("the request's parameters must be a mapping")
    return data


def _content_free(error: PlaybookValidationError) -> PlaybookValidationError:
    """A load error of a request without the text of the file: its line, and which limit."""
    line = error.location.line if error.location is not None else None
    if isinstance(error, YamlLimitError):
        # The limit messages are the loader's own words, never the file's.
        return PlaybookValidationError(
            f"the request breaks a limit at line {line}: {error.message}"
        )
    return PlaybookValidationError(
        "the request is not valid JSON or YAML" + (f" (line {line})" if line else ""),
        hint="check it with a JSON or YAML parser",
    )


def validate_request(
    data: Mapping[str, Any], catalog: PlaybookCatalog, instance: dg.DagsterInstance
) -> dg.RunRequest:
    """The run request for a valid request; raises PlaybookError for an invalid one."""
    loaded = catalog.get(str(data["playbook_id"]))
    spec = loaded.spec
    partition = data.get("partition")
    request = playbook_run_request(
        spec,
        data.get("parameters") or {},
        partition_key=str(partition) if partition is not None else None,
    )
    partitions = partitions_definition(spec.partitions)
    if partitions is not None:
        if partition is None:
            raise PlaybookValidationError(f"playbook '{spec.id}' is partitioned: give a partition")
        if str(partition) not in partitions.get_partition_keys(dynamic_partitions_store=instance):
            raise PlaybookValidationError(f"'{partition}' is not a partition of '{spec.id}'")
    elif partition is not None:
        raise PlaybookValidationError(f"playbook '{spec.id}' has no partitions")
    return request


def request_sensor(
    catalog: PlaybookCatalog,
    folder: Path,
    interval_seconds: int,
    limits: YamlLimits = DEFAULT_LIMITS,
) -> dg.SensorDefinition:
    """Validates and launches run requests dropped in ``folder``.

    Writers put a request in place complete: they write it to a name starting with ``.`` or
    ending in ``.tmp``, then rename it to ``NAME.json`` / ``.yaml`` / ``.yml`` (a rename
    within a folder is atomic). Names starting with ``.`` and other suffixes are ignored.
    Each file is handled on its own: a bad one is moved to ``rejected/`` with its reason and
    never stops the others.
    """

    @dg.sensor(
        name="playbook_requests",
        job_name=ASSET_JOB,
        minimum_interval_seconds=interval_seconds,
        description=f"Starts runs requested by files dropped in {folder}.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def requests_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        run_requests: list[dg.RunRequest] = []
        if not folder.is_dir():
            return dg.SensorResult(skip_reason=f"{folder} does not exist")
        for path in request_files(folder):
            try:
                stamp = path.lstat().st_mtime_ns
                request = validate_request(read_request(path, limits), catalog, context.instance)
            except FileNotFoundError:
                continue  # taken by another evaluation meanwhile
            except Exception as e:
                reason = str(e) if isinstance(e, PlaybookError) else _unexpected(e)
                context.log.error(f"run request {path.name} rejected: {reason}")
                _move(path, folder / "rejected", reason=reason)
                continue
            run_requests.append(
                request.with_replaced_attrs(
                    run_key=f"{path.name}:{stamp}",
                    tags={**request.tags, "playbook/request": path.name},
                )
            )
            _move(path, folder / "accepted")
        return dg.SensorResult(run_requests=run_requests)

    return requests_sensor


def request_files(folder: Path) -> list[Path]:
    """The requests to read in ``folder``: entries named ``*.json``, ``*.yaml`` or ``*.yml``
    not starting with ``.`` (files being written by the protocol above), sorted by name.
    Links and other non-regular entries are listed too, so that they are rejected visibly."""
    with os.scandir(folder) as entries:
        names = [
            entry.name
            for entry in entries
            if not entry.name.startswith(".")
            and entry.name.lower().endswith(REQUEST_SUFFIXES)
            and not entry.is_dir(follow_symlinks=False)
        ]
    return [folder / name for name in sorted(names)]


def _unexpected(error: Exception) -> str:
    # The type only: the message of an unexpected error may quote the file.
    return f"unexpected error while reading the request ({type(error).__name__}); see the logs"


def _move(path: Path, target: Path, *, reason: str | None = None) -> None:
    """Move a request (a link itself, never what it points to) into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    if reason is not None:
        atomic_write_bytes(target / f"{path.name}.error.txt", (reason + "\n").encode())
    os.replace(path, target / path.name)


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
