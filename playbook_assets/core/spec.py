"""Pydantic models of the playbook YAML.

Every model rejects unknown keys, so a typo is an error with the file and line instead of a
setting silently ignored. The models check the shape of one playbook; checks that need the
whole playbook (references, cycles, expressions) live in ``catalog``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
PLAYBOOK_ID_PATTERN = r"^[a-z][a-z0-9_]*$"

ParameterType = Literal["string", "number", "integer", "boolean", "array", "date", "identifier"]
ElementType = Literal["string", "number", "integer", "boolean", "date"]
FilterOperator = Literal[
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "IN",
    "NOT_IN",
    "BETWEEN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
]
JoinType = Literal["inner", "left", "right", "outer"]

# Which operators take which value fields (HubSpot's CRM search semantics).
OPERATORS_WITHOUT_VALUE = frozenset({"HAS_PROPERTY", "NOT_HAS_PROPERTY"})
OPERATORS_WITH_VALUES = frozenset({"IN", "NOT_IN"})
OPERATORS_WITH_RANGE = frozenset({"BETWEEN"})


class StrictModel(BaseModel):
    """Base of every spec model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSourceSpec(StrictModel):
    """A kind of data source the playbook needs."""

    type: Literal["data_warehouse", "crm", "api", "file"] = Field(
        description="Kind of source: data_warehouse, crm, api or file."
    )
    required: bool = Field(default=True, description="Whether the playbook cannot run without it.")


class ParameterSpec(StrictModel):
    """A user-configurable parameter of the playbook."""

    name: str = Field(pattern=IDENTIFIER_PATTERN, description="Name used in ${parameters.NAME}.")
    type: ParameterType = Field(default="string", description="Type the value is checked against.")
    default: Any = Field(default=None, description="Value used when the run gives none.")
    description: str = Field(default="", description="What the parameter controls.")
    required: bool = Field(
        default=False, description="A run must give a value (only meaningful without a default)."
    )
    items: ElementType | None = Field(
        default=None,
        description="array: the type of every element (string, number, integer, boolean, "
        "date), so a list compares with a typed column however long it is; default: the type "
        "of the default's elements when they share one, else as given.",
    )

    @model_validator(mode="after")
    def _items_for_arrays(self) -> ParameterSpec:
        if self.items is not None and self.type != "array":
            raise ValueError("'items' is only for type: array")
        return self

    @property
    def element_type(self) -> ElementType | None:
        """The declared element type of an array, else the one its default's elements share."""
        if self.items is not None or self.type != "array":
            return self.items
        if not isinstance(self.default, list) or not self.default:
            return None
        kinds: set[ElementType | None] = {_yaml_element_type(item) for item in self.default}
        return next(iter(kinds)) if len(kinds) == 1 else None


def _yaml_element_type(item: Any) -> ElementType | None:
    if isinstance(item, bool):
        return "boolean"
    if isinstance(item, int):
        return "integer"
    if isinstance(item, float):
        return "number"
    if isinstance(item, dt.date):
        return "date"
    if isinstance(item, str):
        return "string"
    return None


class QueryConfig(StrictModel):
    """Configuration of a warehouse ``query`` step."""

    template: str = Field(description="SQL with {{name}} placeholders.")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Values of the placeholders: literal YAML values are SQL code; "
        "${...} references are rendered as safe literals.",
    )


class SearchFilter(StrictModel):
    """One CRM search filter, in HubSpot's terms."""

    property: str = Field(description="CRM property name, e.g. dealstage.")
    operator: FilterOperator = Field(description="Comparison operator (HubSpot names).")
    value: Any = Field(default=None, description="Value for single-value operators.")
    values: list[Any] | str | None = Field(
        default=None, description="Values for IN / NOT_IN (a list or a ${...} reference)."
    )
    high_value: Any = Field(default=None, description="Upper bound for BETWEEN.")

    @model_validator(mode="after")
    def _value_fields_match_operator(self) -> SearchFilter:
        op = self.operator
        if op in OPERATORS_WITHOUT_VALUE:
            if self.value is not None or self.values is not None or self.high_value is not None:
                raise ValueError(f"operator {op} takes no value, values or high_value")
        elif op in OPERATORS_WITH_VALUES:
            if self.values is None:
                raise ValueError(f"operator {op} needs 'values' (a list)")
            if self.value is not None or self.high_value is not None:
                raise ValueError(f"operator {op} takes 'values', not 'value'/'high_value'")
        elif op in OPERATORS_WITH_RANGE:
            if self.value is None or self.high_value is None:
                raise ValueError("operator BETWEEN needs 'value' (low) and 'high_value' (high)")
            if self.values is not None:
                raise ValueError("operator BETWEEN takes 'value' and 'high_value', not 'values'")
        else:
            if self.value is None:
                raise ValueError(f"operator {op} needs 'value'")
            if self.values is not None or self.high_value is not None:
                raise ValueError(f"operator {op} takes 'value' only")
        return self


