"""Playbook -> Dagster definitions.

Each step becomes an asset keyed ``[playbook_id, step_id]`` in group ``playbook_id``; each
output becomes an asset ``[playbook_id, output_name]``; a ``run_report`` asset assembles the
run report. Each playbook gets a job named after it, whose launchpad config is the
playbook's typed parameters with their defaults filled in (a per-playbook resource).
Broken playbooks appear as an asset carrying their error, in their own group.
"""

import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from playbook_assets.artifacts import ArtifactIOManager, EncodedTable
from playbook_assets.automation import playbook_schedule, playbook_sensors, request_sensor
from playbook_assets.catalog import (
    BrokenPlaybook,
    LoadedPlaybook,
    PlaybookCatalog,
    data_dependencies,
    step_dependencies,
)
from playbook_assets.checks import check_specs
from playbook_assets.checks import evaluate as evaluate_check
from playbook_assets.config import ExecutorConfig
from playbook_assets.errors import PlaybookError, PlaybookValidationError, unknown_name_hint
from playbook_assets.execution import RunSettings, build_output, execute_step, fail
from playbook_assets.insights import table_facts
from playbook_assets.parameters import coerce_parameter
from playbook_assets.partitions import backfill_policy, partitions_definition
from playbook_assets.registry import build_resource, connection_type
from playbook_assets.report import RunContext, assemble_run_report
from playbook_assets.run_config import (
    parameters_resource_key,
)
from playbook_assets.run_records import (
    manifest_file,
    prune_runs,
    run_artifacts,
    write_run_record,
)
from playbook_assets.spec import (
    AnyStep,
    CheckSpec,
    FileStep,
    GraphQLStep,
    OutputSpec,
    ParameterSpec,
    PlaybookSpec,
    QueryStep,
    RequestStep,
    SearchStep,
)
from playbook_assets.transforms import aggregate_table

REPORT_ASSET = "run_report"
PRUNE_JOB = "artifacts_prune"
TAG_PLAYBOOK = "playbook/id"
TAG_DATA_WAREHOUSE = "playbook/data_warehouse"
TAG_CRM = "playbook/crm"
TAG_SAVE_ARTIFACTS = "playbook/save_artifacts"

Step = AnyStep
# The type `dg.define_asset_job` returns is not exported by dagster.
AssetJob = Any


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
    jobs: list[AssetJob] = []
    resources: dict[str, Any] = {}
    used_connections: set[str] = set()
    for loaded in selected:
        playbook_assets, connections = build_playbook_assets(loaded, config, warehouse, crm)
        assets.extend(playbook_assets)
        used_connections.update(connections)
        resources[parameters_resource_key(loaded.id)] = parameters_resource(loaded.spec)
        jobs.append(build_playbook_job(loaded, warehouse, crm, options.save_artifacts))
    if only is None:
        assets.extend(broken_playbook_asset(broken) for broken in catalog.broken)
    for name in sorted(used_connections):
        resources[connection_resource_key(name)] = build_resource(config, name)
    resources["io_manager"] = (
        ArtifactIOManager(base_dir=str(config.artifacts_dir))
        if options.save_artifacts and config.artifacts.enabled
        else dg.InMemoryIOManager()
    )
    resources["run_settings"] = RunSettings(
        artifacts_dir=str(config.artifacts_dir),
        save_artifacts=options.save_artifacts and config.artifacts.enabled,
        retry_attempts=config.execution.retry_attempts,
        timeout_seconds=config.execution.timeout_seconds,
        retention_days=config.artifacts.retention_days,
    )
    sensors: list[dg.SensorDefinition] = []
    schedules: list[dg.ScheduleDefinition] = []
    if only is None:
        for loaded in selected:
            schedule = playbook_schedule(loaded)
            if schedule is not None:
                schedules.append(schedule)
            sensors.extend(playbook_sensors(loaded))
        if config.requests_dir is not None and jobs:
            sensors.append(
                request_sensor(
                    catalog, config.requests_dir, list(jobs), config.requests.interval_seconds
                )
            )
        jobs.append(prune_job())
        schedules.append(prune_schedule())
        if config.artifacts.enabled:
            sensors.append(run_record_sensor(catalog, config.artifacts_dir))
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


def build_playbook_job(
    loaded: LoadedPlaybook, warehouse: str, crm: str, save_artifacts: bool
) -> AssetJob:
    """The job that runs a whole playbook; its default config is the parameter defaults."""
    spec = loaded.spec
    defaults = {
        parameter.name: _config_default(parameter)
        for parameter in spec.parameters
        if parameter.default is not None
    }
    return dg.define_asset_job(
        name=spec.id,
        selection=dg.AssetSelection.groups(spec.id),
        description=spec.description or spec.name,
        config={"resources": {parameters_resource_key(spec.id): {"config": defaults}}}
        if defaults
        else None,
        tags={
            TAG_PLAYBOOK: spec.id,
            TAG_DATA_WAREHOUSE: warehouse,
            TAG_CRM: crm,
            TAG_SAVE_ARTIFACTS: str(save_artifacts).lower(),
        },
    )


