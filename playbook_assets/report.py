"""The run report (JSON) and the insights it carries.

The report is assembled from the run's events in the Dagster instance, so the same function
serves a run launched from the command line, the UI or a schedule, and a failed run gets a
report as complete as a successful one.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from playbook_assets.artifacts import atomic_write_bytes
from playbook_assets.catalog import LoadedPlaybook, display_path
from playbook_assets.parameters import to_json_value
from playbook_assets.spec import OutputSpec

MONEY_COLUMN = re.compile(r"(^|_)(amount|arr|mrr|acv|revenue|pipeline|value|price)(_|$)", re.I)
LABEL_COLUMNS = ("account_name", "dealname", "name", "company_name", "email")


@dataclass(frozen=True)
class RunContext:
    """What the report needs to know about a run beyond its events."""

    dagster_run_id: str
    parameters: Mapping[str, Any]
    data_warehouse: str
    crm: str


def report_run_id(dagster_run_id: str, started: dt.datetime) -> str:
    """The product's run id: ``run_YYYYMMDD_HHMMSS_<6 hex>`` (hex from the Dagster run id)."""
    return f"run_{started:%Y%m%d_%H%M%S}_{dagster_run_id.replace('-', '')[:6]}"


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
    started_ts = record.start_time or record.create_timestamp.timestamp()
    started = dt.datetime.fromtimestamp(started_ts, tz=dt.UTC)
    events = instance.get_records_for_run(
        run.dagster_run_id,
        of_type={
            dg.DagsterEventType.STEP_START,
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.STEP_SKIPPED,
            dg.DagsterEventType.ASSET_MATERIALIZATION,
        },
        limit=100_000,
    ).records

    start_times: dict[str, float] = {}
    end_times: dict[str, float] = {}
    outcomes: dict[str, str] = {}
    errors: dict[str, str] = {}
    materializations: dict[str, Mapping[str, Any]] = {}
    for record_entry in events:
        entry = record_entry.event_log_entry
        event = entry.dagster_event
        if event is None:
            continue
        step_key = entry.step_key or ""
        if event.event_type == dg.DagsterEventType.STEP_START:
            start_times.setdefault(step_key, entry.timestamp)
        elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
            outcomes[step_key] = "success"
            end_times[step_key] = entry.timestamp
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            outcomes[step_key] = "error"
            end_times[step_key] = entry.timestamp
            errors[step_key] = _failure_message(event)
        elif event.event_type == dg.DagsterEventType.STEP_SKIPPED:
            outcomes[step_key] = "skipped"
        elif event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            key = event.asset_key
            if key is not None and len(key.path) == 2 and key.path[0] == spec.id:
                materialization = event.step_materialization_data.materialization
                materializations[key.path[1]] = {
                    name: value.value for name, value in materialization.metadata.items()
                }

    steps: list[dict[str, Any]] = []
    for step in spec.steps:
        key = f"{spec.id}__{step.id}"
        metadata = materializations.get(step.id, {})
        status = outcomes.get(key, "skipped")
        if status == "success" and step.id not in materializations:
            status = "error"
        elapsed = metadata.get("execution_time_ms")
        if elapsed is None and key in start_times and key in end_times:
            elapsed = (end_times[key] - start_times[key]) * 1000
        step_entry: dict[str, Any] = {
            "step_id": step.id,
            "name": step.title,
            "source": step.source,
            "type": step.type,
            "status": status,
            "row_count": metadata.get("dagster/row_count"),
            "execution_time_ms": round(float(elapsed), 1) if elapsed is not None else 0.0,
        }
        if status == "error":
            step_entry["error"] = errors.get(key, "the step did not produce a result")
        steps.append(step_entry)

    outputs: dict[str, Any] = {}
    insights: list[str] = []
    for output in spec.outputs:
        metadata = materializations.get(output.name)
        if metadata is None:
            outputs[output.name] = {"type": output.type, "status": "skipped"}
            continue
        if output.type == "aggregate":
            outputs[output.name] = {"type": "aggregate", "values": metadata.get("values", {})}
        else:
            outputs[output.name] = {"type": "data", "row_count": metadata.get("dagster/row_count")}
        insights.extend(metadata.get("insights") or [])
    if not spec.outputs:
        for step in spec.steps:
            if step.id in materializations:
                rows = materializations[step.id].get("dagster/row_count")
                insights.append(f"{step.title}: {rows:,} rows")

    successful = sum(1 for step in steps if step["status"] in {"success", "cached"})
    failed = any(step["status"] == "error" for step in steps)
    if (
        not failed
        and not report_running
        and record.dagster_run.status == dg.DagsterRunStatus.FAILURE
    ):
        failed = True
    run_id = report_run_id(run.dagster_run_id, started)
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
            "failed_steps": sum(1 for step in steps if step["status"] == "error"),
            "skipped_steps": sum(1 for step in steps if step["status"] == "skipped"),
            "total_execution_time_ms": round(sum(s["execution_time_ms"] for s in steps), 1),
        },
        "outputs": outputs,
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
    if artifacts_dir is not None:
        report["artifact_path"] = display_path(report_path(artifacts_dir, run_id))
    return report


