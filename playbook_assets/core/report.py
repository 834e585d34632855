"""The run report (JSON), built from what a run did.

A playbook's op keeps each step's and output's outcome in memory while it runs and builds the
report from them (``build_report``), for every partition it covers. A run whose op did not
finish (a connection that could not be set up, a killed process) gets its outcome from what it
stored (``dagster_runs.outcome_of_ended_run``).

Step status is ``success``, ``cached`` (read from a stored result when the source could not be
reached), ``error`` (with ``error``), ``skipped`` (with ``reason``: the upstream step that did not
succeed) or ``not_selected`` (the run materialized a subset of the playbook that left the step
out). A run's status is ``success`` when every step and output it ran succeeded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from playbook_assets.core.catalog import LoadedPlaybook, display_path
from playbook_assets.core.insights import default_insights, json_value, render_insight
from playbook_assets.core.parameters import to_json_value
from playbook_assets.core.spec import PlaybookSpec

FACTS_METADATA_KEY = "facts"
CACHED_RUN_KEY = "cached_from_run_id"
CACHED_DAGSTER_RUN_KEY = "cached_from_dagster_run_id"
CACHED_AT_KEY = "cached_from_executed_at"
# The product's run id of the run that stored a result (its record names the result).
RUN_ID_METADATA_KEY = "playbook/run_id"
# Failure metadata of a playbook's op: {step id: {"error": text, "execution_time_ms": n}}.
STEP_ERRORS_KEY = "playbook/step_errors"
# The run reports of a playbook's op, in its failure or its report asset's metadata.
REPORTS_KEY = "playbook/reports"
# Run records the op could not write, next to its reports: {run id: {"message", "hint"}}.
RECORD_ERRORS_KEY = "playbook/record_errors"

StepStatus = Literal["success", "cached", "error", "skipped", "not_selected"]
OutputStatus = Literal["success", "error", "skipped", "not_selected"]


@dataclass(frozen=True)
class RunInfo:
    """What the report says about a run of one playbook (and one partition)."""

    playbook_id: str
    dagster_run_id: str
    started: dt.datetime
    parameters: Mapping[str, Any]
    data_warehouse: str
    crm: str
    partition: str | None = None
    # A run over a range of partitions records each partition on its own.
    per_partition: bool = False
    rerun_of: str | None = None

    @property
    def run_id(self) -> str:
        """The product's run id of this record."""
        scope = f"{self.playbook_id}/{self.partition}" if self.per_partition else self.playbook_id
        return report_run_id(self.dagster_run_id, scope, self.started)


@dataclass
class StepOutcome:
    """What became of one step in a run."""

    status: StepStatus
    row_count: int | None = None
    execution_time_ms: float = 0.0
    error: str | None = None
    reason: str | None = None
    cached_from: Mapping[str, Any] | None = None
    facts: Mapping[str, Any] | None = None
    # Where a transform ran and why, what a view is (``pushdown.PLACEMENT_KEYS``).
    placement: Mapping[str, Any] | None = None


@dataclass
class OutputOutcome:
    """What became of one output in a run."""

    status: OutputStatus
    row_count: int | None = None
    error: str | None = None
    reason: str | None = None
    facts: Mapping[str, Any] | None = None


@dataclass
class RunOutcome:
    """Every step's and output's outcome, the checks, and an error that stopped the run."""

    steps: dict[str, StepOutcome] = field(default_factory=dict)
    outputs: dict[str, OutputOutcome] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def report_run_id(dagster_run_id: str, scope: str, started: dt.datetime) -> str:
    """The product's run id: ``run_YYYYMMDD_HHMMSS_<6 hex>``, the hex from the Dagster run id
    and what the record covers (a playbook, or a playbook's partition in a range run: one
    Dagster run can materialize several, and each gets its own record)."""
    digest = hashlib.sha256(f"{dagster_run_id}/{scope}".encode()).hexdigest()
    return f"run_{started:%Y%m%d_%H%M%S}_{digest[:6]}"


def build_report(
    loaded: LoadedPlaybook,
    run: RunInfo,
    outcome: RunOutcome,
    *,
    artifacts_dir: Path | None = None,
) -> dict[str, Any]:
    """The run report of a run of a playbook (one partition of it)."""
    spec = loaded.spec
    steps = _step_entries(spec, outcome)
    outputs, default = _output_entries(spec, outcome)
    report: dict[str, Any] = {
        "playbook_id": spec.id,
        "playbook_name": spec.name,
        "playbook_version": spec.version,
        "executed_at": run.started.isoformat().replace("+00:00", "Z"),
        "run_id": run.run_id,
        "dagster_run_id": run.dagster_run_id,
        "status": "success" if _succeeded(outcome, steps, outputs) else "failed",
        "steps": steps,
        "summary": _summary(steps),
        "outputs": outputs,
        "checks": list(outcome.checks),
        "insights": _insights(spec, outcome, default, run.parameters),
        "artifact_path": None,
        "metadata": {
            "data_warehouse": run.data_warehouse,
            "crm": run.crm,
            "parameters_used": {k: to_json_value(v) for k, v in run.parameters.items()},
            "playbook_file": loaded.display_path,
            "playbook_sha256": loaded.sha256,
        },
    }
    if outcome.error is not None:
        report["error"] = outcome.error
    if run.partition is not None:
        report["partition"] = run.partition
    if run.rerun_of:
        report["metadata"]["rerun_of"] = run.rerun_of
    if artifacts_dir is not None:
        report["artifact_path"] = display_path(artifacts_dir / f"{run.run_id}.json")
    return report


