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

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import dagster as dg

from playbook_assets.connections.registry import build_resource, connection_type, resource_class
from playbook_assets.core.catalog import PlaybookCatalog
from playbook_assets.core.config import ExecutorConfig
from playbook_assets.core.errors import PlaybookValidationError, unknown_name_hint
from playbook_assets.core.plan import PlaybookPlan
from playbook_assets.dagster_adapter.automation import (
    playbook_schedule,
    playbook_sensors,
    stale_runs_sensor,
)
from playbook_assets.dagster_adapter.io_manager import ArtifactIOManager
from playbook_assets.dagster_adapter.playbook_asset import (
    connection_resource_key,
    playbook_multi_asset,
)
from playbook_assets.dagster_adapter.request_folder import request_sensor
from playbook_assets.dagster_adapter.resources import RunSettings
from playbook_assets.dagster_adapter.retention import prune_runs
from playbook_assets.dagster_adapter.run_record_sensor import run_record_sensor
from playbook_assets.dagster_adapter.translator import PlaybookTranslator

PRUNE_JOB = "artifacts_prune"


@dataclass(frozen=True)
class FactoryOptions:
    """Choices made per run or per deployment rather than in the playbook."""

    data_warehouse: str | None = None
    crm: str | None = None
    save_artifacts: bool = True


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
    translator: PlaybookTranslator | None = None,
) -> dg.Definitions:
    """Dagster definitions for the catalog's playbooks (all, or those in ``only``), their
    assets as ``translator`` decides (default: ``PlaybookTranslator()``)."""
    options = options or FactoryOptions()
    warehouse, crm = effective_connections(config, options)
    kinds = {
        name: resource_class(connection_type(settings)).kind
        for name, settings in config.connections.items()
    }
    translator = replace(translator or PlaybookTranslator(), connection_kinds=kinds)
    selected = [catalog.playbooks[pid] for pid in (only or sorted(catalog.playbooks))]
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = []
    resources: dict[str, Any] = {}
    used_connections: set[str] = set()
    for loaded in selected:
        plan = PlaybookPlan.build(loaded, warehouse, crm)
        assets.append(playbook_multi_asset(plan, translator))
        used_connections.update(plan.used_connections)
    if only is None:
        assets.extend(translator.broken_playbook_spec(broken) for broken in catalog.broken)
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
            schedule = playbook_schedule(loaded, translator.asset_key)
            if schedule is not None:
                schedules.append(schedule)
            sensors.extend(playbook_sensors(loaded, translator.asset_key))
        if config.requests_dir is not None and selected:
            sensors.append(
                request_sensor(
                    catalog,
                    config.requests_dir,
                    config.requests.interval_seconds,
                    config.limits.yaml_limits(),
                    translator.asset_key,
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
