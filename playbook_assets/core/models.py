"""The models shared by every part of a playbook: the strict base, names, parameters, metrics,
checks and outputs (step models live in their step type's module, ``core.steps``).

Every model rejects unknown keys, so a typo is an error with the file and line instead of a
setting silently ignored, and every model is immutable.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
PLAYBOOK_ID_PATTERN = r"^[a-z][a-z0-9_]*$"

ParameterType = Literal["string", "number", "integer", "boolean", "array", "date", "identifier"]
ElementType = Literal["string", "number", "integer", "boolean", "date"]


class StrictModel(BaseModel):
    """Base of every spec model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def reported_error(error: ValidationError) -> ErrorDetails:
    """The one error of a strict model's validation to report: a misspelt key also makes the
    key it was meant to be "missing", so the first unknown key comes before anything else."""
    return min(error.errors(), key=lambda item: item["type"] != "extra_forbidden")


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


class MetricSpec(StrictModel):
    """A named aggregate expression."""

    name: str = Field(pattern=IDENTIFIER_PATTERN, description="Output column name.")
    expression: str = Field(
        description="Aggregate expression, e.g. SUM(arr); 'AGG(x) WHERE cond' filters it."
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


def is_identifier(text: str) -> bool:
    """Whether ``text`` is a plain identifier (letters, digits, _)."""
    return re.fullmatch(IDENTIFIER_PATTERN, text) is not None
