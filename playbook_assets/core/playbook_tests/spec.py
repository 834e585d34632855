"""The format of a playbook's tests (``<playbook>.tests.yaml`` next to the playbook, or any
``*.yaml`` in ``tests/`` beside the config file), as pydantic models, and loading a file with
file:line errors.

Modelled on dbt's unit tests: each test gives the rows of the steps that read a source
(``given``: inline rows or a CSV/Parquet fixture) and states the rows or values a later step
or output must have (``expect``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from playbook_assets.core.errors import PlaybookValidationError, unknown_name_hint
from playbook_assets.core.models import StrictModel, reported_error
from playbook_assets.core.yaml_source import YamlDocument, YamlLimits, load_yaml_file

ColumnType = Literal["string", "integer", "number", "boolean", "date", "timestamp"]


class GivenRows(StrictModel):
    """The table a step returns in the test instead of asking its source."""

    rows: list[dict[str, Any]] | None = Field(
        default=None, description="The rows, each a mapping of column to value."
    )
    file: str | None = Field(
        default=None,
        description="A CSV or Parquet file holding the rows (relative to the test file).",
    )
    columns: dict[str, ColumnType] | None = Field(
        default=None,
        description="Types of columns (string, integer, number, boolean, date, timestamp); "
        "needed for an empty 'rows', optional otherwise (default: from the values).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> GivenRows:
        if (self.rows is None) == (self.file is None):
            raise ValueError("give either 'rows' or 'file'")
        if self.rows == [] and not self.columns:
            raise ValueError("an empty 'rows' needs 'columns' (their names and types)")
        return self


class Expectation(StrictModel):
    """What a step's or output's result must be."""

    rows: list[dict[str, Any]] | None = Field(
        default=None,
        description="The rows the result must have, exactly (no more, no fewer), compared on "
        "the columns they name; in any order unless 'ordered'.",
    )
    row_count: int | None = Field(default=None, ge=0, description="The number of rows.")
    values: dict[str, Any] | None = Field(
        default=None,
        description="Values of a result of one row (an aggregate output), by column.",
    )
    ordered: bool = Field(default=False, description="The rows must come in this order.")
    tolerance: float = Field(
        default=0,
        ge=0,
        description="The largest difference allowed between an expected and an actual number.",
    )

    @model_validator(mode="after")
    def _something_expected(self) -> Expectation:
        if self.rows is None and self.row_count is None and self.values is None:
            raise ValueError("expect 'rows', 'row_count' or 'values'")
        return self


class PlaybookTest(StrictModel):
    """One test: parameters, the given rows of the steps that read sources, what to expect."""

    name: str = Field(description="What the test checks, shown in the results.")
    description: str = Field(default="", description="More about the test.")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Parameters of the run (default: the playbook's)."
    )
    given: dict[str, GivenRows] = Field(
        default_factory=dict,
        description="By step id: the rows the step returns. Every step that reads a warehouse, "
        "CRM, API or file and that an expected result depends on must be given.",
    )
    expect: dict[str, Expectation] = Field(
        min_length=1, description="By step id or output name: what its result must be."
    )


class PlaybookTestFile(StrictModel):
    """A file of tests of one playbook."""

    playbook: str | None = Field(
        default=None,
        description="The id of the playbook tested (default: the file's name without "
        "'.tests.yaml').",
    )
    tests: list[PlaybookTest] = Field(min_length=1, description="The tests.")


MODELS: dict[str, type[StrictModel]] = {
    "": PlaybookTestFile,
    "tests": PlaybookTest,
    "given": GivenRows,
    "expect": Expectation,
}


def load_test_file(
    path: Path, shown: str, limits: YamlLimits
) -> tuple[PlaybookTestFile, YamlDocument]:
    """Parse a test file; the first error names its line and how to fix it."""
    document = load_yaml_file(path, shown, limits)
    if not isinstance(document.data, dict):
        raise PlaybookValidationError(
            "a test file is a mapping with 'tests:' (and 'playbook:')",
            location=document.location(),
        )
    try:
        return PlaybookTestFile.model_validate(document.data), document
    except ValidationError as e:
        raise _validation_error(e, document) from e


def _validation_error(error: ValidationError, document: YamlDocument) -> PlaybookValidationError:
    first = reported_error(error)
    loc = list(first["loc"])
    matched = document.matched_path(loc)
    where = ".".join(str(part) for part in matched) or None
    hint = None
    if first["type"] == "extra_forbidden":
        key = str(loc[-1])
        message = f"unknown key '{key}'"
        model = MODELS.get(_model_key(loc[:-1]))
        if model is not None:
            hint = unknown_name_hint(key, model.model_fields, "key")
    elif first["type"] == "missing":
        message = f"missing required key '{loc[-1]}'"
    else:
        message = first["msg"].removeprefix("Value error, ")
    return PlaybookValidationError(
        message, location=document.location_of_loc(loc), field=where, hint=hint
    )


def _model_key(parents: list[Any]) -> str:
    """Which model holds a key whose parents are ``parents`` (a pydantic ``loc``)."""
    names = [part for part in parents if isinstance(part, str)]
    if not names:
        return ""
    if len(names) >= 2 and names[-2] in {"given", "expect"}:
        return names[-2]
    return "tests"
