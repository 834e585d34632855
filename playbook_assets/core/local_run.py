"""Running a playbook on its own, with no Dagster: in this process, with the connections
given, its results kept in memory (or stored as artifacts with its run record when a folder is
given). This is what programs use that need a run's report without an orchestrator (tests of
playbooks, an agent's server)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from playbook_assets.core.engine import Event, PlaybookRun, ResultsReady
from playbook_assets.core.errors import TerminalStepError
from playbook_assets.core.partitions import PartitionUnit
from playbook_assets.core.plan import PlaybookPlan
from playbook_assets.core.report import RunInfo
from playbook_assets.core.results import Result
from playbook_assets.core.run_reports import RunReports, run_reports
from playbook_assets.core.run_state import unit_id
from playbook_assets.core.step_execution import ExecutionSettings, RunEnvironment, RunLog
from playbook_assets.core.steps.base import StepServices

if TYPE_CHECKING:
    from playbook_assets.core.catalog import LoadedPlaybook

_logger = logging.getLogger(__name__)


@dataclass
class LocalRun:
    """What a local run gave: every partition's report and every result it produced."""

    reports: RunReports
    results: dict[str, Mapping[str, Result]] = field(default_factory=dict)

    @property
    def report(self) -> dict[str, Any]:
        """The report of a run of one partition (or of an unpartitioned playbook)."""
        return self.reports.reports[0]

    def table(self, name: str) -> pa.Table:
        """A step's or output's result (of the run's only partition)."""
        (result,) = self.results[name].values()
        return result.table


def run_locally(
    loaded: LoadedPlaybook,
    services: StepServices,
    *,
    parameters: Mapping[str, Any],
    data_warehouse: str,
    crm: str,
    settings: ExecutionSettings | None = None,
    artifacts_dir: Path | None = None,
    partition: PartitionUnit | None = None,
    log: RunLog | None = None,
    events: list[Event] | None = None,
    only: set[str] | None = None,
    given: Mapping[str, pa.Table] | None = None,
) -> LocalRun:
    """Run a playbook now with ``services`` (its connections and sources) and checked
    ``parameters``; ``events``, when given, receives what the run produced as it goes.

    ``only`` names the steps and outputs to run (default: all). A step of ``given`` does not
    run: the steps that read it get its table, as a run of part of a playbook reads a stored
    result (this is how a playbook's tests replace what a source would return).
    """
    plan = PlaybookPlan.build(loaded, data_warehouse, crm)
    tables = dict(given or {})

    def stored_result(step_id: str, partition: str | None) -> pa.Table:
        if step_id in tables:
            return tables[step_id]
        return _nothing_stored(step_id, partition)

    env = RunEnvironment(
        services=services,
        settings=settings or ExecutionSettings(),
        log=log or _logger,
        stored_result=stored_result,
    )
    unit = partition or PartitionUnit(None, None)
    names = only or {*loaded.spec.step_ids, *(output.name for output in loaded.spec.outputs)}
    names = names - set(tables)
    run_id = uuid.uuid4().hex
    run = PlaybookRun(
        plan,
        env,
        selected=names,
        units=[unit],
        parameters=parameters,
        run_id=run_id,
        artifacts_dir=artifacts_dir,
    )
    produced = LocalRun(RunReports())
    for event in _events(run):
        if events is not None:
            events.append(event)
        if isinstance(event, ResultsReady):
            produced.results[event.name] = event.results
    info = RunInfo(
        playbook_id=loaded.id,
        dagster_run_id=run_id,
        started=dt.datetime.now(dt.UTC),
        parameters=parameters,
        data_warehouse=data_warehouse,
        crm=crm,
        partition=unit.key,
    )
    produced.reports = run_reports(run, {unit_id(unit): info})
    return produced


def _events(run: PlaybookRun) -> Iterator[Event]:
    yield from run.run()


def _nothing_stored(step_id: str, partition: str | None) -> pa.Table:
    raise TerminalStepError(
        f"step '{step_id}' is not in the run and nothing is stored outside Dagster",
        hint="run the whole playbook",
    )