def report_path(artifacts_dir: Path, run_id: str) -> Path:
    """Where a run's report is stored."""
    return artifacts_dir / f"{run_id}.json"


def write_run_report(report: dict[str, Any], artifacts_dir: Path) -> Path:
    """Write the report to ``<artifacts>/<run_id>.json`` atomically; return the path."""
    path = report_path(artifacts_dir, report["run_id"])
    report["artifact_path"] = display_path(path)
    atomic_write_bytes(path, (json.dumps(report, indent=2, default=json_default) + "\n").encode())
    return path


def json_default(value: Any) -> Any:
    """JSON for values Arrow and parameters produce (dates, decimals)."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def aggregate_output_values(table: pa.Table) -> dict[str, Any]:
    """The single row of an aggregate output as JSON-ready values."""
    if table.num_rows == 0:
        return {name: None for name in table.column_names}
    row = table.slice(0, 1).to_pylist()[0]
    return {name: _json_number(value) for name, value in row.items()}


def _json_number(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def format_money(value: float) -> str:
    """``$3.2M``, ``$156K``, ``$950``."""
    sign = "-" if value < 0 else ""
    amount = abs(value)
    if amount >= 1_000_000_000:
        return f"{sign}${amount / 1_000_000_000:.1f}B"
    if amount >= 1_000_000:
        return f"{sign}${amount / 1_000_000:.1f}M"
    if amount >= 1_000:
        return f"{sign}${amount / 1_000:.0f}K"
    return f"{sign}${amount:,.0f}"


def humanize(name: str) -> str:
    """``total_pipeline`` -> ``Total pipeline``."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def format_metric(name: str, value: Any) -> str:
    """A metric value formatted by what its name says it is."""
    if value is None:
        return "n/a"
    if isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool):
        number = float(value)
        if MONEY_COLUMN.search(name):
            return format_money(number)
        if isinstance(value, int) or number.is_integer():
            return f"{int(number):,}"
        return f"{number:,.1f}"
    return str(value)


def default_output_insights(
    output: OutputSpec, table: pa.Table, *, include_totals: bool = True
) -> list[str]:
    """Deterministic insights of one output: its size, money totals and the top row.

    ``include_totals`` is off when the playbook declares aggregate outputs: they say what the
    totals are meant to be, where a plain sum over a joined table could count a value twice.
    """
    if output.type == "aggregate":
        values = aggregate_output_values(table)
        return [f"{humanize(name)}: {format_metric(name, value)}" for name, value in values.items()]
    insights = [f"{humanize(output.name)}: {table.num_rows:,} rows"]
    money = [
        field.name
        for field in table.schema
        if MONEY_COLUMN.search(field.name)
        and (
            pa.types.is_integer(field.type)
            or pa.types.is_floating(field.type)
            or pa.types.is_decimal(field.type)
        )
    ]
    for column in money if include_totals else []:
        total = _compute("sum", table.column(column)).as_py()
        if total is not None:
            insights.append(f"Total {column} in {output.name}: {format_money(float(total))}")
    label = next((c for c in LABEL_COLUMNS if c in table.column_names), None)
    if money and label and table.num_rows:
        column = money[0]
        index = pc.index(table.column(column), _compute("max", table.column(column))).as_py()
        if index is not None and index >= 0:
            row = table.slice(index, 1).to_pylist()[0]
            if row[column] is not None:
                insights.append(
                    f"Top by {column}: {row[label]} ({format_money(float(row[column]))})"
                )
    return insights


def _compute(function: str, column: pa.ChunkedArray) -> pa.Scalar:
    # pyarrow's generated pc.sum/pc.max wrappers are invisible to type checkers.
    return pc.call_function(function, [column])  # type: ignore[arg-type]


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