class SearchSort(StrictModel):
    """One sort key of a CRM search."""

    property: str = Field(description="Property to sort by.")
    direction: Literal["ASCENDING", "DESCENDING"] = Field(
        default="ASCENDING", description="ASCENDING or DESCENDING."
    )


class SearchConfig(StrictModel):
    """Configuration of a CRM ``search`` step (HubSpot search semantics on every CRM)."""

    object: str = Field(description="CRM object type: deals, companies, contacts, ...")
    filters: list[SearchFilter] = Field(
        default_factory=list, description="Filters that must all match (AND)."
    )
    filter_groups: list[list[SearchFilter]] = Field(
        default_factory=list,
        description="Groups of filters: a record matches if all filters of any group match.",
    )
    properties: list[str] = Field(
        default_factory=list, description="Properties to return (default: the object's defaults)."
    )
    sorts: list[SearchSort] = Field(default_factory=list, description="Sort order of results.")
    limit: int | None = Field(
        default=None, ge=1, description="Maximum number of records (default: all matching)."
    )
    associations: list[str] = Field(
        default_factory=list,
        description="Associated object types to add as <object>_id columns, e.g. companies.",
    )

    @model_validator(mode="after")
    def _filters_or_groups(self) -> SearchConfig:
        if self.filters and self.filter_groups:
            raise ValueError("use either 'filters' or 'filter_groups', not both")
        return self

    def groups(self) -> list[list[SearchFilter]]:
        """The filter groups to OR together (``filters`` is a single group)."""
        if self.filter_groups:
            return self.filter_groups
        return [self.filters] if self.filters else []


class JoinConfig(StrictModel):
    """Configuration of a ``join`` transform."""

    left: str = Field(description="Left input: ${steps.ID}.")
    right: str = Field(description="Right input: ${steps.ID}.")
    on: str = Field(description="Join condition: 'a = b' equalities joined by AND.")
    type: JoinType = Field(default="inner", description="inner, left, right or outer.")


class MetricSpec(StrictModel):
    """A named aggregate expression."""

    name: str = Field(pattern=IDENTIFIER_PATTERN, description="Output column name.")
    expression: str = Field(
        description="Aggregate expression, e.g. SUM(arr); 'AGG(x) WHERE cond' filters it."
    )


class AggregateConfig(StrictModel):
    """Configuration of an ``aggregate`` transform."""

    input: str = Field(description="Input: ${steps.ID}.")
    group_by: list[str] = Field(default_factory=list, description="Columns to group by.")
    metrics: list[MetricSpec] = Field(min_length=1, description="Aggregates to compute.")


class FilterConfig(StrictModel):
    """Configuration of a ``filter`` transform."""

    input: str = Field(description="Input: ${steps.ID}.")
    condition: str = Field(description="Boolean expression rows must satisfy.")


class ApiAuth(StrictModel):
    """Credentials of an API request, read from environment variables when the step runs."""

    bearer_token_env: str | None = Field(
        default=None,
        pattern=IDENTIFIER_PATTERN,
        description="Environment variable holding a token sent as 'Authorization: Bearer ...'.",
    )
    header: str | None = Field(default=None, description="Header carrying an API key.")
    value_env: str | None = Field(
        default=None,
        pattern=IDENTIFIER_PATTERN,
        description="Environment variable holding the value of 'header'.",
    )

    @model_validator(mode="after")
    def _one_scheme(self) -> ApiAuth:
        if self.bearer_token_env is not None:
            if self.header is not None or self.value_env is not None:
                raise ValueError("use either bearer_token_env or header + value_env, not both")
        elif self.header is None or self.value_env is None:
            raise ValueError("give bearer_token_env, or both header and value_env")
        return self


