"""The run report (JSON).

The report is assembled from the run's events in the Dagster instance, so the same function
serves a run launched from the command line, the UI or a schedule, and a failed run gets a
report as complete as a successful one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from playbook_assets.catalog import LoadedPlaybook, display_path
from playbook_assets.insights import default_insights, json_value, render_insight
from playbook_assets.parameters import to_json_value

FACTS_METADATA_KEY = "facts"
CACHED_RUN_KEY = "cached_from_run_id"
CACHED_DAGSTER_RUN_KEY = "cached_from_dagster_run_id"
CACHED_AT_KEY = "cached_from_executed_at"
# Failure metadata of a playbook's op: {step id: {"error": text, "execution_time_ms": n}}.
STEP_ERRORS_KEY = "playbook/step_errors"


@dataclass(frozen=True)
class RunContext:
    """What the report needs to know about a run beyond its events."""

    dagster_run_id: str
    parameters: Mapping[str, Any]
    data_warehouse: str
    crm: str


def report_run_id(dagster_run_id: str, playbook_id: str, started: dt.datetime) -> str:
    """The product's run id of a playbook in a Dagster run: ``run_YYYYMMDD_HHMMSS_<6 hex>``,
    the hex from the Dagster run id and the playbook id (one Dagster run can materialize
    several playbooks, and each gets its own record)."""
    digest = hashlib.sha256(f"{dagster_run_id}/{playbook_id}".encode()).hexdigest()
    return f"run_{started:%Y%m%d_%H%M%S}_{digest[:6]}"


def run_started_at(instance: dg.DagsterInstance, dagster_run_id: str) -> dt.datetime:
    """When a Dagster run started (its creation time until it starts), in UTC."""
    record = instance.get_run_record_by_id(dagster_run_id)
    if record is None:
        raise ValueError(f"unknown Dagster run {dagster_run_id}")
    timestamp = record.start_time or record.create_timestamp.timestamp()
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)


def product_run_id(instance: dg.DagsterInstance, dagster_run_id: str, playbook_id: str) -> str:
    """The product's run id of a playbook in a Dagster run."""
    return report_run_id(dagster_run_id, playbook_id, run_started_at(instance, dagster_run_id))


