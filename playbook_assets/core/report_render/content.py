"""What a rendered run report says, in order, whatever the format: built once from the run
report (JSON), the playbook and the report's tables, then written as Markdown or HTML."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from playbook_assets.core.report_render.charts import Chart
from playbook_assets.core.report_render.data import ChartData, ReportData, TablePreview
from playbook_assets.core.report_render.formatting import (
    NULL_TEXT,
    Cell,
    ColumnKind,
    NumberFormat,
    cell,
    compact,
    exact_number,
    grouped_digits,
    number_cell,
    number_format,
)
from playbook_assets.core.report_render.svg import chart_svg
from playbook_assets.core.spec import PlaybookSpec


@dataclass(frozen=True)
class Table:
    """A table of cells; ``numeric`` marks the columns aligned right."""

    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    numeric: tuple[bool, ...]


@dataclass(frozen=True)
class Block:
    """A named part of a section: a table, a note, or both."""

    name: str
    table: Table | None = None
    note: str = ""


@dataclass(frozen=True)
class Figure:
    """A chart: drawn (``svg``), a table, or the reason it is not there."""

    title: str
    description: str = ""
    svg: str | None = None
    table: Table | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class ReportView:
    """Everything a rendered report shows, formatted, with exact values beside."""

    title: str
    description: str
    status: str
    error: str | None
    facts: tuple[tuple[str, str], ...]
    parameters: Table
    insights: tuple[str, ...]
    aggregates: tuple[Block, ...]
    figures: tuple[Figure, ...]
    steps: Table
    checks: Table | None
    outputs: tuple[Block, ...]


def report_view(report: Mapping[str, Any], spec: PlaybookSpec, data: ReportData) -> ReportView:
    """The report as people read it (the JSON report keeps every exact value)."""
    aggregates: list[Block] = []
    outputs: list[Block] = []
    for name, output in report["outputs"].items():
        if output["type"] == "aggregate":
            aggregates.append(_aggregate_block(name, output))
        else:
            outputs.append(_output_block(name, output, data.previews.get(name)))
    return ReportView(
        title=str(report["playbook_name"]),
        description=spec.description.strip(),
        status=str(report["status"]),
        error=report.get("error"),
        facts=_facts(report),
        parameters=_parameters(report["metadata"]["parameters_used"]),
        insights=tuple(report["insights"]),
        aggregates=tuple(aggregates),
        figures=tuple(
            _figure(chart, f"chart-{report['run_id']}-{index}")
            for index, chart in enumerate(data.charts)
        ),
        steps=_steps(report["steps"]),
        checks=_checks(report["checks"]) if report["checks"] else None,
        outputs=tuple(outputs),
    )


def format_duration(milliseconds: float) -> str:
    """``56.8 ms``, ``2.35 s``."""
    if milliseconds < 1000:
        return f"{milliseconds:,.1f} ms"
    return f"{milliseconds / 1000:,.2f} s"


def format_timestamp(text: str) -> str:
    """An ISO time as ``Dec 1, 2026, 20:58:49 UTC``."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
    return f"{moment:%b} {moment.day}, {moment.year}, {moment:%H:%M:%S} UTC"


