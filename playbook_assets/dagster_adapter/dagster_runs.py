"""What the product reads of a Dagster run: when it started, which playbooks and assets it
covers, the parameters and connections it ran with, and, for a run that ended without its op
finishing, what it stored before it ended."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import dagster as dg

from playbook_assets.core.catalog import LoadedPlaybook
from playbook_assets.core.errors import PlaybookError
from playbook_assets.core.report import (
    FACTS_METADATA_KEY,
    OutputOutcome,
    RunInfo,
    RunOutcome,
    StepOutcome,
)
from playbook_assets.dagster_adapter.run_config import parameter_values, parameters_in_run_config

TAG_DATA_WAREHOUSE = "playbook/data_warehouse"
TAG_CRM = "playbook/crm"
TAG_SAVE_ARTIFACTS = "playbook/save_artifacts"
TAG_RERUN_OF = "playbook/rerun_of"
_RANGE_START = "dagster/asset_partition_range_start"
_RANGE_END = "dagster/asset_partition_range_end"


def run_started_at(instance: dg.DagsterInstance, dagster_run_id: str) -> dt.datetime:
    """When a Dagster run started (its creation time until it starts), in UTC."""
    record = instance.get_run_record_by_id(dagster_run_id)
    if record is None:
        raise ValueError(f"unknown Dagster run {dagster_run_id}")
    timestamp = record.start_time or record.create_timestamp.timestamp()
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)


def playbook_of_key(key: dg.AssetKey) -> str | None:
    """The playbook an asset key of a playbook names (``[..., playbook, name]``); None for a
    key too short to be one (an asset of the user's own in the same run)."""
    return key.path[-2] if len(key.path) >= 2 else None


def selected_playbooks(run: dg.DagsterRun) -> set[str]:
    """The playbooks whose assets a run selected."""
    found = {playbook_of_key(key) for key in run.asset_selection or ()}
    return {playbook for playbook in found if playbook is not None}


def playbooks_of_run(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[str]:
    """The playbooks a run covers: those of its selected assets, else those whose op ran."""
    if run.asset_selection:
        return sorted(selected_playbooks(run))
    started = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.STEP_START, limit=10_000
    ).records
    return sorted({record.event_log_entry.step_key or "" for record in started} - {""})


def selected_names(run: dg.DagsterRun, playbook_id: str) -> set[str] | None:
    """The steps and outputs of a playbook a run selected (None: all of them)."""
    if not run.asset_selection:
        return None
    return {key.path[-1] for key in run.asset_selection if playbook_of_key(key) == playbook_id}


def run_partition(run: dg.DagsterRun) -> str | None:
    """The partition (or ``first...last`` range) a run covers, from its tags."""
    tags = run.tags
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    if _RANGE_START in tags:
        return f"{tags[_RANGE_START]}...{tags.get(_RANGE_END, '')}"
    return None


def run_info_of(
    instance: dg.DagsterInstance,
    loaded: LoadedPlaybook,
    run: dg.DagsterRun,
    *,
    data_warehouse: str,
    crm: str,
) -> tuple[RunInfo, str | None]:
    """What a run's record says about it, from the run itself, and why its parameters could
    not be read (a launchpad value of the wrong type), if they could not."""
    given = parameters_in_run_config(run.run_config, loaded.id)
    problem: str | None = None
    try:
        parameters: Mapping[str, Any] = parameter_values(loaded.spec, given)
    except PlaybookError as e:
        parameters, problem = given, str(e)
    info = RunInfo(
        playbook_id=loaded.id,
        dagster_run_id=run.run_id,
        started=run_started_at(instance, run.run_id),
        parameters=parameters,
        data_warehouse=run.tags.get(TAG_DATA_WAREHOUSE, data_warehouse),
        crm=run.tags.get(TAG_CRM, crm),
        partition=run_partition(run),
        rerun_of=run.tags.get(TAG_RERUN_OF),
    )
    return info, problem


def failure_message(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """Why a run failed, in one line: its first step failure, else the run's failure."""
    records = instance.get_records_for_run(
        run.run_id,
        of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE},
        limit=100,
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            if data.user_failure_data is not None and data.user_failure_data.description:
                return data.user_failure_data.description
            if data.error is not None:
                cause = data.error
                while cause.cause is not None and "dagster" in (cause.cls_name or "").lower():
                    cause = cause.cause
                return cause.message.strip()
    for record in records:
        entry = record.event_log_entry
        if entry.dagster_event is not None and entry.message:
            return entry.message.strip()
    return "the run failed"


def outcome_of_ended_run(
    instance: dg.DagsterInstance, loaded: LoadedPlaybook, run: dg.DagsterRun, error: str
) -> RunOutcome:
    """The outcome of a failed run whose op did not finish (a connection that could not be set
    up, a killed process): what it stored before it ended, and the error for the rest."""
    selection = selected_names(run, loaded.id)
    stored: dict[str, Mapping[str, Any]] = {}
    records = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=100_000
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        key = event.asset_key if event is not None else None
        if event is None or key is None or len(key.path) < 2 or key.path[-2] != loaded.id:
            continue
        metadata = event.step_materialization_data.materialization.metadata
        stored[key.path[-1]] = {name: value.value for name, value in metadata.items()}
    reason = f"the run ended before this finished: {error}"

    def chosen(name: str) -> bool:
        return selection is None or name in selection

    outcome = RunOutcome(error=error)
    for step in loaded.spec.steps:
        if not chosen(step.id):
            outcome.steps[step.id] = StepOutcome("not_selected")
        elif step.id in stored:
            outcome.steps[step.id] = StepOutcome(
                "success",
                row_count=stored[step.id].get("dagster/row_count"),
                execution_time_ms=float(stored[step.id].get("execution_time_ms") or 0.0),
                facts=stored[step.id].get(FACTS_METADATA_KEY),
            )
        else:
            outcome.steps[step.id] = StepOutcome("skipped", reason=reason)
    for output in loaded.spec.outputs:
        if not chosen(output.name):
            outcome.outputs[output.name] = OutputOutcome("not_selected")
        elif output.name in stored:
            outcome.outputs[output.name] = OutputOutcome(
                "success",
                row_count=stored[output.name].get("dagster/row_count"),
                facts=stored[output.name].get(FACTS_METADATA_KEY),
            )
        else:
            outcome.outputs[output.name] = OutputOutcome("skipped", reason=reason)
    return outcome
