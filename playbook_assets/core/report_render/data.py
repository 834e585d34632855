"""What a run report shows of a run's tables: the first rows of each data output and the
points of each chart, taken from each step's result (Arrow) once it is complete.

The playbook's op lets a result go as soon as no step reads it, so it hands each result to
``ReportTables.add`` when the step is done; ``playbook report`` hands it the stored Parquet
files instead (``stored``). Either way the same functions turn the same tables into the same
figures. Values stay exact (``insights.json_value``); charts are computed by DuckDB over the
Arrow table, so sums of integers widen instead of wrapping around and decimals keep every
digit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from playbook_assets.core.errors import PlaybookError
from playbook_assets.core.expressions import quote_identifier, resolve_column
from playbook_assets.core.file_access import scratch_connection
from playbook_assets.core.insights import json_value
from playbook_assets.core.references import whole_reference
from playbook_assets.core.report_render.charts import Chart, report_charts
from playbook_assets.core.report_render.formatting import NUMERIC_KINDS, ColumnKind, column_kind
from playbook_assets.core.spec import PlaybookSpec

if TYPE_CHECKING:
    import duckdb

PREVIEW_ROWS = 10
MAX_SERIES = 12
_SQL_AGGREGATES = {"sum": "SUM", "avg": "AVG", "min": "MIN", "max": "MAX", "count": "COUNT"}
_ORDER = {
    "y_desc": '"v0" DESC NULLS LAST, "x" ASC NULLS LAST',
    "y_asc": '"v0" ASC NULLS LAST, "x" ASC NULLS LAST',
    "x": '"x" ASC NULLS LAST',
}


@dataclass(frozen=True)
class Column:
    """A column of a table shown in the report."""

    name: str
    kind: ColumnKind


@dataclass(frozen=True)
class TablePreview:
    """The first rows of a table (exact JSON values) and how many rows it has."""

    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]
    row_count: int


@dataclass(frozen=True)
class Series:
    """One series of a chart: a value (or None) per category, from value column ``column``
    (a y column, or ``count``) of kind ``kind``."""

    name: str
    values: tuple[Any, ...]
    column: str
    kind: ColumnKind


@dataclass(frozen=True)
class ChartData:
    """A chart with its points, or the reason it cannot be drawn."""

    chart: Chart
    categories: tuple[Any, ...] = ()
    series: tuple[Series, ...] = ()
    x_kind: ColumnKind = "text"
    # Categories (bar), points (line) or rows (table) before the limit.
    total: int = 0
    table: TablePreview | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class ReportData:
    """What the report shows beside the run report's JSON."""

    previews: Mapping[str, TablePreview] = field(default_factory=dict)
    charts: tuple[ChartData, ...] = ()


def table_preview(table: pa.Table, rows: int = PREVIEW_ROWS) -> TablePreview:
    """The first ``rows`` rows of a table, exact."""
    columns = tuple(Column(f.name, column_kind(f.type)) for f in table.schema)
    first = table.slice(0, rows).to_pylist()
    return TablePreview(
        columns=columns,
        rows=tuple(tuple(json_value(value) for value in row.values()) for row in first),
        row_count=table.num_rows,
    )


class ReportTables:
    """Collects what the report shows of a run's tables, one step result at a time."""

    def __init__(self, spec: PlaybookSpec) -> None:
        self.spec = spec
        self.charts = report_charts(spec)
        self._outputs_of: dict[str, list[str]] = {}
        for output in spec.outputs:
            reference = whole_reference(output.source)
            if output.type == "data" and reference is not None:
                self._outputs_of.setdefault(reference.name, []).append(output.name)
        self._previews: dict[str, TablePreview] = {}
        self._charts: dict[int, ChartData] = {}
        # One in-memory database for every chart (each chart works in a cursor of its own):
        # opening a DuckDB connection costs about 15 ms, three times a chart's own work.
        self._database: duckdb.DuckDBPyConnection | None = None

    @property
    def steps(self) -> frozenset[str]:
        """The steps whose results the report reads."""
        return frozenset([*self._outputs_of, *(chart.step for chart in self.charts)])

    def add(self, step_id: str, table: pa.Table) -> None:
        """Take what the report needs from a step's complete result."""
        outputs = self._outputs_of.get(step_id, [])
        if outputs:
            preview = table_preview(table)
            for name in outputs:
                self._previews[name] = preview
        for index, chart in enumerate(self.charts):
            if chart.step == step_id:
                if self._database is None:
                    self._database = scratch_connection()
                self._charts[index] = chart_data(chart, table, self._database)

    def data(self, report: Mapping[str, Any]) -> ReportData:
        """The previews and charts of a run, given its report: a chart whose step did not
        produce a result in the run says so. Nothing is added after it."""
        if self._database is not None:
            self._database.close()
            self._database = None
        status = {step["step_id"]: step for step in report["steps"]}
        charts: list[ChartData] = []
        for index, chart in enumerate(self.charts):
            step = status.get(chart.step, {})
            found = self._charts.get(index)
            if step.get("status") in {"success", "cached"} and found is not None:
                charts.append(found)
            else:
                charts.append(ChartData(chart, error=_not_drawn(chart.step, step)))
        produced = {
            name for name, output in report["outputs"].items() if output.get("status") == "success"
        }
        previews = {name: p for name, p in self._previews.items() if name in produced}
        return ReportData(previews=previews, charts=tuple(charts))


