"""Playbook -> Dagster definitions.

Each playbook is one subsettable multi-asset (one op, named after the playbook): an asset per
step keyed ``[playbook_id, step_id]``, an asset per output ``[playbook_id, output_name]`` and a
``run_report`` asset, all in group ``playbook_id``, with the step dependencies as lineage. The
op's config is the playbook's typed parameters with their defaults filled in (the launchpad
shows them). What the op does when it runs is in ``playbook_op``.

There is no job per playbook: a playbook runs in Dagster's implicit asset job with its assets
selected (``run_config.playbook_run_request``), which keeps loading linear in the number of
playbooks (a job per playbook made each job's config schema carry every playbook's). Broken
playbooks appear as an asset carrying their error, in their own group.
"""

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from playbook_assets.connections.registry import build_resource, connection_type, resource_class
from playbook_assets.core.artifacts import ArtifactIOManager
from playbook_assets.core.catalog import BrokenPlaybook, LoadedPlaybook, PlaybookCatalog
from playbook_assets.core.checks import check_specs
from playbook_assets.core.config import ExecutorConfig
from playbook_assets.core.errors import PlaybookValidationError, unknown_name_hint
from playbook_assets.core.execution import RunSettings
from playbook_assets.core.parameters import coerce_parameter
from playbook_assets.core.partitions import backfill_policy, partitions_definition
from playbook_assets.core.report import build_report
from playbook_assets.core.run_records import (
    iter_runs,
    manifest_file,
    prune_runs,
    run_artifacts,
    write_run_record,
)
from playbook_assets.core.spec import (
    AnyStep,
    FileStep,
    GraphQLStep,
    OutputSpec,
    ParameterSpec,
    PlaybookSpec,
    RequestStep,
)
from playbook_assets.dagster_adapter.automation import (
    playbook_schedule,
    playbook_sensors,
    request_sensor,
    stale_runs_sensor,
)
from playbook_assets.dagster_adapter.dagster_runs import (
    TAG_SAVE_ARTIFACTS,
    failure_message,
    outcome_of_ended_run,
    playbooks_of_run,
    run_info_of,
)
from playbook_assets.dagster_adapter.playbook_op import PlaybookPlan, run_playbook_op
from playbook_assets.dagster_adapter.run_config import (
    REPORT_ASSET,
    TAG_PLAYBOOK,
    asset_key,
    parameter_config_type,
    to_config_value,
)

PRUNE_JOB = "artifacts_prune"

Step = AnyStep


@dataclass(frozen=True)
class FactoryOptions:
    """Choices made per run or per deployment rather than in the playbook."""

    data_warehouse: str | None = None
    crm: str | None = None
    save_artifacts: bool = True


def connection_resource_key(name: str) -> str:
    """Resource key of a named connection."""
    return f"connection_{name}"


def effective_connections(config: ExecutorConfig, options: FactoryOptions) -> tuple[str, str]:
    """The default warehouse and CRM for this build, after command-line overrides."""
    warehouse = options.data_warehouse or config.defaults.data_warehouse
    crm = options.crm or config.defaults.crm
    for name, category, flag in (
        (warehouse, "data_warehouse", "--data-warehouse"),
        (crm, "crm", "--crm"),
    ):
        if name not in config.connections:
            raise PlaybookValidationError(
                f"{flag} names unknown connection '{name}'",
                hint=unknown_name_hint(name, config.connections, "connection"),
            )
        actual = connection_type(config.connections[name]).category
        if actual != category:
            raise PlaybookValidationError(
                f"{flag} names connection '{name}', which is a {actual.replace('_', ' ')}"
            )
    return warehouse, crm


