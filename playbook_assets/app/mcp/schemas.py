"""What the MCP tools return, as typed dicts: the SDK publishes each as the tool's output
schema and checks every result against it.

The run report keeps every key it has (``extra="allow"``): a typed dict drops undeclared keys
when it is validated, and a report that silently lost its ``error`` or ``partition`` would
say less than the run did. The keys declared here are the product's output schema.
"""

from __future__ import annotations

from typing import Any, NotRequired

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict


class ParameterInfo(TypedDict):
    """A playbook parameter: its name, type, default and what it controls."""

    name: str
    type: str
    default: Any
    required: bool
    description: str


class PlaybookInfo(TypedDict):
    """One playbook of the catalog."""

    id: str
    name: str
    description: str
    steps: int
    data_sources: list[str]
    parameters: list[ParameterInfo]
    partitioned: bool
    origin: str
    file: str


class InvalidPlaybook(TypedDict):
    """A playbook file that does not load, with its error."""

    id: str | None
    file: str
    error: str


class PlaybookList(TypedDict):
    """Every playbook, and the files that failed to load."""

    playbooks: list[PlaybookInfo]
    invalid: list[InvalidPlaybook]


class StepPlan(TypedDict):
    """One step as a run would run it, with what it would send (a dry run)."""

    step_id: str
    name: str
    type: str
    source: str
    connection: str | None
    depends_on: list[str]
    # The SQL, search or request the step sends, rendered for the given parameters; None
    # when it needs what only the run knows (``waits_for``) or cannot be rendered (``error``).
    request: str | dict[str, Any] | None
    waits_for: list[str]
    error: str | None


class OutputInfo(TypedDict):
    """One output of a playbook."""

    name: str
    type: str
    source: str
    metrics: list[str]


class PlaybookDescription(TypedDict):
    """A playbook in full: parameters as a JSON schema, steps, outputs, partitions."""

    id: str
    name: str
    description: str
    version: str
    file: str
    data_sources: list[str]
    parameters_schema: dict[str, Any]
    parameters_used: dict[str, Any]
    data_warehouse: str
    crm: str
    steps: list[StepPlan]
    outputs: list[OutputInfo]
    partitions: dict[str, Any] | None


class StepReport(TypedDict):
    """One step of a run report."""

    step_id: str
    name: str
    source: str
    type: str
    status: str
    row_count: int | None
    execution_time_ms: float
    error: NotRequired[str]
    reason: NotRequired[str]
    cached_from: NotRequired[dict[str, Any]]
    materialized: NotRequired[str]
    ran_in: NotRequired[str]
    ran_locally_because: NotRequired[str]
    fetched_views: NotRequired[dict[str, int]]


@with_config(ConfigDict(extra="allow"))
class RunReport(TypedDict):
    """A run report, in the product's output schema (see the README)."""

    playbook_id: str
    playbook_name: str
    executed_at: str
    run_id: str
    dagster_run_id: str
    status: str
    steps: list[StepReport]
    summary: dict[str, Any]
    outputs: dict[str, Any]
    checks: list[dict[str, Any]]
    insights: list[str]
    artifact_path: str | None
    metadata: dict[str, Any]
    error: NotRequired[str]
    partition: NotRequired[str]
    # Why the run's record (report, manifest) was not stored, when it could not be.
    record_error: NotRequired[str]


class RunSummary(TypedDict):
    """One stored run."""

    run_id: str
    playbook_id: str
    executed_at: str
    status: str
    artifacts: int
    bytes: int


class RunList(TypedDict):
    """Stored runs, newest first."""

    runs: list[RunSummary]


class Column(TypedDict):
    """A column of a stored result."""

    name: str
    type: str


class StepRows(TypedDict):
    """One page of the rows of a stored step or output result."""

    run_id: str
    name: str
    columns: list[Column]
    total_rows: int
    offset: int
    rows: list[dict[str, Any]]
    # The offset of the next page, None after the last one.
    next_offset: int | None


class ValidationProblem(TypedDict):
    """What is wrong with a playbook, and where."""

    message: str
    line: int | None
    step: str | None
    field: str | None
    hint: str | None
    text: str


class ValidationResult(TypedDict):
    """Whether a playbook is valid; its id and the error when it is not."""

    valid: bool
    playbook_id: str | None
    errors: list[ValidationProblem]


class VerifyProblem(TypedDict):
    """A stored file that is missing or changed."""

    path: str
    issue: str


class Verification(TypedDict):
    """The outcome of recomputing every checksum of a stored run."""

    run_id: str
    ok: bool
    checked_files: int
    problems: list[VerifyProblem]