def assemble_run_report(
    instance: dg.DagsterInstance,
    loaded: LoadedPlaybook,
    run: RunContext,
    *,
    report_running: bool = False,
    artifacts_dir: Path | None = None,
) -> dict[str, Any]:
    """The run report of a (finished) run of a playbook, read from its events.

    ``report_running`` is set by the report asset, which runs inside the run it reports on.
    """
    spec = loaded.spec
    record = instance.get_run_record_by_id(run.dagster_run_id)
    if record is None:
        raise ValueError(f"unknown Dagster run {run.dagster_run_id}")
    started = run_started_at(instance, run.dagster_run_id)
    events = instance.get_records_for_run(
        run.dagster_run_id,
        of_type={
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.ASSET_MATERIALIZATION,
            dg.DagsterEventType.ASSET_CHECK_EVALUATION,
        },
        limit=100_000,
    ).records
    checks: list[dict[str, Any]] = []
    op_failure: str | None = None
    step_errors: dict[str, Mapping[str, Any]] = {}
    materializations: dict[str, Mapping[str, Any]] = {}
    for event_record in events:
        entry = event_record.event_log_entry
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            if entry.step_key == spec.id:  # the playbook's op
                op_failure = _failure_message(event)
                step_errors = _step_errors(event)
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            if evaluation.asset_key.path[0] != spec.id:
                continue
            checks.append(
                {
                    "asset": evaluation.asset_key.to_user_string(),
                    "check": evaluation.check_name,
                    "passed": evaluation.passed,
                    "severity": evaluation.severity.value.lower(),
                    "description": evaluation.description,
                    "observed": _metadata_value(evaluation.metadata.get("observed")),
                }
            )
        elif event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            key = event.asset_key
            if key is not None and len(key.path) == 2 and key.path[0] == spec.id:
                materialization = event.step_materialization_data.materialization
                materializations[key.path[1]] = {
                    name: value.value for name, value in materialization.metadata.items()
                }
    if op_failure is not None and not step_errors:
        # The op failed outside any step (e.g. a connection could not be set up): the first
        # selected step without a result carries the error.
        selection = record.dagster_run.asset_selection
        for step in spec.steps:
            selected = not selection or dg.AssetKey([spec.id, step.id]) in selection
            if selected and step.id not in materializations:
                step_errors = {step.id: {"error": op_failure}}
                break

    steps: list[dict[str, Any]] = []
    for step in spec.steps:
        metadata = materializations.get(step.id) or {}
        error = step_errors.get(step.id)
        elapsed: Any = None
        if error is not None:  # a step that failed a blocking check has a result too
            status = "error"
            elapsed = error.get("execution_time_ms")
        elif step.id in materializations:
            status = "cached" if CACHED_RUN_KEY in metadata else "success"
            elapsed = metadata.get("execution_time_ms")
        else:
            status = "skipped"
        step_entry: dict[str, Any] = {
            "step_id": step.id,
            "name": step.title,
            "source": step.source,
            "type": step.type,
            "status": status,
            "row_count": metadata.get("dagster/row_count"),
            "execution_time_ms": round(float(elapsed), 1) if elapsed is not None else 0.0,
        }
        if error is not None and status == "error":
            step_entry["error"] = str(error.get("error") or "the step failed")
        if status == "cached":
            step_entry["cached_from"] = {
                "run_id": metadata.get(CACHED_RUN_KEY),
                "dagster_run_id": metadata.get(CACHED_DAGSTER_RUN_KEY),
                "executed_at": metadata.get(CACHED_AT_KEY),
            }
        steps.append(step_entry)

    outputs: dict[str, Any] = {}
    facts: dict[str, Mapping[str, Any]] = {}
    for name, metadata in materializations.items():
        if FACTS_METADATA_KEY in metadata:
            facts[name] = metadata[FACTS_METADATA_KEY]
    has_aggregates = any(output.type == "aggregate" for output in spec.outputs)
    default: list[str] = []
    for output in spec.outputs:
        metadata = materializations.get(output.name)
        if metadata is None:
            outputs[output.name] = {"type": output.type, "status": "skipped"}
            continue
        output_facts = facts.get(output.name, {})
        if output.type == "aggregate":
            outputs[output.name] = {"type": "aggregate", "values": output_facts.get("values", {})}
        else:
            outputs[output.name] = {"type": "data", "row_count": metadata.get("dagster/row_count")}
        if output_facts:
            default += default_insights(
                output.name,
                output_facts,
                aggregate=output.type == "aggregate",
                include_totals=not has_aggregates,
            )
    if not spec.outputs:
        default = [
            f"{step.title}: {facts[step.id]['row_count']:,} rows"
            for step in spec.steps
            if step.id in facts
        ]
    if spec.insights:
        rendered = [render_insight(text, facts, run.parameters) for text in spec.insights]
        insights = [text for text in rendered if text is not None]
    else:
        insights = default

    successful = sum(1 for step in steps if step["status"] in {"success", "cached"})
    failed = any(step["status"] == "error" for step in steps)
    if not report_running and record.dagster_run.status == dg.DagsterRunStatus.FAILURE:
        failed = True
    run_id = report_run_id(run.dagster_run_id, spec.id, started)
    report: dict[str, Any] = {
        "playbook_id": spec.id,
        "playbook_name": spec.name,
        "playbook_version": spec.version,
        "executed_at": started.isoformat().replace("+00:00", "Z"),
        "run_id": run_id,
        "dagster_run_id": run.dagster_run_id,
        "status": "failed" if failed or successful < len(steps) else "success",
        "steps": steps,
        "summary": {
            "total_steps": len(steps),
            "successful_steps": successful,
            "cached_steps": sum(1 for step in steps if step["status"] == "cached"),
            "failed_steps": sum(1 for step in steps if step["status"] == "error"),
            "skipped_steps": sum(1 for step in steps if step["status"] == "skipped"),
            "total_execution_time_ms": round(sum(s["execution_time_ms"] for s in steps), 1),
        },
        "outputs": outputs,
        "checks": checks,
        "insights": insights,
        "artifact_path": None,
        "metadata": {
            "data_warehouse": run.data_warehouse,
            "crm": run.crm,
            "parameters_used": {k: to_json_value(v) for k, v in run.parameters.items()},
            "playbook_file": loaded.display_path,
            "playbook_sha256": loaded.sha256,
        },
    }
    tags = record.dagster_run.tags
    if "dagster/partition" in tags:
        report["partition"] = tags["dagster/partition"]
    elif "dagster/asset_partition_range_start" in tags:
        report["partition"] = (
            f"{tags['dagster/asset_partition_range_start']}..."
            f"{tags.get('dagster/asset_partition_range_end', '')}"
        )
    rerun_of = record.dagster_run.tags.get("playbook/rerun_of")
    if rerun_of:
        report["metadata"]["rerun_of"] = rerun_of
    if artifacts_dir is not None:
        report["artifact_path"] = display_path(artifacts_dir / f"{run_id}.json")
    return report


def json_default(value: Any) -> Any:
    """JSON for values Arrow and parameters produce (dates, exact decimals, bytes)."""
    return json_value(value)


def _metadata_value(value: Any) -> Any:
    return json_value(value.value) if value is not None else None


def _step_errors(event: dg.DagsterEvent) -> dict[str, Mapping[str, Any]]:
    """Each failed step's error, as the playbook's op recorded it when it failed."""
    data = event.step_failure_data.user_failure_data
    value = data.metadata.get(STEP_ERRORS_KEY) if data is not None else None
    errors: Any = value.value if value is not None else None
    if not isinstance(errors, dict):
        return {}
    return {str(name): error for name, error in errors.items() if isinstance(error, dict)}


def _failure_message(event: dg.DagsterEvent) -> str:
    data = event.step_failure_data
    error = data.user_failure_data.description if data.user_failure_data else None
    if error:
        return error
    if data.error is not None:
        cause = data.error
        while cause.cause is not None and "dagster" in (cause.cls_name or "").lower():
            cause = cause.cause
        return cause.message.strip()
    return "the step failed"