def parameters_resource(spec: PlaybookSpec) -> dg.ResourceDefinition:
    """A resource whose config is the playbook's typed parameters and whose value is them,
    checked and coerced."""
    schema = {parameter.name: _config_field(parameter) for parameter in spec.parameters}

    def resource_fn(init_context: dg.InitResourceContext) -> dict[str, Any]:
        given = dict(init_context.resource_config or {})
        values: dict[str, Any] = {}
        for parameter in spec.parameters:
            raw = given.get(parameter.name, parameter.default)
            values[parameter.name] = coerce_parameter(parameter, raw) if raw is not None else None
        return values

    return dg.ResourceDefinition(
        resource_fn=resource_fn,
        config_schema=schema,
        description=f"Parameters of playbook {spec.id}",
    )


def _config_field(parameter: ParameterSpec) -> dg.Field:
    config_types: dict[str, Any] = {
        "string": dg.String,
        "number": dg.Float,
        "integer": dg.Int,
        "boolean": dg.Bool,
        "array": dg.Array(dg.Any),
        "date": dg.String,
        "identifier": dg.String,
    }
    config_type = dg.Noneable(config_types[parameter.type])
    description = parameter.description or None
    if parameter.default is not None:
        return dg.Field(
            config_type,
            default_value=_config_default(parameter),
            description=description,
        )
    return dg.Field(config_type, is_required=parameter.required, description=description)


def _config_default(parameter: ParameterSpec) -> Any:
    value = coerce_parameter(parameter, parameter.default)
    if parameter.type == "number":
        return float(value)
    if parameter.type == "date":
        return value.isoformat()
    return value


def build_playbook_assets(
    loaded: LoadedPlaybook, config: ExecutorConfig, warehouse: str, crm: str
) -> tuple[list[dg.AssetsDefinition], set[str]]:
    """The assets of one playbook and the connection names they use."""
    spec = loaded.spec
    deps = step_dependencies(spec)
    data_deps = data_dependencies(spec)
    assets: list[dg.AssetsDefinition] = []
    connections: set[str] = set()
    for step in spec.steps:
        connection: str | None = None
        if isinstance(step, QueryStep):
            connection = step.connection or warehouse
        elif isinstance(step, SearchStep):
            connection = step.connection or crm
        if connection is not None:
            connections.add(connection)
        kind = _step_kind(step, connection, config)
        assets.append(
            _step_asset(loaded, step, deps[step.id], data_deps[step.id], connection, kind)
        )
    assets.extend(_output_asset(loaded, output) for output in spec.outputs)
    assets.append(_report_asset(loaded))
    return assets, connections


def _step_kind(step: Step, connection: str | None, config: ExecutorConfig) -> str:
    if isinstance(step, RequestStep):
        return "rest"
    if isinstance(step, GraphQLStep):
        return "graphql"
    if isinstance(step, FileStep):
        return step.config.format or step.config.path.lower().rsplit(".", 1)[-1]
    if connection is None:
        return "duckdb"
    resource_class = connection_type(config.connections[connection]).resource_class
    return resource_class.kind


@dataclass(frozen=True)
class _Shared:
    """What every asset of a playbook shares: group, owners, partitions, backfills."""

    group_name: str
    owners: list[str] | None
    partitions_def: dg.PartitionsDefinition | None
    backfill_policy: dg.BackfillPolicy | None


def _shared(loaded: LoadedPlaybook) -> _Shared:
    spec = loaded.spec
    return _Shared(
        group_name=spec.id,
        owners=list(spec.owners) or None,
        partitions_def=partitions_definition(spec.partitions),
        backfill_policy=backfill_policy(spec.partitions),
    )


def _tags(loaded: LoadedPlaybook, **extra: str) -> dict[str, str]:
    return {**loaded.spec.tags, **extra}


def _code_reference(loaded: LoadedPlaybook, line: int | None) -> dict[str, Any]:
    """Links the asset to its playbook file and line in the UI."""
    # Code references are a beta API; the link is worth it, the warning on every load is not.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        reference = dg.CodeReferencesMetadataValue(
            code_references=[
                dg.LocalFileCodeReference(
                    file_path=str(loaded.path.resolve()), line_number=line, label="playbook"
                )
            ]
        )
    return {"dagster/code_references": reference}


