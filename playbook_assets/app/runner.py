"""Running one playbook through Dagster on the instance in ``$DAGSTER_HOME``.

Used by the command line and by programs: the run is an ordinary Dagster run (it shows in
the UI with its materializations) and the result is the run report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from playbook_assets.core.artifacts import ensure_folder
from playbook_assets.core.catalog import LoadedPlaybook, PlaybookCatalog
from playbook_assets.core.config import ExecutorConfig
from playbook_assets.core.errors import (
    ArtifactWriteError,
    PlaybookError,
    PlaybookValidationError,
    SourceLocation,
    unknown_name_hint,
)
from playbook_assets.core.parameters import resolve_parameters
from playbook_assets.core.report import RECORD_ERRORS_KEY, REPORTS_KEY, build_report
from playbook_assets.core.run_records import RunRecordNotStoredError, write_run_record
from playbook_assets.core.spec import DynamicPartitions, PlaybookSpec
from playbook_assets.dagster_adapter.dagster_runs import (
    TAG_CRM,
    TAG_DATA_WAREHOUSE,
    TAG_SAVE_ARTIFACTS,
    failure_message,
    outcome_of_ended_run,
    run_info_of,
)
from playbook_assets.dagster_adapter.factory import (
    FactoryOptions,
    build_definitions,
    effective_connections,
)
from playbook_assets.dagster_adapter.partitions import partitions_definition
from playbook_assets.dagster_adapter.run_config import (
    REPORT_ASSET,
    TAG_PLAYBOOK,
    asset_key,
    parameters_run_config,
    run_config_values,
)
from playbook_assets.dagster_adapter.stale_runs import process_tags, reap_dead_runs


@dataclass(frozen=True)
class RunRequest:
    """A request to run one playbook."""

    loaded: LoadedPlaybook
    config: ExecutorConfig
    file_parameters: Mapping[str, Any] = field(default_factory=dict)
    text_parameters: Mapping[str, str] = field(default_factory=dict)
    data_warehouse: str | None = None
    crm: str | None = None
    save_artifacts: bool = True
    log_level: str = "WARNING"
    tags: Mapping[str, str] = field(default_factory=dict)
    partition: str | None = None
    # The Dagster run id to give the run (default: a new one), so that a caller can follow
    # it while it runs (``core.run_control``).
    run_id: str | None = None


def dagster_instance() -> dg.DagsterInstance:
    """The instance in ``$DAGSTER_HOME`` (default ``./dagster_home``, created if missing), or
    its PostgreSQL variant when ``DAGSTER_POSTGRES_URL`` is set (see
    ``playbook_assets.dagster_adapter.instance``).

    Sets ``DAGSTER_HOME`` to the home it uses, so that code that asks Dagster for the current
    instance gets the same one. Runs left unfinished by a killed ``playbook`` process on this
    host are marked failed first (``stale_runs.reap_dead_runs``), so they stop holding the
    run queue and their pools.
    """
    from playbook_assets.dagster_adapter.instance import open_instance, resolve_dagster_home

    home: Path = resolve_dagster_home()
    instance = open_instance(home)
    reap_dead_runs(instance)
    return instance


def check_artifacts_folder(request: RunRequest) -> None:
    """Before anything runs: the artifacts folder of a run that stores its results can be
    created (a file where the folder should be is an error naming the config setting)."""
    config = request.config
    if request.save_artifacts and config.artifacts.enabled:
        try:
            ensure_folder(config.artifacts_dir)
        except PlaybookError as e:
            raise e.at(location=SourceLocation(config.display_path), field="artifacts.directory")


def request_options(request: RunRequest) -> FactoryOptions:
    """The factory options a request's run is built with."""
    return FactoryOptions(
        data_warehouse=request.data_warehouse,
        crm=request.crm,
        save_artifacts=request.save_artifacts,
    )


def playbook_definitions(request: RunRequest) -> dg.Definitions:
    """The Dagster definitions a request's playbook runs with (a long-lived caller keeps
    them for the next run of the same playbook and options)."""
    catalog = PlaybookCatalog(playbooks={request.loaded.id: request.loaded})
    options = request_options(request)
    return build_definitions(catalog, request.config, options, only=[request.loaded.id])