class Pagination(StrictModel):
    """How to fetch every page of an API's results."""

    type: Literal["none", "cursor", "offset", "link_header"] = Field(
        default="none", description="none, cursor, offset or link_header (RFC 8288 rel=next)."
    )
    cursor_param: str = Field(
        default="cursor", description="cursor: query parameter (or GraphQL variable) to send."
    )
    cursor_path: str | None = Field(
        default=None, description="cursor: dotted path of the next cursor in the response."
    )
    offset_param: str = Field(default="offset", description="offset: query parameter.")
    limit_param: str = Field(default="limit", description="offset: page size parameter.")
    page_size: int = Field(default=100, ge=1, description="offset: records per page.")
    max_pages: int = Field(default=1000, ge=1, description="Stop after this many pages.")

    @model_validator(mode="after")
    def _cursor_path(self) -> Pagination:
        if self.type == "cursor" and not self.cursor_path:
            raise ValueError("cursor pagination needs 'cursor_path'")
        return self


class RequestConfig(StrictModel):
    """Configuration of a REST ``request`` step."""

    method: Literal["GET", "POST"] = Field(default="GET", description="HTTP method.")
    url: str = Field(description="http(s) URL; ${...} references in it are URL-encoded.")
    query: dict[str, Any] = Field(default_factory=dict, description="Query string parameters.")
    headers: dict[str, str] = Field(default_factory=dict, description="Headers (not secrets).")
    auth: ApiAuth | None = Field(default=None, description="Credentials from the environment.")
    body: Any = Field(default=None, description="JSON body of a POST.")
    records_path: str | None = Field(
        default=None, description="Dotted path of the list of records (default: the response)."
    )
    pagination: Pagination = Field(default_factory=Pagination, description="Paging.")


class GraphQLConfig(StrictModel):
    """Configuration of a ``graphql`` step."""

    url: str = Field(description="http(s) URL of the GraphQL endpoint.")
    query: str = Field(description="The GraphQL query document.")
    variables: dict[str, Any] = Field(default_factory=dict, description="Query variables.")
    headers: dict[str, str] = Field(default_factory=dict, description="Headers (not secrets).")
    auth: ApiAuth | None = Field(default=None, description="Credentials from the environment.")
    records_path: str = Field(description="Dotted path of the list of records in 'data'.")
    pagination: Pagination = Field(
        default_factory=Pagination,
        description="cursor: cursor_param is the variable, cursor_path the next cursor "
        "(e.g. items.pageInfo.endCursor; paging stops when it is null).",
    )


class FileConfig(StrictModel):
    """Configuration of a file ``read`` step."""

    path: str = Field(
        description="File or glob, relative to the playbook file's folder; written in the "
        "playbook only, never from run-time values."
    )
    format: Literal["csv", "parquet"] | None = Field(
        default=None, description="csv or parquet (default: from the file extension)."
    )
    header: bool = Field(default=True, description="csv: the first line names the columns.")
    delimiter: str | None = Field(
        default=None, description="csv: the delimiter (default: sniffed)."
    )
    include_filename: bool = Field(
        default=False, description="Add a 'filename' column with each row's file."
    )