def _facts(report: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    metadata = report["metadata"]
    summary = report["summary"]
    ran = summary["total_steps"] - summary["not_selected_steps"]
    steps = f"{summary['successful_steps']} of {ran} succeeded"
    if summary["cached_steps"]:
        steps += f" ({summary['cached_steps']} from cache)"
    for key, word in (("failed_steps", "failed"), ("skipped_steps", "skipped")):
        if summary[key]:
            steps += f", {summary[key]} {word}"
    if summary["not_selected_steps"]:
        steps += f"; {summary['not_selected_steps']} not in this run"
    facts = [
        ("Executed", format_timestamp(report["executed_at"])),
        ("Run", str(report["run_id"])),
        ("Dagster run", str(report["dagster_run_id"])),
    ]
    if report.get("partition") is not None:
        facts.append(("Partition", str(report["partition"])))
    connections = [
        f"{label} {metadata[key]}"
        for key, label in (("data_warehouse", "data warehouse"), ("crm", "CRM"))
        if metadata.get(key)
    ]
    facts.append(("Connections", ", ".join(connections) or NULL_TEXT))
    version = report.get("playbook_version")
    playbook = str(metadata.get("playbook_file") or report["playbook_id"])
    if version:
        playbook += f", version {version}"
    facts.append(("Playbook", playbook))
    facts.append(
        ("Steps", f"{steps}, {format_duration(summary['total_execution_time_ms'])} in all")
    )
    if metadata.get("rerun_of"):
        facts.append(("Rerun of", str(metadata["rerun_of"])))
    return tuple(facts)


def _kind_of(value: Any) -> ColumnKind:
    """The kind of a JSON value (exact decimals that a float cannot hold are text)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str) and exact_number(value) is not None:
        return "decimal"
    return "text"


def _parameters(parameters: Mapping[str, Any]) -> Table:
    rows = []
    for name, value in parameters.items():
        if isinstance(value, list):
            shown = Cell(", ".join(str(item) for item in value) or NULL_TEXT)
        else:
            shown = cell(value, name, _kind_of(value))
        rows.append((Cell(name), shown))
    return Table(("Parameter", "Value"), tuple(rows), (False, False))


def _aggregate_block(name: str, output: Mapping[str, Any]) -> Block:
    if output["status"] != "success":
        return Block(name, note=_not_produced(output))
    rows = []
    for metric, value in output.get("values", {}).items():
        kind = _kind_of(value)
        chosen: NumberFormat | None = number_format(metric, kind)
        number = exact_number(value) if chosen is not None else None
        if number is None:
            shown = cell(value, metric, kind)
            rows.append((Cell(metric), shown, Cell(shown.exact or shown.text)))
            continue
        rows.append(
            (
                Cell(metric),
                number_cell(number, compact(number, chosen)),
                number_cell(number, grouped_digits(number)),
            )
        )
    return Block(name, table=Table(("Metric", "Value", "Exact"), tuple(rows), (False, True, True)))


def _output_block(name: str, output: Mapping[str, Any], preview: TablePreview | None) -> Block:
    if output["status"] != "success":
        return Block(name, note=_not_produced(output))
    if preview is None:
        return Block(name, note=f"{output.get('row_count') or 0:,} rows (not kept for the report)")
    shown = len(preview.rows)
    if preview.row_count == 0:
        note = "no rows"
    elif shown < preview.row_count:
        note = f"the first {shown:,} of {preview.row_count:,} rows"
    else:
        note = f"{preview.row_count:,} rows"
    return Block(name, table=preview_table(preview), note=note)


def preview_table(preview: TablePreview) -> Table:
    """A table of first rows, each value formatted by its column."""
    columns = preview.columns
    rows = tuple(
        tuple(
            cell(value, column.name, column.kind)
            for value, column in zip(row, columns, strict=True)
        )
        for row in preview.rows
    )
    numeric = tuple(number_format(column.name, column.kind) is not None for column in columns)
    return Table(tuple(column.name for column in columns), rows, numeric)


def _not_produced(output: Mapping[str, Any]) -> str:
    status = output["status"]
    if status == "not_selected":
        return "not part of this run"
    detail = output.get("error") or output.get("reason")
    return f"{status}: {detail}" if detail else str(status)


def _figure(data: ChartData, chart_id: str) -> Figure:
    chart: Chart = data.chart
    if data.error is not None:
        return Figure(chart.title, chart.description, error=data.error)
    if data.table is not None:
        return Figure(
            chart.title, chart.description, table=preview_table(data.table), notes=data.notes
        )
    if not data.categories:
        return Figure(chart.title, chart.description, notes=("No rows to chart.", *data.notes))
    return Figure(chart.title, chart.description, svg=chart_svg(data, chart_id), notes=data.notes)


def _steps(steps: Sequence[Mapping[str, Any]]) -> Table:
    rows = []
    for step in steps:
        title = str(step["name"])
        name = title if title == step["step_id"] else f"{title} ({step['step_id']})"
        rows_cell = (
            Cell(NULL_TEXT)
            if step["row_count"] is None
            else number_cell(_decimal(step["row_count"]), f"{step['row_count']:,}")
        )
        milliseconds = float(step["execution_time_ms"])
        cached = step.get("cached_from")
        cached_text = "no"
        if cached:
            cached_text = f"from {cached.get('run_id')}"
            if cached.get("executed_at"):
                cached_text += f" ({format_timestamp(str(cached['executed_at']))})"
        detail = step.get("error") or step.get("reason") or NULL_TEXT
        rows.append(
            (
                Cell(name),
                Cell(f"{step['type']} ({step['source']})"),
                Cell(str(step["status"])),
                rows_cell,
                number_cell(_decimal(milliseconds), format_duration(milliseconds)),
                Cell(cached_text),
                Cell(str(detail)),
            )
        )
    headers = ("Step", "Type", "Status", "Rows", "Time", "Cached", "Error or reason")
    return Table(headers, tuple(rows), (False, False, False, True, True, False, False))


def _checks(checks: Sequence[Mapping[str, Any]]) -> Table:
    rows = []
    for check in checks:
        observed = check.get("observed")
        rows.append(
            (
                Cell(str(check["asset"])),
                Cell(str(check["check"])),
                Cell("passed" if check["passed"] else "failed"),
                Cell(str(check["severity"])),
                cell(observed, "observed", _kind_of(observed))
                if not isinstance(observed, dict | list)
                else Cell(str(observed)),
                Cell(str(check.get("description") or NULL_TEXT)),
            )
        )
    headers = ("Asset", "Check", "Result", "Severity", "Observed", "Description")
    return Table(headers, tuple(rows), (False, False, False, False, True, False))


def _decimal(value: int | float) -> decimal.Decimal:
    number = exact_number(value)
    assert number is not None
    return number