def build_definitions(
    catalog: PlaybookCatalog,
    config: ExecutorConfig,
    options: FactoryOptions | None = None,
    only: Sequence[str] | None = None,
) -> dg.Definitions:
    """Dagster definitions for the catalog's playbooks (all, or those in ``only``)."""
    options = options or FactoryOptions()
    warehouse, crm = effective_connections(config, options)
    selected = [catalog.playbooks[pid] for pid in (only or sorted(catalog.playbooks))]
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = []
    resources: dict[str, Any] = {}
    used_connections: set[str] = set()
    for loaded in selected:
        plan = PlaybookPlan.build(loaded, warehouse, crm)
        assets.append(playbook_multi_asset(plan, config))
        used_connections.update(plan.used_connections)
    if only is None:
        assets.extend(broken_playbook_asset(broken) for broken in catalog.broken)
    for name in sorted(used_connections):
        resources[connection_resource_key(name)] = build_resource(config, name)
    save_artifacts = options.save_artifacts and config.artifacts.enabled
    resources["io_manager"] = (
        ArtifactIOManager(base_dir=str(config.artifacts_dir))
        if save_artifacts
        else dg.InMemoryIOManager()
    )
    resources["run_settings"] = RunSettings(
        artifacts_dir=str(config.artifacts_dir),
        save_artifacts=save_artifacts,
        retry_attempts=config.execution.retry_attempts,
        max_parallel_steps=config.execution.max_parallel_steps,
        timeout_seconds=config.execution.timeout_seconds,
        retention_days=config.artifacts.retention_days,
        in_process=config.execution.executor == "in_process",
        allowed_directories=[str(folder) for folder in config.allowed_directories],
    )
    jobs: list[dg.JobDefinition] = []
    sensors: list[dg.SensorDefinition] = []
    schedules: list[dg.ScheduleDefinition] = []
    if only is None:
        for loaded in selected:
            schedule = playbook_schedule(loaded)
            if schedule is not None:
                schedules.append(schedule)
            sensors.extend(playbook_sensors(loaded))
        if config.requests_dir is not None and selected:
            sensors.append(
                request_sensor(
                    catalog,
                    config.requests_dir,
                    config.requests.interval_seconds,
                    config.limits.yaml_limits(),
                )
            )
        jobs.append(prune_job())
        schedules.append(prune_schedule())
        sensors.append(stale_runs_sensor())
        if config.artifacts.enabled:
            sensors.append(run_record_sensor(catalog, config.artifacts_dir, warehouse, crm))
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources=resources,
        executor=executor_for(config),
    )


def executor_for(config: ExecutorConfig) -> dg.ExecutorDefinition:
    """The executor the configuration asks for."""
    if config.execution.executor == "multiprocess":
        return dg.multiprocess_executor.configured(
            {"max_concurrent": config.execution.max_parallel_steps}
        )
    return dg.in_process_executor


def parameters_config_schema(spec: PlaybookSpec) -> dict[str, dg.Field] | None:
    """The op config of a playbook: its typed parameters, defaults filled in."""
    if not spec.parameters:
        return None
    return {parameter.name: _config_field(parameter) for parameter in spec.parameters}


def _config_field(parameter: ParameterSpec) -> dg.Field:
    config_type = parameter_config_type(parameter)
    description = parameter.description or None
    if parameter.default is not None:
        default = coerce_parameter(parameter, parameter.default, strict=True)
        return dg.Field(
            config_type,
            default_value=to_config_value(default),
            description=description,
        )
    return dg.Field(config_type, is_required=parameter.required, description=description)


def playbook_multi_asset(plan: PlaybookPlan, config: ExecutorConfig) -> dg.AssetsDefinition:
    """The multi-asset of one playbook: its steps, outputs and run report."""
    loaded = plan.loaded
    spec = loaded.spec
    common = _Common.of(loaded)
    # Code references are a beta API; the link is worth it, a warning per asset is not.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        specs = [_step_spec(plan, step, config, common) for step in spec.steps]
        specs += [_output_spec(loaded, output, common) for output in spec.outputs]
        specs.append(_report_spec(loaded, common))
    checks = [
        check
        for step in spec.steps
        for check in check_specs(asset_key(spec.id, step.id), step.checks)
    ]
    checks += [
        check
        for output in spec.outputs
        for check in check_specs(asset_key(spec.id, output.name), output.checks)
    ]
    resource_keys = {"run_settings"} | {
        connection_resource_key(name) for name in plan.used_connections
    }

    @dg.multi_asset(
        name=spec.id,
        specs=specs,
        check_specs=checks or None,
        can_subset=True,
        description=spec.description or spec.name,
        config_schema=parameters_config_schema(spec),
        required_resource_keys=resource_keys,
        partitions_def=common.partitions_def,
        backfill_policy=common.backfill_policy,
        pool=_pool(plan),
        op_tags={TAG_PLAYBOOK: spec.id},
    )
    def playbook(context: dg.AssetExecutionContext) -> Iterator[Any]:
        yield from run_playbook_op(context, plan)

    return playbook


def _pool(plan: PlaybookPlan) -> str | None:
    """The op's concurrency pool: its warehouse connection's, else its CRM's, else none.

    An op has one pool, so a playbook that uses a warehouse and a CRM counts against its
    warehouse's.
    """
    used = plan.used_connections
    if not used:
        return None
    for preferred in (plan.data_warehouse, plan.crm):
        if preferred in used:
            return connection_resource_key(preferred)
    return connection_resource_key(sorted(used)[0])


