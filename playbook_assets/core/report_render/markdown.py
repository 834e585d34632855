"""The run report as Markdown (GitHub-flavoured: tables), as the Dagster UI shows it.

The UI renders Markdown without raw HTML, so each chart is an image whose source is the SVG
itself (a ``data:`` URI): nothing is fetched when it is shown.
"""

from __future__ import annotations

import base64
import re

from playbook_assets.core.report_render.content import Block, Figure, ReportView, Table

_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def markdown_report(view: ReportView) -> str:
    """The whole report as Markdown."""
    lines: list[str] = [f"# {escape(view.title)}", ""]
    if view.description:
        lines += [escape(view.description), ""]
    lines += [f"**Status: {view.status}**", ""]
    if view.error:
        lines += [f"**Error:** {escape(view.error)}", ""]
    lines += [f"- **{label}:** {escape(value)}" for label, value in view.facts]
    lines.append("")
    if view.parameters.rows:
        lines += ["## Parameters", "", *table_lines(view.parameters), ""]
    if view.insights:
        lines += ["## Insights", "", *(f"- {escape(text)}" for text in view.insights), ""]
    if view.aggregates:
        lines += ["## Summary", ""]
        for block in view.aggregates:
            lines += _block_lines(block)
    if view.figures:
        lines += ["## Charts", ""]
        for figure in view.figures:
            lines += _figure_lines(figure)
    lines += ["## Steps", "", *table_lines(view.steps), ""]
    if view.checks is not None:
        lines += ["## Checks", "", *table_lines(view.checks), ""]
    if view.outputs:
        lines += ["## Data outputs", ""]
        for block in view.outputs:
            lines += _block_lines(block)
    return "\n".join(lines).rstrip() + "\n"


def escape(text: str) -> str:
    """Text shown as it is: Markdown's special characters escaped, one line."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def table_lines(table: Table) -> list[str]:
    """A table as Markdown lines (numbers aligned right)."""
    header = "| " + " | ".join(escape(name) for name in table.headers) + " |"
    rule = "|" + "|".join("---:" if numeric else "---" for numeric in table.numeric) + "|"
    rows = ["| " + " | ".join(escape(cell.text) for cell in row) + " |" for row in table.rows]
    return [header, rule, *rows]


def _block_lines(block: Block) -> list[str]:
    lines = [f"### {escape(block.name)}", ""]
    if block.note:
        lines += [f"_{escape(block.note)}_", ""]
    if block.table is not None:
        lines += [*table_lines(block.table), ""]
    return lines


def _figure_lines(figure: Figure) -> list[str]:
    lines = [f"### {escape(figure.title)}", ""]
    if figure.description:
        lines += [escape(figure.description), ""]
    if figure.error:
        lines += [f"_Not drawn: {escape(figure.error)}_", ""]
    if figure.svg is not None:
        encoded = base64.b64encode(figure.svg.encode()).decode()
        lines += [f"![{escape(figure.title)}](data:image/svg+xml;base64,{encoded})", ""]
    if figure.table is not None:
        lines += [*table_lines(figure.table), ""]
    lines += [f"_{escape(note)}_" for note in figure.notes]
    if figure.notes:
        lines.append("")
    return lines