def run_playbook(
    request: RunRequest,
    instance: dg.DagsterInstance | None = None,
    definitions: dg.Definitions | None = None,
) -> dict[str, Any]:
    """Run a playbook and return its run report (``definitions``: those
    ``playbook_definitions`` built for the request, when the caller kept them).

    Parameters from ``text_parameters`` (``k=v`` text) override ``file_parameters``. Bad
    parameters or connection names raise ``PlaybookValidationError`` before anything runs.
    """
    spec = request.loaded.spec
    parameters = resolve_parameters(spec, {**request.file_parameters, **request.text_parameters})
    warehouse, crm = effective_connections(request.config, request_options(request))
    definitions = definitions or playbook_definitions(request)
    run_config = parameters_run_config(spec.id, run_config_values(spec, parameters))
    run_config["loggers"] = {"console": {"config": {"log_level": request.log_level}}}

    instance = instance or dagster_instance()
    check_partition(spec, request.partition, instance)
    try:
        result = execute_playbook(
            definitions,
            spec.id,
            instance=instance,
            run_config=run_config,
            partition_key=request.partition,
            run_id=request.run_id,
            tags={
                "playbook/launched_by": "cli",
                **process_tags(),
                TAG_DATA_WAREHOUSE: warehouse,
                TAG_CRM: crm,
                TAG_SAVE_ARTIFACTS: str(request.save_artifacts).lower(),
                **request.tags,
            },
        )
    except dg.DagsterInvalidConfigError as e:
        # Dagster refused to start the run (e.g. a connection's secret is not set): nothing ran.
        raise PlaybookValidationError(
            f"the run could not start: {_config_problems(e)}",
            hint="set the environment variables the connections name",
        ) from e
    reports, record_errors = reports_of(result, spec.id)
    if reports:
        report = reports[0]
        problem = record_errors.get(report["run_id"])
        if problem is not None:
            cause = ArtifactWriteError(str(problem["message"]), hint=problem.get("hint"))
            raise RunRecordNotStoredError(report, cause)
        return report
    # The run failed before its op could run (e.g. a connection could not be set up).
    save = request.save_artifacts and request.config.artifacts.enabled
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    info, _ = run_info_of(instance, request.loaded, run, data_warehouse=warehouse, crm=crm)
    outcome = outcome_of_ended_run(instance, request.loaded, run, failure_message(instance, run))
    artifacts_dir = request.config.artifacts_dir
    report = build_report(
        request.loaded, info, outcome, artifacts_dir=artifacts_dir if save else None
    )
    if save:
        write_run_record(report, request.loaded, [], artifacts_dir)
    return report


def _config_problems(error: dg.DagsterInvalidConfigError) -> str:
    """Dagster's config errors in one line each, without their stack traces."""
    problems: list[str] = []
    for item in error.errors:
        missing = re.search(r'environment variable "([^"]+)" which is not set', item.message)
        if missing:
            problems.append(f"environment variable {missing.group(1)} is not set")
        else:
            problems.append(item.message.strip().splitlines()[0])
    return "; ".join(dict.fromkeys(problems)) or str(error)


def reports_of(
    result: dg.ExecuteInProcessResult, playbook_id: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The run reports a playbook's op handed over, from the run's own events (in its report
    asset's materialization when it succeeded, in its failure when it failed), and the run
    records it could not write."""
    for event in result.all_events:
        metadata: Mapping[str, Any] | None = None
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            key = event.asset_key
            if key == asset_key(playbook_id, REPORT_ASSET):
                metadata = event.step_materialization_data.materialization.metadata
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE and event.step_key == playbook_id:
            failure = event.step_failure_data.user_failure_data
            metadata = failure.metadata if failure is not None else None
        value = metadata.get(REPORTS_KEY) if metadata is not None else None
        if metadata is not None and value is not None:
            errors = metadata.get(RECORD_ERRORS_KEY)
            return list(value.value), dict(errors.value) if errors is not None else {}  # type: ignore[arg-type]
    return [], {}


def execute_playbook(
    definitions: dg.Definitions,
    playbook_id: str,
    *,
    instance: dg.DagsterInstance,
    run_config: Mapping[str, Any] | None = None,
    partition_key: str | None = None,
    tags: Mapping[str, str] | None = None,
    assets: Sequence[str] | None = None,
    run_id: str | None = None,
) -> dg.ExecuteInProcessResult:
    """Run a playbook in this process: Dagster's implicit asset job with the playbook's assets
    selected (or only the named ``assets``: steps, outputs, ``run_report``), as a run launched
    from the UI or a schedule is. Failures are in the result, not raised."""
    job = definitions.resolve_implicit_global_asset_job_def()
    keys = definitions.resolve_assets_def(asset_key(playbook_id, REPORT_ASSET)).keys
    if assets is not None:
        keys = {asset_key(playbook_id, name) for name in assets}
    return job.execute_in_process(
        run_config=dict(run_config or {}),
        instance=instance,
        partition_key=partition_key,
        asset_selection=sorted(keys),
        raise_on_error=False,
        run_id=run_id,
        tags={TAG_PLAYBOOK: playbook_id, **(tags or {})},
    )


def check_partition(
    spec: PlaybookSpec, partition: str | None, instance: dg.DagsterInstance
) -> None:
    """A partitioned playbook needs an existing partition key; another one takes none."""
    partitions = partitions_definition(spec.partitions)
    if partitions is None:
        if partition is not None:
            raise PlaybookValidationError(f"playbook '{spec.id}' has no partitions")
        return
    keys = list(partitions.get_partition_keys(dynamic_partitions_store=instance))
    if partition is None:
        latest = f"; the latest is {keys[-1]}" if keys else ""
        raise PlaybookValidationError(
            f"playbook '{spec.id}' is partitioned: pass --partition KEY{latest}"
        )
    if partition not in keys:
        hint = unknown_name_hint(partition, keys[-200:], "partition")
        if isinstance(spec.partitions, DynamicPartitions):
            hint = f"add it with: playbook partitions add {spec.partitions.name} {partition}"
        raise PlaybookValidationError(f"'{partition}' is not a partition of '{spec.id}'", hint=hint)