def _step_entries(spec: PlaybookSpec, outcome: RunOutcome) -> list[dict[str, Any]]:
    """The report's ``steps``: every step of the playbook, in order, selected or not."""
    steps: list[dict[str, Any]] = []
    for step in spec.steps:
        step_outcome = outcome.steps.get(step.id) or StepOutcome("not_selected")
        entry: dict[str, Any] = {
            "step_id": step.id,
            "name": step.title,
            "source": step.source,
            "type": step.type,
            "status": step_outcome.status,
            "row_count": step_outcome.row_count,
            "execution_time_ms": round(float(step_outcome.execution_time_ms), 1),
        }
        if step_outcome.error is not None:
            entry["error"] = step_outcome.error
        if step_outcome.reason is not None:
            entry["reason"] = step_outcome.reason
        if step_outcome.cached_from is not None:
            entry["cached_from"] = dict(step_outcome.cached_from)
        entry.update(step_outcome.placement or {})
        steps.append(entry)
    return steps


def _output_entries(spec: PlaybookSpec, outcome: RunOutcome) -> tuple[dict[str, Any], list[str]]:
    """The report's ``outputs``, and the default insights of the outputs that succeeded."""
    outputs: dict[str, Any] = {}
    default: list[str] = []
    has_aggregates = any(output.type == "aggregate" for output in spec.outputs)
    for output in spec.outputs:
        output_outcome = outcome.outputs.get(output.name) or OutputOutcome("not_selected")
        entry: dict[str, Any] = {"type": output.type, "status": output_outcome.status}
        if output_outcome.status == "success":
            output_facts = output_outcome.facts or {}
            if output.type == "aggregate":
                entry["values"] = dict(output_facts.get("values", {}))
            else:
                entry["row_count"] = output_outcome.row_count
            default += default_insights(
                output.name,
                output_facts,
                aggregate=output.type == "aggregate",
                include_totals=not has_aggregates,
            )
        if output_outcome.error is not None:
            entry["error"] = output_outcome.error
        if output_outcome.reason is not None:
            entry["reason"] = output_outcome.reason
        outputs[output.name] = entry
    return outputs, default


def _insights(
    spec: PlaybookSpec,
    outcome: RunOutcome,
    default: list[str],
    parameters: Mapping[str, Any],
) -> list[str]:
    """The playbook's own insights rendered (those whose values exist), else the defaults: the
    outputs', or each step's row count when the playbook has no outputs."""
    facts: dict[str, Mapping[str, Any]] = {
        name: known.facts
        for name, known in [*outcome.steps.items(), *outcome.outputs.items()]
        if known.facts is not None
    }
    if spec.insights:
        rendered = [render_insight(text, facts, parameters) for text in spec.insights]
        return [text for text in rendered if text is not None]
    if not spec.outputs:
        return [
            f"{step.title}: {facts[step.id]['row_count']:,} rows"
            for step in spec.steps
            if step.id in facts
        ]
    return default


def _succeeded(
    outcome: RunOutcome, steps: Sequence[Mapping[str, Any]], outputs: Mapping[str, Any]
) -> bool:
    """Whether every step and output the run ran succeeded (a cached step counts), and
    nothing stopped the run."""
    ran = [entry for entry in steps if entry["status"] != "not_selected"]
    ran_outputs = [entry for entry in outputs.values() if entry["status"] != "not_selected"]
    return (
        outcome.error is None
        and all(entry["status"] in {"success", "cached"} for entry in ran)
        and all(entry["status"] == "success" for entry in ran_outputs)
    )


def _summary(steps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The report's ``summary``: how many steps ended how, and their total time."""
    return {
        "total_steps": len(steps),
        "successful_steps": sum(1 for s in steps if s["status"] in {"success", "cached"}),
        "cached_steps": _count(steps, "cached"),
        "failed_steps": _count(steps, "error"),
        "skipped_steps": _count(steps, "skipped"),
        "not_selected_steps": _count(steps, "not_selected"),
        "total_execution_time_ms": round(sum(s["execution_time_ms"] for s in steps), 1),
    }


def _count(steps: Sequence[Mapping[str, Any]], status: str) -> int:
    return sum(1 for step in steps if step["status"] == status)


def json_default(value: Any) -> Any:
    """JSON for values Arrow and parameters produce (dates, exact decimals, bytes)."""
    return json_value(value)
