"""The charts of a playbook's run report, as declared in its YAML."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from playbook_assets.core.models import StrictModel

ChartType = Literal["bar", "line", "table"]
ChartAggregate = Literal["sum", "avg", "min", "max", "count"]
ChartTimeUnit = Literal["day", "week", "month", "quarter", "year"]
ChartSort = Literal["y_desc", "y_asc", "x", "none"]
ChartFormat = Literal["money", "percent", "integer", "number"]


class ChartSpec(StrictModel):
    """A chart of the run report, drawn from one step's result."""

    type: ChartType = Field(
        description="bar (categories), line (over a date or number) or table (the first rows)."
    )
    data: str = Field(description="The step whose result is charted: ${steps.ID}.")
    title: str | None = Field(default=None, description="Title (default: from y and x).")
    description: str = Field(default="", description="A sentence shown with the chart.")
    x: str | None = Field(
        default=None, description="bar: the category column; line: the date or number column."
    )
    y: str | list[str] | None = Field(
        default=None,
        description="bar, line: the numeric column (or columns, one series each); optional "
        "with aggregate: count.",
    )
    series: str | None = Field(
        default=None,
        description="bar, line: a column whose values split the one y column into a series each.",
    )
    aggregate: ChartAggregate | None = Field(
        default=None,
        description="Group the rows by x (and series) and take the sum, avg, min or max of y, "
        "or count the rows (default: each row is a point).",
    )
    time_unit: ChartTimeUnit | None = Field(
        default=None,
        description="With aggregate: group a date x by day, week, month, quarter or year.",
    )
    sort: ChartSort | None = Field(
        default=None,
        description="y_desc, y_asc, x or none (the step's row order); default: y_desc for an "
        "aggregated bar chart, none for other bar charts and tables; a line is always in x order.",
    )
    limit: int | None = Field(
        default=None,
        ge=1,
        description="Most bars (default 20), points (500) or rows (10); the report says when "
        "there were more.",
    )
    columns: list[str] = Field(
        default_factory=list, description="table: the columns shown (default: all)."
    )
    format: ChartFormat | None = Field(
        default=None,
        description="How y values read: money, percent (0.25 -> 25%), integer or number "
        "(default: from the column's name and type).",
    )

    @model_validator(mode="after")
    def _fields_match_type(self) -> ChartSpec:
        if self.type == "table":
            drawn = {
                "x": self.x,
                "y": self.y,
                "series": self.series,
                "aggregate": self.aggregate,
                "time_unit": self.time_unit,
                "format": self.format,
            }
            given = [name for name, value in drawn.items() if value is not None]
            if given:
                raise ValueError(f"a table chart takes 'columns', not {', '.join(given)}")
            if self.sort not in (None, "none"):
                raise ValueError("a table chart shows the step's rows in their order")
            return self
        if self.columns:
            raise ValueError(f"'columns' is for table charts; a {self.type} chart takes x and y")
        if self.x is None:
            raise ValueError(f"a {self.type} chart needs 'x'")
        if not self.y_columns and self.aggregate != "count":
            raise ValueError(f"a {self.type} chart needs 'y' (or aggregate: count)")
        if self.series is not None and len(self.y_columns) > 1:
            raise ValueError("'series' splits one y column; give a single y with it")
        if self.time_unit is not None and self.aggregate is None:
            raise ValueError("time_unit groups rows: give 'aggregate' too (e.g. aggregate: sum)")
        if self.aggregate is not None and self.sort == "none":
            raise ValueError(
                "aggregated groups have no row order of their own: use sort x, y_desc or y_asc"
            )
        if self.type == "line" and self.sort not in (None, "x"):
            raise ValueError("a line is drawn in x order: leave out 'sort'")
        return self

    @property
    def y_columns(self) -> list[str]:
        """The y columns as a list."""
        if self.y is None:
            return []
        return [self.y] if isinstance(self.y, str) else list(self.y)