class CheckSpec(StrictModel):
    """A data quality check on a step or output result, shown as a Dagster asset check."""

    type: Literal["row_count", "not_null", "unique", "accepted_values", "expression"] = Field(
        description="row_count, not_null, unique, accepted_values or expression."
    )
    name: str | None = Field(
        default=None, pattern=IDENTIFIER_PATTERN, description="Check name (default: from type)."
    )
    min: int | None = Field(default=None, ge=0, description="row_count: fewest rows allowed.")
    max: int | None = Field(default=None, ge=0, description="row_count: most rows allowed.")
    columns: list[str] = Field(
        default_factory=list, description="not_null / unique: the columns (unique: together)."
    )
    column: str | None = Field(default=None, description="accepted_values: the column.")
    values: list[Any] = Field(default_factory=list, description="accepted_values: the values.")
    expression: str | None = Field(
        default=None, description="expression: a boolean aggregate, e.g. SUM(arr) > 0."
    )
    severity: Literal["warn", "error"] = Field(
        default="error", description="warn or error (how a failure is shown)."
    )
    blocking: bool = Field(
        default=False, description="A failure (severity error) stops downstream steps."
    )

    @model_validator(mode="after")
    def _fields_match_type(self) -> CheckSpec:
        needs = {
            "row_count": self.min is not None or self.max is not None,
            "not_null": bool(self.columns),
            "unique": bool(self.columns),
            "accepted_values": self.column is not None and bool(self.values),
            "expression": bool(self.expression),
        }
        if not needs[self.type]:
            fields = {
                "row_count": "'min' and/or 'max'",
                "not_null": "'columns'",
                "unique": "'columns'",
                "accepted_values": "'column' and 'values'",
                "expression": "'expression'",
            }
            raise ValueError(f"a {self.type} check needs {fields[self.type]}")
        if self.blocking and self.severity == "warn":
            raise ValueError("a blocking check must have severity error")
        return self

    @property
    def check_name(self) -> str:
        """The name of the Dagster asset check."""
        if self.name:
            return self.name
        suffix = "_".join([*self.columns, *([self.column] if self.column else [])])
        return f"{self.type}_{suffix}" if suffix else self.type


class StepBase(StrictModel):
    """Fields shared by every step type."""

    id: str = Field(pattern=IDENTIFIER_PATTERN, description="Step identifier, unique in the file.")
    name: str | None = Field(default=None, description="Human-readable name (default: the id).")
    description: str = Field(default="", description="What the step does.")
    depends_on: list[str] = Field(
        default_factory=list, description="Steps that must run first, beyond those referenced."
    )
    checks: list[CheckSpec] = Field(
        default_factory=list, description="Data quality checks on the step's result."
    )
    timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Time limit of the step (default: execution.timeout_seconds).",
    )
    partition_column: str | None = Field(
        default=None,
        description="Time partitions: the date or timestamp column of the result that places "
        "each row in its partition. A single-run backfill then runs the step once over the "
        "whole range and splits its result by this column; needed there by a step that reads "
        "${partition.start} or ${partition.end}.",
    )

    @property
    def title(self) -> str:
        """The human-readable name."""
        return self.name or self.id


class QueryStep(StepBase):
    """Runs a SQL query on a data warehouse."""

    type: Literal["query"] = Field(description="Step type.")
    source: Literal["data_warehouse"] = Field(
        default="data_warehouse", description="Always data_warehouse."
    )
    connection: str | None = Field(
        default=None, description="Named connection (default: defaults.data_warehouse)."
    )
    config: QueryConfig = Field(description="The query.")


class SearchStep(StepBase):
    """Searches a CRM."""

    type: Literal["search"] = Field(description="Step type.")
    source: Literal["crm"] = Field(default="crm", description="Always crm.")
    connection: str | None = Field(
        default=None, description="Named connection (default: defaults.crm)."
    )
    config: SearchConfig = Field(description="The search.")


class JoinStep(StepBase):
    """Joins two step results."""

    type: Literal["join"] = Field(description="Step type.")
    source: Literal["transform"] = Field(default="transform", description="Always transform.")
    config: JoinConfig = Field(description="The join.")


class AggregateStep(StepBase):
    """Aggregates a step result."""

    type: Literal["aggregate"] = Field(description="Step type.")
    source: Literal["transform"] = Field(default="transform", description="Always transform.")
    config: AggregateConfig = Field(description="The aggregation.")


class FilterStep(StepBase):
    """Filters a step result."""

    type: Literal["filter"] = Field(description="Step type.")
    source: Literal["transform"] = Field(default="transform", description="Always transform.")
    config: FilterConfig = Field(description="The filter.")


class RequestStep(StepBase):
    """Calls a REST API."""

    type: Literal["request"] = Field(description="Step type.")
    source: Literal["api"] = Field(default="api", description="Always api.")
    config: RequestConfig = Field(description="The request.")


