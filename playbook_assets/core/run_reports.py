"""The run reports of a finished run, one per partition, and their run records.

Each partition's report is built from the run's state in memory (``report.build_report``);
when results are stored, its record (the JSON report, its HTML page, the manifest of the
files and the playbook as it ran) is written whatever the outcome. A record that cannot be
written (a full disk) is said, and the report is still handed over.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from playbook_assets.core.engine import PlaybookRun
from playbook_assets.core.errors import PlaybookError
from playbook_assets.core.partitions import PartitionUnit
from playbook_assets.core.report import RunInfo, build_report
from playbook_assets.core.report_render.content import ReportView, report_view
from playbook_assets.core.report_render.html import html_report
from playbook_assets.core.run_records import RunRecordNotStoredError, write_run_record
from playbook_assets.core.run_state import outcome_of, unit_id


@dataclass
class RunReports:
    """Every partition's report, its rendered view, and the records not stored."""

    reports: list[dict[str, Any]] = field(default_factory=list)
    # The report as people read it, by run id (None when it could not be drawn).
    views: dict[str, ReportView | None] = field(default_factory=dict)
    # Records that could not be written: {run id: {"message", "hint"}}.
    record_errors: dict[str, dict[str, str | None]] = field(default_factory=dict)


def run_reports(run: PlaybookRun, infos: Mapping[str, RunInfo]) -> RunReports:
    """The reports of a finished run (``infos``: each partition's run info, by unit id),
    their records written when results are stored."""
    found = RunReports()
    for unit in run.units:
        info = infos[unit_id(unit)]
        outcome = outcome_of(
            run.spec.step_ids,
            [output.name for output in run.spec.outputs],
            run.steps,
            run.outputs,
            [output.name for output in run.selected_outputs],
            unit_id(unit),
            run.error,
        )
        report = build_report(run.loaded, info, outcome, artifacts_dir=run.artifacts_dir)
        view = _view(run, unit, report)
        found.views[report["run_id"]] = view
        if run.artifacts_dir is not None:
            html = html_report(view, report["run_id"]) if view is not None else None
            try:
                write_run_record(
                    report, run.loaded, artifacts(run, unit), run.artifacts_dir, html=html
                )
            except RunRecordNotStoredError as e:
                # The run happened: its report is still handed over, with what could not be
                # written (the command line prints both).
                report = {**report, "artifact_path": None}
                cause = e.__cause__ if isinstance(e.__cause__, PlaybookError) else e
                found.record_errors[report["run_id"]] = {
                    "message": cause.message,
                    "hint": cause.hint,
                }
                run.env.log.error(str(e))
        found.reports.append(report)
    return found


def artifacts(run: PlaybookRun, unit: PartitionUnit) -> list[dict[str, Any]]:
    """The files a run stored for one partition, for its manifest."""
    unit_key = unit_id(unit)
    named = [
        (step_id, state.summary(unit_key) if state.error is None else None)
        for step_id, state in run.steps.items()
    ]
    named += [(name, state.summaries.get(unit_key)) for name, state in run.outputs.items()]
    entries: list[dict[str, Any]] = []
    for name, summary in named:
        path = run.artifact_path(name, unit)
        if summary is None or summary.sha256 is None or path is None:
            continue
        entry: dict[str, Any] = {
            "asset": f"{run.spec.id}/{name}",
            "partition": unit.key,
            "path": str(path),
            "sha256": summary.sha256,
            "rows": summary.rows,
            "bytes": summary.size,
        }
        cached_from = summary.metadata.get("cached_from_run_id")
        if cached_from:
            entry["cached_from"] = cached_from
        entries.append(entry)
    return entries


def _view(run: PlaybookRun, unit: PartitionUnit, report: Mapping[str, Any]) -> ReportView | None:
    """The report as people read it; None when it cannot be drawn (logged): the run's record
    and its JSON report never depend on it."""
    try:
        return report_view(report, run.spec, run.report_tables[unit_id(unit)].data(report))
    except Exception as e:
        run.env.log.error(
            "the run report could not be rendered: " + "".join(traceback.format_exception(e))
        )
        return None
