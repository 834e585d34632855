"""What a playbook's op does when it runs: the core's run of the playbook
(``core.engine.PlaybookRun``), in Dagster.

A playbook is one Dagster op that materializes one asset per step and output, plus its run
report (a subsettable multi-asset, see ``factory``). The op gives the run its environment from
the op's context (the connection resources, the instance's stored results, the log), turns
what the run produces into materializations and asset check results as it goes, then writes
the run records and hands each partition's report over (``REPORTS_KEY`` in the report asset's
or the failure's metadata). A run over a range of partitions materializes each partition with
its own metadata.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from playbook_assets.connections.services import RunConnections
from playbook_assets.core.artifacts import (
    BYTES_METADATA_KEY,
    PATH_METADATA_KEY,
    SHA256_METADATA_KEY,
    PartitionedResult,
)
from playbook_assets.core.engine import ChecksDone, Event, PlaybookRun, ResultsReady
from playbook_assets.core.errors import PlaybookError
from playbook_assets.core.plan import PlaybookPlan
from playbook_assets.core.report import (
    RECORD_ERRORS_KEY,
    REPORTS_KEY,
    RUN_ID_METADATA_KEY,
    STEP_ERRORS_KEY,
    RunInfo,
)
from playbook_assets.core.report_render.markdown import markdown_report
from playbook_assets.core.results import Result
from playbook_assets.core.run_reports import RunReports, run_reports
from playbook_assets.core.run_state import SHARED, unit_id
from playbook_assets.core.step_execution import CachedResult, RunEnvironment
from playbook_assets.dagster_adapter.asset_checks import asset_check_result
from playbook_assets.dagster_adapter.dagster_runs import (
    TAG_RERUN_OF,
    run_started_at,
    selected_playbooks,
)
from playbook_assets.dagster_adapter.io_manager import read_latest_result
from playbook_assets.dagster_adapter.metadata import dagster_metadata
from playbook_assets.dagster_adapter.partitions import run_units
from playbook_assets.dagster_adapter.resources import RunSettings
from playbook_assets.dagster_adapter.run_config import (
    REPORT_ASSET,
    TAG_PLAYBOOK,
    AssetKeys,
    asset_key,
    parameter_values,
)
from playbook_assets.dagster_adapter.stale_runs import TAG_PID, process_tags
from playbook_assets.dagster_adapter.stored_results import find_cached_result

__all__ = ["PlaybookPlan", "output_name", "run_playbook_op"]


def output_name(key: dg.AssetKey) -> str:
    """The op output that materializes an asset (Dagster names multi-asset outputs so)."""
    return key.to_python_identifier()


def run_playbook_op(
    context: dg.AssetExecutionContext, plan: PlaybookPlan, keys: AssetKeys = asset_key
) -> Iterator[Any]:
    """The op's body: the selected steps, then outputs, then the records and the report
    (``keys``: how the deployment keys the playbook's assets)."""
    spec = plan.loaded.spec
    settings: RunSettings = context.resources.run_settings
    _tag_run(context, spec.id, settings.in_process)
    selected = {key.path[-1] for key in context.selected_asset_keys}
    units = run_units(context, spec.partitions)
    given = context.op_execution_context.op_config or {}
    error: str | None = None
    try:
        parameters: Mapping[str, Any] = parameter_values(spec, given)
    except PlaybookError as e:
        parameters, error = dict(given), str(e)  # the report shows what was given
    run = PlaybookRun(
        plan,
        _environment(context, plan, settings, keys),
        selected=selected,
        units=units,
        parameters=parameters,
        run_id=context.run.run_id,
        artifacts_dir=Path(settings.artifacts_dir) if settings.save_artifacts else None,
    )
    run.error = error
    started = run_started_at(context.instance, context.run.run_id)
    infos = {
        unit_id(unit): RunInfo(
            playbook_id=spec.id,
            dagster_run_id=context.run.run_id,
            started=started,
            parameters=parameters,
            data_warehouse=plan.data_warehouse,
            crm=plan.crm,
            partition=unit.key,
            per_partition=run.ranged,
            rerun_of=context.run.tags.get(TAG_RERUN_OF),
        )
        for unit in units
    }
    run_ids = {unit: info.run_id for unit, info in infos.items()}
    for event in run.run():
        yield from _dagster_events(context, run, event, run_ids, keys)
    done = run_reports(run, infos)
    errors = run.step_errors()
    if run.error is not None or errors or any(r["status"] != "success" for r in done.reports):
        lines = [f"- {name}: {item['error']}" for name, item in errors.items()]
        if run.error is not None:
            lines.insert(0, f"- {run.error}")
        raise dg.Failure(
            description=f"{spec.id} failed:\n" + "\n".join(lines),
            metadata={
                STEP_ERRORS_KEY: dg.MetadataValue.json(errors),
                REPORTS_KEY: dg.MetadataValue.json(done.reports),
                RECORD_ERRORS_KEY: dg.MetadataValue.json(done.record_errors),
            },
            allow_retries=False,
        )
    if REPORT_ASSET in selected:
        yield _report_result(context, run, done, settings.save_artifacts, keys)


def _environment(
    context: dg.AssetExecutionContext, plan: PlaybookPlan, settings: RunSettings, keys: AssetKeys
) -> RunEnvironment:
    """The run's environment from the op's context."""
    spec = plan.loaded.spec
    resources = {
        name: getattr(context.resources, f"connection_{name}") for name in plan.used_connections
    }
    instance = context.instance

    def stored(step_id: str, partition: str | None) -> pa.Table:
        return read_latest_result(instance, keys(spec.id, step_id), partition)

    def cached(step_id: str, fingerprint: str, partition: str | None) -> CachedResult | None:
        key = keys(spec.id, step_id)
        return find_cached_result(instance, key, fingerprint, partition, context.log)

    return RunEnvironment(
        services=RunConnections(
            resources,
            retry_attempts=settings.retry_attempts,
            allowed_directories=tuple(settings.allowed_directories),
        ),
        settings=settings.execution(),
        log=context.log,
        stored_result=stored,
        cached_result=cached,
    )


def _dagster_events(
    context: dg.AssetExecutionContext,
    run: PlaybookRun,
    event: Event,
    run_ids: Mapping[str, str],
    keys: AssetKeys,
) -> Iterator[Any]:
    key = keys(run.spec.id, event.name)
    if isinstance(event, ResultsReady):
        yield _output(context, run, key, event.results, run_ids)
    elif isinstance(event, ChecksDone):
        for _, per_unit in event.evaluations:
            yield asset_check_result(key, per_unit)


def _output(
    context: dg.AssetExecutionContext,
    run: PlaybookRun,
    key: dg.AssetKey,
    results: Mapping[str, Result],
    run_ids: Mapping[str, str],
) -> dg.Output[Any]:
    """One op output for an asset: a partition's result, or every partition's of a range
    (each with its own metadata, so each partition records what it holds)."""
    if not run.ranged:
        ((unit, result),) = results.items()
        metadata = {**result.metadata, RUN_ID_METADATA_KEY: run_ids[unit]}
        version = result.data_version
        return dg.Output(
            result.value,
            output_name=output_name(key),
            metadata=dagster_metadata(metadata),
            data_version=dg.DataVersion(version) if version else None,
        )
    parts: dict[str, Any] = {}
    versions: list[str] = []
    for unit in run.units:
        result = results.get(unit_id(unit)) or results[SHARED]
        assert unit.key is not None
        parts[unit.key] = result.value
        metadata: dict[str, Any] = {**result.metadata, RUN_ID_METADATA_KEY: run_ids[unit_id(unit)]}
        path = run.artifact_path(str(key.path[-1]), unit)
        if result.encoded is not None and path is not None:
            metadata[PATH_METADATA_KEY] = str(path)
            metadata[SHA256_METADATA_KEY] = result.encoded.sha256
            metadata[BYTES_METADATA_KEY] = result.encoded.size
        context.add_asset_metadata(
            dagster_metadata(metadata), asset_key=key, partition_key=unit.key
        )
        versions.append(result.data_version or "")
    return dg.Output(
        PartitionedResult(parts),
        output_name=output_name(key),
        data_version=dg.DataVersion(hashlib.sha256("\n".join(versions).encode()).hexdigest()),
    )


def _report_result(
    context: dg.AssetExecutionContext,
    run: PlaybookRun,
    done: RunReports,
    stored: bool,
    keys: AssetKeys,
) -> dg.MaterializeResult:
    """The run report asset's materialization: each partition's report in its metadata."""
    key = keys(run.spec.id, REPORT_ASSET)
    per_partition = []
    for unit, report in zip(run.units, done.reports, strict=True):
        view = done.views.get(report["run_id"])
        markdown = markdown_report(view) if view is not None else None
        metadata = _report_metadata(report, stored, markdown)
        if run.ranged:
            assert unit.key is not None
            context.add_asset_metadata(metadata, asset_key=key, partition_key=unit.key)
        per_partition.append(metadata)
    shared: dict[str, Any] = per_partition[0] if not run.ranged else {}
    shared[REPORTS_KEY] = dg.MetadataValue.json(list(done.reports))
    shared[RECORD_ERRORS_KEY] = dg.MetadataValue.json(done.record_errors)
    return dg.MaterializeResult(asset_key=key, metadata=shared)


def _report_metadata(
    report: Mapping[str, Any], stored: bool, markdown: str | None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "report": dg.MetadataValue.md(
            markdown or "The report could not be rendered: see the run's log."
        ),
        "run_id": report["run_id"],
        "status": report["status"],
        "parameters": dg.MetadataValue.json(report["metadata"]["parameters_used"]),
        "insights": dg.MetadataValue.md("\n".join(f"- {i}" for i in report["insights"])),
    }
    if report.get("partition") is not None:
        metadata["partition"] = str(report["partition"])
    if stored and report.get("artifact_path"):
        json_path = Path(str(report["artifact_path"]))
        metadata["report_path"] = dg.MetadataValue.path(str(json_path))
        if markdown is not None:
            metadata["report_html"] = dg.MetadataValue.path(str(json_path.with_suffix(".html")))
    return metadata


def _tag_run(context: dg.AssetExecutionContext, playbook_id: str, in_process: bool) -> None:
    """Tag the run with the playbooks it covers (a run launched from the UI has no tags of
    ours), so it can be found by playbook like runs the product launches, and, when the op
    runs in the run's own process, with that process, so a run whose process is killed is
    found and failed (``stale_runs``) instead of holding the queue for ever."""
    run = context.run
    tags: dict[str, str] = {}
    if TAG_PLAYBOOK not in run.tags:
        covered = sorted(selected_playbooks(run) or {playbook_id})
        tags[TAG_PLAYBOOK] = ",".join(covered)
    if in_process and TAG_PID not in run.tags:
        tags.update(process_tags())
    if tags:
        context.instance.add_run_tags(run.run_id, tags)