def _step_asset(
    loaded: LoadedPlaybook,
    step: Step,
    upstream: Sequence[str],
    data_upstream: Sequence[str],
    connection: str | None,
    kind: str,
) -> dg.AssetsDefinition:
    spec = loaded.spec
    ins = {name: dg.AssetIn(key=[spec.id, name]) for name in data_upstream}
    order_only = [dg.AssetKey([spec.id, name]) for name in upstream if name not in data_upstream]
    resource_keys = {parameters_resource_key(spec.id), "run_settings"}
    if connection is not None:
        resource_keys.add(connection_resource_key(connection))
    description = step.title + (f"\n\n{step.description}" if step.description else "")
    location = loaded.step_location(step.id)
    metadata = {
        "playbook/step_type": step.type,
        "playbook/source": step.source,
        "playbook/file": f"{location}",
        **_code_reference(loaded, location.line),
    }
    if connection is not None:
        metadata["playbook/connection"] = connection

    key = dg.AssetKey([spec.id, step.id])
    shared = _shared(loaded)

    @dg.asset(
        key=key,
        ins=ins,
        deps=order_only,
        description=description,
        kinds={kind},
        metadata=metadata,
        required_resource_keys=resource_keys,
        tags=_tags(loaded, **{"playbook/step_type": step.type}),
        check_specs=check_specs(key, step.checks) or None,
        # Steps that share a connection share a pool: instance settings cap their concurrency.
        pool=connection_resource_key(connection) if connection is not None else None,
        group_name=shared.group_name,
        owners=shared.owners,
        partitions_def=shared.partitions_def,
        backfill_policy=shared.backfill_policy,
    )
    def compute(context: dg.AssetExecutionContext, **inputs: pa.Table) -> Iterator[Any]:
        output = execute_step(context, loaded, step, connection, inputs)
        yield output
        yield from check_results(step.checks, output)

    return compute


def _output_asset(loaded: LoadedPlaybook, output: OutputSpec) -> dg.AssetsDefinition:
    spec = loaded.spec
    source = loaded.output_source(output)
    location = loaded.output_location(output.name)
    description = output.description or (
        f"Aggregates of {source}" if output.type == "aggregate" else f"Output: {source}"
    )

    key = dg.AssetKey([spec.id, output.name])
    shared = _shared(loaded)

    @dg.asset(
        key=key,
        ins={"source": dg.AssetIn(key=[spec.id, source])},
        description=description,
        kinds={"duckdb"},
        metadata={
            "playbook/output_type": output.type,
            "playbook/file": str(location),
            **_code_reference(loaded, location.line),
        },
        tags=_tags(loaded, **{"playbook/output_type": output.type}),
        required_resource_keys={"run_settings"},
        check_specs=check_specs(key, output.checks) or None,
        group_name=shared.group_name,
        owners=shared.owners,
        partitions_def=shared.partitions_def,
        backfill_policy=shared.backfill_policy,
    )
    def compute(context: dg.AssetExecutionContext, source: pa.Table) -> Iterator[Any]:
        settings: RunSettings = context.resources.run_settings
        started = time.perf_counter()
        if output.type == "data":
            result = build_output(
                source, settings, request=None, elapsed_ms=(time.perf_counter() - started) * 1000
            )
        else:
            metrics = [(metric.name, metric.expression) for metric in output.metrics]
            try:
                table = aggregate_table(source, [], metrics)
            except PlaybookError as e:
                raise fail(e, location, field="metrics") from e
            facts = table_facts(table)
            result = build_output(
                table,
                settings,
                request=None,
                elapsed_ms=(time.perf_counter() - started) * 1000,
                facts={**facts, "values": facts["first"]},
            )
        yield result
        yield from check_results(output.checks, result)

    return compute


def check_results(checks: Sequence[CheckSpec], output: dg.Output[Any]) -> Iterator[Any]:
    """The asset check results of a step's or output's table."""
    value = output.value
    table = value.table if isinstance(value, EncodedTable) else value
    for check in checks:
        yield evaluate_check(check, table)