def _not_drawn(step_id: str, step: Mapping[str, Any]) -> str:
    state = step.get("status")
    if state == "error":
        return f"step '{step_id}' failed: {step.get('error')}"
    if state == "skipped":
        return f"step '{step_id}' was skipped: {step.get('reason')}"
    if state == "not_selected":
        return f"step '{step_id}' was not part of this run"
    return f"no result of step '{step_id}' was kept for the report"


def chart_data(
    chart: Chart, table: pa.Table, database: duckdb.DuckDBPyConnection | None = None
) -> ChartData:
    """A chart's points from its step's result (computed in a cursor of ``database``, else
    of a database of its own); a chart the result cannot give (a missing or non-numeric
    column, repeated points) carries the reason instead."""
    import duckdb

    try:
        if chart.type == "table":
            return _table_chart(chart, table)
        if database is not None:
            return _plotted(chart, table, database)
        with scratch_connection() as own:
            return _plotted(chart, table, own)
    except PlaybookError as e:
        return ChartData(chart, error=str(e))
    except duckdb.Error as e:  # e.g. a sum past 38 digits
        return ChartData(chart, error=f"chart '{chart.title}': {e}")


def _table_chart(chart: Chart, table: pa.Table) -> ChartData:
    names = table.column_names
    context = f"chart '{chart.title}'"
    chosen = [resolve_column(name, names, context) for name in chart.columns] or names
    preview = table_preview(table.select(chosen), chart.limit)
    notes = (
        (f"The first {chart.limit:,} of {table.num_rows:,} rows.",)
        if table.num_rows > chart.limit
        else ()
    )
    return ChartData(chart, table=preview, total=table.num_rows, notes=notes)


def _plotted(chart: Chart, table: pa.Table, database: duckdb.DuckDBPyConnection) -> ChartData:
    x, ys, series, kinds = _plot_columns(chart, table)
    notes: list[str] = []
    x_sql = quote_identifier(x)
    if chart.time_unit is not None:
        x_sql = f"CAST(date_trunc('{chart.time_unit}', {x_sql}) AS DATE)"
    select = _plot_select(chart, x_sql, ys, series)
    used = list(dict.fromkeys(name for name in [x, series, *ys] if name is not None))

    with database.cursor() as connection:
        connection.register("t", table.select(used))
        where = ""
        if chart.type == "line":
            missing = _scalar(connection, f"SELECT COUNT(*) FROM t WHERE {x_sql} IS NULL")
            if missing:
                rows = "1 row" if missing == 1 else f"{missing:,} rows"
                notes.append(f"{rows} without {x} left out.")
            where = f" WHERE {x_sql} IS NOT NULL"
        grouping = " GROUP BY ALL" if chart.aggregate is not None else ""
        source = f"SELECT {', '.join(select)} FROM t{where}{grouping}"
        if chart.aggregate is not None:
            connection.execute(f"CREATE TEMP TABLE d AS {source}")
        else:
            connection.execute(f"CREATE TEMP VIEW d AS {source}")
        if series is None:
            result = _points(connection, chart)
        else:
            result = _series_points(connection, chart, table, x)
        categories, drawn, total, extra = result
    notes += extra
    shown = len(categories)
    if total > shown:
        unit = {"bar": "bars", "line": "points"}[chart.type]
        order = {"y_desc": "largest", "y_asc": "smallest"}.get(chart.sort, "first")
        notes.insert(0, f"The {order} {shown:,} of {total:,} {unit}.")
    x_kind: ColumnKind = "date" if chart.time_unit is not None else kinds[x]
    return ChartData(
        chart,
        categories=categories,
        series=drawn,
        x_kind=x_kind,
        total=total,
        notes=tuple(notes),
    )


def _plot_columns(
    chart: Chart, table: pa.Table
) -> tuple[str, list[str], str | None, dict[str, ColumnKind]]:
    """The chart's x, y and series columns as the table names them, and each column's kind;
    a y that holds no numbers, or a time unit on an x that holds no dates, is an error."""
    names = table.column_names
    context = f"chart '{chart.title}'"
    assert chart.x is not None
    x = resolve_column(chart.x, names, context)
    ys = [resolve_column(name, names, context) for name in chart.y]
    series = resolve_column(chart.series, names, context) if chart.series else None
    kinds: dict[str, ColumnKind] = {f.name: column_kind(f.type) for f in table.schema}
    for name in ys:
        if kinds[name] not in NUMERIC_KINDS:
            raise PlaybookError(
                f"{context}: column '{name}' holds {table.schema.field(name).type}, not numbers",
                hint="a chart's y must be a numeric column (or use aggregate: count)",
            )
    if chart.time_unit is not None and kinds[x] not in {"date", "timestamp"}:
        raise PlaybookError(
            f"{context}: time_unit needs a date or timestamp x; '{x}' holds "
            f"{table.schema.field(x).type}"
        )
    return x, ys, series, kinds