def _step_kind(step: Step, connection: str | None, config: ExecutorConfig) -> str:
    if isinstance(step, RequestStep):
        return "rest"
    if isinstance(step, GraphQLStep):
        return "graphql"
    if isinstance(step, FileStep):
        return step.config.format or step.config.path.lower().rsplit(".", 1)[-1]
    if connection is None:
        return "duckdb"
    return resource_class(connection_type(config.connections[connection])).kind


@dataclass(frozen=True)
class _Common:
    """What every asset of a playbook shares: group, owners, partitions, backfills, tags."""

    group_name: str
    owners: list[str] | None
    tags: dict[str, str]
    file_path: str
    partitions_def: dg.PartitionsDefinition | None
    backfill_policy: dg.BackfillPolicy | None

    @classmethod
    def of(cls, loaded: LoadedPlaybook) -> "_Common":
        spec = loaded.spec
        return cls(
            group_name=spec.id,
            owners=list(spec.owners) or None,
            tags=dict(spec.tags),
            file_path=str(loaded.path.resolve()),
            partitions_def=partitions_definition(spec.partitions),
            backfill_policy=backfill_policy(spec.partitions),
        )

    def code_reference(self, line: int | None) -> dict[str, Any]:
        """Links an asset to its playbook file and line in the UI (call with Dagster's
        BetaWarning silenced)."""
        reference = dg.CodeReferencesMetadataValue(
            code_references=[
                dg.LocalFileCodeReference(
                    file_path=self.file_path, line_number=line, label="playbook"
                )
            ]
        )
        return {"dagster/code_references": reference}


# What `AssetSpec.with_io_manager_key("io_manager")` sets, without copying each spec: the
# step's and output's tables go through the I/O manager (the report asset has no value).
_STORED_BY_IO_MANAGER = {"dagster/io_manager_key": "io_manager"}


def _step_spec(
    plan: PlaybookPlan, step: Step, config: ExecutorConfig, common: _Common
) -> dg.AssetSpec:
    spec = plan.loaded.spec
    connection = plan.connections[step.id]
    location = plan.loaded.step_location(step.id)
    metadata: dict[str, Any] = {
        **_STORED_BY_IO_MANAGER,
        "playbook/step_type": step.type,
        "playbook/source": step.source,
        "playbook/file": str(location),
        **common.code_reference(location.line),
    }
    if connection is not None:
        metadata["playbook/connection"] = connection
    return dg.AssetSpec(
        key=asset_key(spec.id, step.id),
        deps=[asset_key(spec.id, name) for name in plan.upstream[step.id]],
        description=step.title + (f"\n\n{step.description}" if step.description else ""),
        kinds={_step_kind(step, connection, config)},
        metadata=metadata,
        tags={**common.tags, "playbook/step_type": step.type},
        group_name=common.group_name,
        owners=common.owners,
        skippable=True,
    )


def _output_spec(loaded: LoadedPlaybook, output: OutputSpec, common: _Common) -> dg.AssetSpec:
    spec = loaded.spec
    source = loaded.output_source(output)
    location = loaded.output_location(output.name)
    description = output.description or (
        f"Aggregates of {source}" if output.type == "aggregate" else f"Output: {source}"
    )
    return dg.AssetSpec(
        key=asset_key(spec.id, output.name),
        deps=[asset_key(spec.id, source)],
        description=description,
        kinds={"duckdb"},
        metadata={
            **_STORED_BY_IO_MANAGER,
            "playbook/output_type": output.type,
            "playbook/file": str(location),
            **common.code_reference(location.line),
        },
        tags={**common.tags, "playbook/output_type": output.type},
        group_name=common.group_name,
        owners=common.owners,
        skippable=True,
    )


def _report_spec(loaded: LoadedPlaybook, common: _Common) -> dg.AssetSpec:
    spec = loaded.spec
    upstream = [asset_key(spec.id, output.name) for output in spec.outputs]
    upstream += [asset_key(spec.id, step_id) for step_id in spec.step_ids]
    return dg.AssetSpec(
        key=asset_key(spec.id, REPORT_ASSET),
        deps=upstream,
        description=f"Run report of {spec.name}: step statuses, outputs and insights (JSON).",
        kinds={"json"},
        metadata=common.code_reference(1),
        tags=common.tags,
        group_name=common.group_name,
        owners=common.owners,
        skippable=True,
    )


