"""The run records of failed runs whose op did not write them (a run that failed before its op
ran, or whose process was killed): written by a run-failure sensor, so every run leaves one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from playbook_assets.core.catalog import LoadedPlaybook, PlaybookCatalog
from playbook_assets.core.report import build_report
from playbook_assets.core.run_records import (
    iter_runs,
    manifest_file,
    write_run_record,
)
from playbook_assets.dagster_adapter.dagster_runs import (
    TAG_SAVE_ARTIFACTS,
    failure_message,
    outcome_of_ended_run,
    playbooks_of_run,
    run_info_of,
)
from playbook_assets.dagster_adapter.io_manager import run_artifacts


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