class GraphQLStep(StepBase):
    """Queries a GraphQL API."""

    type: Literal["graphql"] = Field(description="Step type.")
    source: Literal["api"] = Field(default="api", description="Always api.")
    config: GraphQLConfig = Field(description="The query.")


class FileStep(StepBase):
    """Reads CSV or Parquet files."""

    type: Literal["read"] = Field(description="Step type.")
    source: Literal["file"] = Field(default="file", description="Always file.")
    config: FileConfig = Field(description="The files.")


AnyStep = (
    QueryStep
    | SearchStep
    | JoinStep
    | AggregateStep
    | FilterStep
    | RequestStep
    | GraphQLStep
    | FileStep
)
StepSpec = Annotated[AnyStep, Field(discriminator="type")]


class OutputSpec(StrictModel):
    """A final output of the playbook."""

    name: str = Field(pattern=IDENTIFIER_PATTERN, description="Output name, unique in the file.")
    source: str | None = Field(
        default=None,
        description="${steps.ID}; for an aggregate, defaults to the first data output's source.",
    )
    type: Literal["data", "aggregate"] = Field(default="data", description="data or aggregate.")
    description: str = Field(default="", description="What the output holds.")
    metrics: list[MetricSpec] = Field(
        default_factory=list, description="Aggregates computed over the source (aggregate only)."
    )
    checks: list[CheckSpec] = Field(
        default_factory=list, description="Data quality checks on the output."
    )

    @model_validator(mode="after")
    def _metrics_match_type(self) -> OutputSpec:
        if self.type == "aggregate" and not self.metrics:
            raise ValueError("an aggregate output needs 'metrics'")
        if self.type == "data":
            if self.metrics:
                raise ValueError("'metrics' needs type: aggregate")
            if self.source is None:
                raise ValueError("a data output needs 'source: ${steps.ID}'")
        return self


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


class _PartitionsBase(StrictModel):
    backfill: Literal["per_partition", "single_run"] = Field(
        default="per_partition",
        description="single_run: a backfill runs once over the whole range (time partitions).",
    )


class TimePartitions(_PartitionsBase):
    """Daily, weekly or monthly partitions."""

    type: Literal["daily", "weekly", "monthly"] = Field(description="daily, weekly or monthly.")
    start: str = Field(description="First partition, YYYY-MM-DD.")
    end_offset: int = Field(
        default=0, description="Partitions past the last complete one (1 = the current one)."
    )
    timezone: str = Field(default="UTC", description="Time zone of the partition boundaries.")

    @field_validator("start", mode="before")
    @classmethod
    def _date_as_text(cls, value: Any) -> Any:
        return value.isoformat() if isinstance(value, dt.date) else value


class StaticPartitions(_PartitionsBase):
    """A fixed list of partitions (segments, clients, ...)."""

    type: Literal["static"] = Field(description="static.")
    values: list[str] = Field(min_length=1, description="The partition keys.")

    @model_validator(mode="after")
    def _single_run_needs_time(self) -> StaticPartitions:
        if self.backfill == "single_run":
            raise ValueError("single_run backfills need time partitions")
        return self


class DynamicPartitions(_PartitionsBase):
    """A named set of partitions extended at run time (`playbook partitions add`, sensors)."""

    type: Literal["dynamic"] = Field(description="dynamic.")
    name: str = Field(pattern=IDENTIFIER_PATTERN, description="Name of the partition set.")


SinglePartitions = Annotated[
    TimePartitions | StaticPartitions | DynamicPartitions, Field(discriminator="type")
]


class MultiPartitions(_PartitionsBase):
    """Two dimensions, e.g. month x client."""

    type: Literal["multi"] = Field(description="multi.")
    dimensions: dict[str, SinglePartitions] = Field(
        description="Exactly two named dimensions; ${partition.<name>} is each one's key."
    )

    @model_validator(mode="after")
    def _two(self) -> MultiPartitions:
        if len(self.dimensions) != 2:
            raise ValueError("multi partitions need exactly two dimensions")
        if sum(isinstance(d, TimePartitions) for d in self.dimensions.values()) > 1:
            raise ValueError("at most one dimension can be time-based")
        for name, dimension in self.dimensions.items():
            if name in {"key", "start", "end"} or not is_identifier(name):
                raise ValueError(f"'{name}' cannot name a dimension")
            if dimension.backfill != "per_partition":
                raise ValueError("set 'backfill' on the partitions, not on a dimension")
        if self.backfill == "single_run":
            raise ValueError("single_run backfills need time partitions, not multi")
        return self