def run_record_sensor(
    catalog: PlaybookCatalog, artifacts_dir: Path, data_warehouse: str, crm: str
) -> dg.SensorDefinition:
    """Writes the run record of each playbook of a failed run whose op did not write one (it
    failed before its op ran, or its process was killed), so every run leaves a record. A
    record it cannot write is logged; the sensor itself never fails."""

    @dg.run_failure_sensor(
        name="playbook_run_records",
        description="Writes the run report and manifest of failed runs that have none.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def record_failed_run(context: dg.RunFailureSensorContext) -> None:
        run = context.dagster_run
        if run.tags.get(TAG_SAVE_ARTIFACTS) == "false":
            return
        try:
            covered = playbooks_of_run(context.instance, run)
        except Exception as e:  # the sensor must keep working for the next runs
            context.log.error(f"run {run.run_id}: cannot tell its playbooks: {e}")
            return
        for playbook_id in covered:
            loaded = catalog.playbooks.get(playbook_id)
            if loaded is None:
                context.log.warning(f"run {run.run_id}: playbook {playbook_id} is not loaded")
                continue
            try:
                write_failed_run_record(
                    context.instance,
                    loaded,
                    run,
                    artifacts_dir,
                    data_warehouse=data_warehouse,
                    crm=crm,
                )
            except Exception as e:
                context.log.error(
                    f"run {run.run_id}: cannot write the record of {playbook_id}: "
                    f"{type(e).__name__}: {e}"
                )

    return record_failed_run


def write_failed_run_record(
    instance: dg.DagsterInstance,
    loaded: LoadedPlaybook,
    run: dg.DagsterRun,
    artifacts_dir: Path,
    *,
    data_warehouse: str,
    crm: str,
) -> dict[str, Any] | None:
    """Write the record of a failed run of a playbook unless its op wrote one; return the
    report written."""
    info, problem = run_info_of(instance, loaded, run, data_warehouse=data_warehouse, crm=crm)
    if manifest_file(artifacts_dir, info.run_id).exists():
        return None
    if (
        info.partition is not None
        and "..." in info.partition
        and _has_records(artifacts_dir, run.run_id, loaded.id)
    ):
        return None
    error = problem or failure_message(instance, run)
    outcome = outcome_of_ended_run(instance, loaded, run, error)
    report = build_report(loaded, info, outcome, artifacts_dir=artifacts_dir)
    artifacts = run_artifacts(instance, run.run_id, loaded.id)
    write_run_record(report, loaded, artifacts, artifacts_dir)
    return report


def _has_records(artifacts_dir: Path, dagster_run_id: str, playbook_id: str) -> bool:
    """Whether the op of a run over a range of partitions wrote its records (one per
    partition, under ids that depend on each partition)."""
    return any(
        record.manifest.get("dagster_run_id") == dagster_run_id
        and record.playbook_id == playbook_id
        for record in iter_runs(artifacts_dir)
    )


def prune_job() -> dg.JobDefinition:
    """A job that removes expired runs from the artifact store."""

    @dg.op(required_resource_keys={"run_settings"})
    def prune_expired_runs(context: dg.OpExecutionContext) -> None:
        settings: RunSettings = context.resources.run_settings
        result = prune_runs(Path(settings.artifacts_dir), settings.retention_days, context.instance)
        context.log.info(
            f"removed {len(result.removed_runs)} runs ({len(result.removed_files)} files); "
            f"kept {len(result.kept_latest)} files that are still the latest materialization; "
            f"removed {len(result.removed_leftovers)} files left by interrupted runs"
        )

    @dg.job(name=PRUNE_JOB, description="Remove runs older than artifacts.retention_days.")
    def prune() -> None:
        prune_expired_runs()

    return prune


def prune_schedule() -> dg.ScheduleDefinition:
    """Prunes the artifact store every day at 03:00 (UTC)."""
    return dg.ScheduleDefinition(
        name=f"{PRUNE_JOB}_daily",
        job_name=PRUNE_JOB,
        cron_schedule="0 3 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )


def broken_playbook_asset(broken: BrokenPlaybook) -> dg.AssetSpec:
    """An asset that shows a broken playbook and its error in the UI (its key is unique in the
    catalog: ``catalog.name_broken_assets``)."""
    prefix, name = broken.asset_key
    return dg.AssetSpec(
        key=[prefix, name],
        # Next to the valid playbook of the same id, when the id is known.
        group_name=prefix if prefix == broken.playbook_id else "invalid_playbooks",
        description=f"This playbook failed to load and does not run.\n\n```\n{broken.error}\n```",
        metadata={
            "error": dg.MetadataValue.text(str(broken.error)),
            "playbook/file": broken.display_path,
        },
        tags={"playbook/status": "invalid"},
    )