def _report_asset(loaded: LoadedPlaybook) -> dg.AssetsDefinition:
    spec = loaded.spec
    upstream = [dg.AssetKey([spec.id, output.name]) for output in spec.outputs]
    upstream += [dg.AssetKey([spec.id, step_id]) for step_id in spec.step_ids]

    shared = _shared(loaded)

    @dg.asset(
        key=[spec.id, REPORT_ASSET],
        deps=upstream,
        tags=_tags(loaded),
        group_name=shared.group_name,
        owners=shared.owners,
        partitions_def=shared.partitions_def,
        backfill_policy=shared.backfill_policy,
        description=f"Run report of {spec.name}: step statuses, outputs and insights (JSON).",
        kinds={"json"},
        required_resource_keys={parameters_resource_key(spec.id), "run_settings"},
        metadata=_code_reference(loaded, 1),
    )
    def compute(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        settings: RunSettings = context.resources.run_settings
        run_context = RunContext(
            dagster_run_id=context.run.run_id,
            parameters=getattr(context.resources, parameters_resource_key(spec.id)),
            data_warehouse=context.run.tags.get(TAG_DATA_WAREHOUSE, ""),
            crm=context.run.tags.get(TAG_CRM, ""),
        )
        artifacts_dir = Path(settings.artifacts_dir) if settings.save_artifacts else None
        report = assemble_run_report(
            context.instance,
            loaded,
            run_context,
            report_running=True,
            artifacts_dir=artifacts_dir,
        )
        metadata: dict[str, Any] = {
            "run_id": report["run_id"],
            "status": report["status"],
            "insights": dg.MetadataValue.md("\n".join(f"- {i}" for i in report["insights"])),
        }
        if artifacts_dir is not None:
            artifacts = run_artifacts(context.instance, context.run.run_id, spec.id)
            path = write_run_record(report, loaded, artifacts, artifacts_dir)
            metadata["report_path"] = dg.MetadataValue.path(str(path))
        return dg.MaterializeResult(metadata=metadata)

    return compute


def run_record_sensor(catalog: PlaybookCatalog, artifacts_dir: Path) -> dg.SensorDefinition:
    """Writes the report and manifest of a failed playbook run (a successful run's report
    asset writes its own), so every run launched from the UI or a schedule leaves a record."""

    @dg.run_failure_sensor(
        name="playbook_run_records",
        description="Writes the run report and manifest of failed playbook runs.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def record_failed_run(context: dg.RunFailureSensorContext) -> None:
        run = context.dagster_run
        playbook_id = run.tags.get(TAG_PLAYBOOK)
        loaded = catalog.playbooks.get(playbook_id or "")
        if loaded is None or run.tags.get(TAG_SAVE_ARTIFACTS) == "false":
            return
        write_failed_run_record(context.instance, loaded, run, artifacts_dir)

    return record_failed_run


def write_failed_run_record(
    instance: dg.DagsterInstance,
    loaded: LoadedPlaybook,
    run: dg.DagsterRun,
    artifacts_dir: Path,
) -> dict[str, Any] | None:
    """Write a run's report and manifest unless they exist; return the report."""
    resources: Any = run.run_config.get("resources") or {}
    parameters = (resources.get(parameters_resource_key(loaded.id)) or {}).get("config") or {}
    run_context = RunContext(
        dagster_run_id=run.run_id,
        parameters={**_defaults(loaded.spec), **parameters},
        data_warehouse=run.tags.get(TAG_DATA_WAREHOUSE, ""),
        crm=run.tags.get(TAG_CRM, ""),
    )
    report = assemble_run_report(instance, loaded, run_context, artifacts_dir=artifacts_dir)
    if manifest_file(artifacts_dir, report["run_id"]).exists():
        return None
    artifacts = run_artifacts(instance, run.run_id, loaded.id)
    write_run_record(report, loaded, artifacts, artifacts_dir)
    return report


def _defaults(spec: PlaybookSpec) -> dict[str, Any]:
    return {
        parameter.name: coerce_parameter(parameter, parameter.default)
        for parameter in spec.parameters
        if parameter.default is not None
    }


def prune_job() -> dg.JobDefinition:
    """A job that removes expired runs from the artifact store."""

    @dg.op(required_resource_keys={"run_settings"})
    def prune_expired_runs(context: dg.OpExecutionContext) -> None:
        settings: RunSettings = context.resources.run_settings
        result = prune_runs(Path(settings.artifacts_dir), settings.retention_days, context.instance)
        context.log.info(
            f"removed {len(result.removed_runs)} runs ({len(result.removed_files)} files); "
            f"kept {len(result.kept_latest)} files that are still the latest materialization"
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
    """An asset that shows a broken playbook and its error in the UI."""
    group = broken.playbook_id if broken.playbook_id and broken.playbook_id.isidentifier() else None
    name = group or Path(broken.display_path).stem.replace("-", "_")
    return dg.AssetSpec(
        key=[name if name.isidentifier() else "invalid", "invalid_playbook"],
        group_name=group or "invalid_playbooks",
        description=f"This playbook failed to load and does not run.\n\n```\n{broken.error}\n```",
        metadata={
            "error": dg.MetadataValue.text(str(broken.error)),
            "playbook/file": broken.display_path,
        },
        tags={"playbook/status": "invalid"},
    )
