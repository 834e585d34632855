"""Which charts a run report shows: the playbook's ``charts:``, and a default bar chart for
each grouped aggregate step that none of them draws; and their validation.

A chart reads one step's result. Its columns are checked when the playbook is validated
wherever the step's columns can be known then (transforms, searches with properties); the
rest is checked against the result when the report is drawn, and a chart that cannot be drawn
says why in the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from playbook_assets.core.errors import PlaybookError, PlaybookValidationError, unknown_name_hint
from playbook_assets.core.insights import humanize
from playbook_assets.core.references import whole_reference
from playbook_assets.core.spec import (
    AggregateStep,
    ChartAggregate,
    ChartFormat,
    ChartSort,
    ChartSpec,
    ChartTimeUnit,
    ChartType,
    PlaybookSpec,
)
from playbook_assets.core.yaml_source import YamlDocument

DEFAULT_LIMITS: Mapping[ChartType, int] = {"bar": 20, "line": 500, "table": 10}
COUNT_COLUMN = "count"
_AGGREGATE_WORDS: Mapping[ChartAggregate, str] = {
    "sum": "Total",
    "avg": "Average",
    "min": "Smallest",
    "max": "Largest",
    "count": "Count",
}


@dataclass(frozen=True)
class Chart:
    """A chart of the report with every default filled in."""

    type: ChartType
    step: str
    title: str
    description: str = ""
    x: str | None = None
    y: tuple[str, ...] = ()
    series: str | None = None
    aggregate: ChartAggregate | None = None
    time_unit: ChartTimeUnit | None = None
    sort: ChartSort = "none"
    limit: int = 20
    columns: tuple[str, ...] = ()
    format: ChartFormat | None = None

    @property
    def values(self) -> tuple[str, ...]:
        """The names of the charted values: the y columns, or ``count``."""
        return self.y or (COUNT_COLUMN,)


def report_charts(spec: PlaybookSpec) -> list[Chart]:
    """The charts of a playbook's report, declared ones first, in order."""
    charts = [_resolved(chart, spec) for chart in spec.charts]
    drawn = {chart.step for chart in charts}
    for step in spec.steps:
        if isinstance(step, AggregateStep) and step.id not in drawn:
            default = default_chart(step)
            if default is not None:
                charts.append(default)
    return charts


def default_chart(step: AggregateStep) -> Chart | None:
    """A bar chart of a grouped aggregate's first metric by its first group column (the
    second one, if any, splits the bars into series); None for one with no group or more
    than two, which no bar chart shows faithfully."""
    groups = step.config.group_by
    if not groups or len(groups) > 2:
        return None
    metric = step.config.metrics[0].name
    return Chart(
        type="bar",
        step=step.id,
        title=step.title,
        x=groups[0],
        y=(metric,),
        series=groups[1] if len(groups) == 2 else None,
        sort="y_desc",
        limit=DEFAULT_LIMITS["bar"],
    )


def _resolved(chart: ChartSpec, spec: PlaybookSpec) -> Chart:
    reference = whole_reference(chart.data)
    assert reference is not None  # check_charts made sure
    step_id = reference.name
    y = tuple(chart.y_columns)
    if chart.type == "line":
        sort: ChartSort = "x"
    elif chart.sort is not None:
        sort = chart.sort
    else:
        sort = "y_desc" if chart.aggregate is not None else "none"
    return Chart(
        type=chart.type,
        step=step_id,
        title=chart.title or _default_title(chart, spec.step(step_id).title, y),
        description=chart.description,
        x=chart.x,
        y=y,
        series=chart.series,
        aggregate=chart.aggregate,
        time_unit=chart.time_unit,
        sort=sort,
        limit=chart.limit or DEFAULT_LIMITS[chart.type],
        columns=tuple(chart.columns),
        format=chart.format,
    )


def _default_title(chart: ChartSpec, step_title: str, y: tuple[str, ...]) -> str:
    if chart.type == "table":
        return step_title
    measured = ", ".join(y) if y else step_title
    if chart.aggregate is not None:
        measured = f"{_AGGREGATE_WORDS[chart.aggregate]} {measured}".strip()
    by = f"{chart.x} by {chart.time_unit}" if chart.time_unit else chart.x
    return humanize(f"{measured} by {by}")


def check_charts(
    spec: PlaybookSpec, document: YamlDocument, columns: Mapping[str, list[str] | None]
) -> None:
    """Validate the playbook's charts: each reads a step of the playbook, and names only
    columns its result has, where those are known (``columns``: each step's result columns,
    None when they are known only once it runs)."""
    for index, chart in enumerate(spec.charts):

        def where(*path: str | int, index: int = index) -> list[str | int]:
            return ["playbook", "charts", index, *path]

        try:
            reference = whole_reference(chart.data)
        except PlaybookError as e:
            raise e.at(location=document.location(where("data")), field="charts.data") from None
        if reference is None or reference.kind != "steps" or reference.column is not None:
            raise PlaybookValidationError(
                f"a chart's data must be a whole step result like ${{steps.ID}}, "
                f"got '{chart.data}'",
                location=document.location(where("data")),
                field="charts.data",
            )
        if reference.name not in spec.step_ids:
            raise PlaybookValidationError(
                f"chart reads unknown step '{reference.name}' in {reference.text}",
                location=document.location(where("data")),
                field="charts.data",
                hint=unknown_name_hint(reference.name, spec.step_ids, "step"),
            )
        known = columns.get(reference.name)
        if known is None:
            continue
        named: list[tuple[str, str, list[str | int]]] = []
        for key in ("x", "series"):
            value = getattr(chart, key)
            if value is not None:
                named.append((value, key, where(key)))
        if isinstance(chart.y, str):
            named.append((chart.y, "y", where("y")))
        else:
            named += [(name, "y", where("y", i)) for i, name in enumerate(chart.y or [])]
        named += [(name, "columns", where("columns", i)) for i, name in enumerate(chart.columns)]
        for name, key, path in named:
            if name not in known:
                raise PlaybookValidationError(
                    f"chart names unknown column '{name}' of step '{reference.name}'",
                    location=document.location(path),
                    field=f"charts.{key}",
                    hint=unknown_name_hint(name, known, "column"),
                )