PartitionsSpec = Annotated[
    TimePartitions | StaticPartitions | DynamicPartitions | MultiPartitions,
    Field(discriminator="type"),
]


class ScheduleSpec(StrictModel):
    """A Dagster schedule for the playbook."""

    cron: str = Field(description="Cron expression, e.g. '0 6 * * 1-5'.")
    timezone: str = Field(default="UTC", description="Time zone of the cron expression.")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Parameter values of scheduled runs."
    )
    enabled: bool = Field(default=True, description="Whether the schedule starts running.")


class FileTrigger(StrictModel):
    """Run when a file matching ``path`` appears or changes."""

    type: Literal["file"] = Field(description="file.")
    path: str = Field(description="Glob, relative to the playbook file's folder.")
    parameter: str | None = Field(
        default=None,
        pattern=IDENTIFIER_PATTERN,
        description="String parameter that receives the file's path.",
    )
    interval_seconds: int = Field(default=30, ge=5, description="How often to look.")


class AssetTrigger(StrictModel):
    """Run when another playbook's step or output is materialized."""

    type: Literal["asset"] = Field(description="asset.")
    asset: str = Field(description="Asset key, e.g. presales_analysis/summary.")


TriggerSpec = Annotated[FileTrigger | AssetTrigger, Field(discriminator="type")]


class PlaybookSpec(StrictModel):
    """One playbook: a named sequence of steps and its outputs."""

    id: str = Field(
        pattern=PLAYBOOK_ID_PATTERN, description="Unique identifier (lower case, digits, _)."
    )
    name: str = Field(description="Human-readable name.")
    description: str = Field(default="", description="What the playbook does.")
    version: str = Field(default="1.0", description="Version of the playbook.")
    data_sources: list[DataSourceSpec] = Field(
        default_factory=list, description="Kinds of source the playbook needs."
    )
    parameters: list[ParameterSpec] = Field(
        default_factory=list, description="User-configurable parameters."
    )
    steps: list[StepSpec] = Field(min_length=1, description="The steps, in any order.")
    outputs: list[OutputSpec] = Field(default_factory=list, description="Final outputs.")
    owners: list[str] = Field(
        default_factory=list, description="Owners shown in Dagster (emails or team:name)."
    )
    tags: dict[str, str] = Field(
        default_factory=dict, description="Tags carried onto every asset of the playbook."
    )
    partitions: PartitionsSpec | None = Field(
        default=None, description="Partitions of the playbook's assets."
    )
    schedule: ScheduleSpec | None = Field(default=None, description="A schedule.")
    triggers: list[TriggerSpec] = Field(
        default_factory=list, description="Sensors that start runs."
    )
    insights: list[str] = Field(
        default_factory=list,
        description="Sentences with {{name.field | filter}} placeholders over outputs and steps, "
        "e.g. '{{summary.at_risk_deals | int}} deals at risk'.",
    )
    charts: list[ChartSpec] = Field(
        default_factory=list,
        description="Charts of the run report (bar, line, table), each drawn from a step's "
        "result; a grouped aggregate step without one gets a bar chart of its first metric.",
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # `version: 1.0` in YAML is a float; the version is text.
        return str(value) if isinstance(value, int | float) else value

    @property
    def step_ids(self) -> list[str]:
        """Step ids in file order."""
        return [step.id for step in self.steps]

    def step(self, step_id: str) -> AnyStep:
        """The step with this id (the id must exist)."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def parameter(self, name: str) -> ParameterSpec | None:
        """The declared parameter with this name, if any."""
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        return None


class PlaybookFile(StrictModel):
    """The root of a playbook file: a single ``playbook:`` key."""

    playbook: PlaybookSpec = Field(description="The playbook.")


def is_identifier(text: str) -> bool:
    """Whether ``text`` is a plain identifier (letters, digits, _)."""
    return re.fullmatch(IDENTIFIER_PATTERN, text) is not None