def _plot_select(chart: Chart, x_sql: str, ys: list[str], series: str | None) -> list[str]:
    """What the chart's query selects: ``x``, the series ``s`` if any, and a value ``v<i>``
    per y (aggregated when the chart says so; ``COUNT(*)`` when it has no y)."""
    if chart.aggregate is not None:
        function = _SQL_AGGREGATES[chart.aggregate]
        values = [f"{function}({quote_identifier(y)})" for y in ys] or ["COUNT(*)"]
    else:
        values = [quote_identifier(y) for y in ys]
    select = [f'{x_sql} AS "x"']
    if series is not None:
        select.append(f'{quote_identifier(series)} AS "s"')
    select += [f'{value} AS "v{i}"' for i, value in enumerate(values)]
    return select


_Points = tuple[tuple[Any, ...], tuple[Series, ...], int, list[str]]


def _points(connection: Any, chart: Chart) -> _Points:
    """One series per value column, a point per row of ``d``."""
    order = "" if chart.sort == "none" else f" ORDER BY {_ORDER[chart.sort]}"
    result = connection.sql(f"SELECT * FROM d{order} LIMIT {chart.limit}").to_arrow_table()
    total = _scalar(connection, "SELECT COUNT(*) FROM d")
    categories = tuple(json_value(value) for value in result.column("x").to_pylist())
    drawn = tuple(
        Series(
            name,
            tuple(json_value(v) for v in result.column(f"v{i}").to_pylist()),
            name,
            column_kind(result.schema.field(f"v{i}").type),
        )
        for i, name in enumerate(chart.values)
    )
    return categories, drawn, total, []


def _series_points(connection: Any, chart: Chart, table: pa.Table, x: str) -> _Points:
    """A series per value of the ``series`` column, a category per distinct x."""
    notes: list[str] = []
    if chart.aggregate is None:
        repeated = _scalar(
            connection,
            'SELECT COUNT(*) FROM (SELECT 1 FROM d GROUP BY "x", "s" HAVING COUNT(*) > 1)',
        )
        if repeated:
            raise PlaybookError(
                f"chart '{chart.title}': {repeated:,} pairs of {chart.x} and {chart.series} "
                "occur in more than one row, so a bar would hide some of them",
                hint="add 'aggregate: sum' (or avg, min, max, count) to the chart",
            )
    total = _scalar(connection, 'SELECT COUNT(DISTINCT "x") + MAX(("x" IS NULL)::INT) FROM d')
    if chart.sort == "none":
        # Arrow's unique keeps the order of first appearance: the step's row order.
        firsts = pc.call_function("unique", [table.column(x)])  # type: ignore[arg-type]
        keys = pa.table({"x": firsts.slice(0, chart.limit)})
    else:
        rank = {
            "y_desc": 'SUM("v0") DESC NULLS LAST, "x" ASC NULLS LAST',
            "y_asc": 'SUM("v0") ASC NULLS LAST, "x" ASC NULLS LAST',
            "x": '"x" ASC NULLS LAST',
        }[chart.sort]
        keys = connection.sql(
            f'SELECT "x" FROM d GROUP BY "x" ORDER BY {rank} LIMIT {chart.limit}'
        ).to_arrow_table()
    keys = keys.append_column("pos", pa.array(range(keys.num_rows), pa.int64()))
    connection.register("k", keys)
    joined = 'FROM d JOIN k ON d."x" IS NOT DISTINCT FROM k."x"'
    names = connection.sql(
        f'SELECT d."s" {joined} GROUP BY d."s" '
        f'ORDER BY SUM(d."v0") DESC NULLS LAST, d."s" ASC NULLS LAST'
    ).to_arrow_table()
    every = names.column("s").to_pylist()
    kept = every[:MAX_SERIES]
    if len(every) > len(kept):
        notes.append(f"The largest {len(kept)} of {len(every)} {chart.series} values.")
    points = connection.sql(f'SELECT k."pos", d."s", d."v0" {joined}').to_arrow_table()
    values: dict[Any, list[Any]] = {name: [None] * keys.num_rows for name in kept}
    for pos, name, value in zip(
        points.column("pos").to_pylist(),
        points.column("s").to_pylist(),
        points.column("v0").to_pylist(),
        strict=True,
    ):
        if name in values:
            values[name][pos] = json_value(value)
    categories = tuple(json_value(value) for value in keys.column("x").to_pylist())
    kind = column_kind(points.schema.field("v0").type)
    column = chart.values[0]
    drawn = tuple(Series(_label(name), tuple(values[name]), column, kind) for name in kept)
    return categories, drawn, total, notes


def _label(value: Any) -> str:
    return "(empty)" if value is None else str(json_value(value))


def _scalar(connection: Any, sql: str) -> int:
    ((found,),) = connection.execute(sql).fetchall()
    return int(found or 0)
