"""What every step type has: the fields of its YAML, and the interface of its module.

A step type is one module of ``core.steps`` holding its config model, its step model (with
``type: Literal[...]``), how it is validated, what it reads and how it runs, registered once in
``core.steps.registry``. The rest of the product asks the registry (``step_type(step)``)
instead of testing step classes.

Running a step goes through the services its run provides (``StepServices``): the warehouses
and CRMs it queries and the API and file sources, each seen through a small protocol, so
nothing here knows Dagster or a connection's client library.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar

import pyarrow as pa
from pydantic import Field

from playbook_assets.core.errors import PlaybookValidationError, SourceLocation, TerminalStepError
from playbook_assets.core.models import IDENTIFIER_PATTERN, CheckSpec, StrictModel
from playbook_assets.core.references import Reference, ResolutionContext, whole_reference

if TYPE_CHECKING:
    from playbook_assets.core.catalog import LoadedPlaybook
    from playbook_assets.core.config import ExecutorConfig

ConfigT = TypeVar("ConfigT", bound=StrictModel)


class StepBase(StrictModel, Generic[ConfigT]):
    """Fields shared by every step type; ``config`` is the type's own model."""

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
    materialize: Literal["table", "view"] = Field(
        default="table",
        description="What a query step keeps: its rows (table), or only its SQL (view), which "
        "the transforms that read it run on the warehouse, or which is fetched when a step "
        "reads it locally. Only a query step can be a view.",
    )
    config: ConfigT = Field(description="The step type's configuration.")

    @property
    def title(self) -> str:
        """The human-readable name."""
        return self.name or self.id


class Warehouse(Protocol):
    """A data warehouse as a query step sees it."""

    @property
    def dialect(self) -> str:
        """The sqlglot dialect run-time values are rendered in."""
        ...

    @property
    def allow_writes(self) -> bool:
        """Whether statements other than one read-only query may run."""
        ...

    @property
    def binds_lists(self) -> bool:
        """Whether a long list can be read as a table rather than as literals."""
        ...

    def raise_if_unresolved(self, connection: str) -> None:
        """Fail when a setting's environment variable is not set."""
        ...

    def run_query_with_lists(
        self, sql: str, lists: Mapping[str, Sequence[Any]], *, timeout_seconds: float | None
    ) -> pa.Table:
        """Run the rendered statement, reading each list as a one-column table."""
        ...


class Crm(Protocol):
    """A CRM as a search step sees it."""

    @property
    def retries_requests(self) -> bool:
        """Whether the CRM retries each of its requests itself (within the step's budget)."""
        ...

    def raise_if_unresolved(self, connection: str) -> None:
        """Fail when a setting's environment variable is not set."""
        ...

    def describe_request(self, request: Any) -> dict[str, Any]:
        """The search as the CRM sees it, for run metadata (no secrets)."""
        ...

    def search(
        self, request: Any, *, timeout_seconds: float | None, retry_attempts: int
    ) -> pa.Table:
        """Every matching record of the search."""
        ...


class Sources(Protocol):
    """The REST, GraphQL and file sources API and file steps read."""

    def describe_rest(self, config: Any, resolution: ResolutionContext) -> dict[str, Any]:
        """The request a REST step sends (no secrets)."""
        ...

    def fetch_rest(
        self, config: Any, resolution: ResolutionContext, *, timeout_seconds: float
    ) -> pa.Table:
        """Every record of a REST request, page after page."""
        ...

    def describe_graphql(self, config: Any, resolution: ResolutionContext) -> dict[str, Any]:
        """The query a GraphQL step sends (no secrets)."""
        ...

    def fetch_graphql(
        self, config: Any, resolution: ResolutionContext, *, timeout_seconds: float
    ) -> pa.Table:
        """Every record of a GraphQL query, page after page."""
        ...

    def describe_files(self, config: Any, folder: Path) -> dict[str, Any]:
        """The files a read step reads."""
        ...

    def read_files(
        self,
        config: Any,
        folder: Path,
        *,
        allowed_directories: Sequence[str],
        timeout_seconds: float,
    ) -> pa.Table:
        """The rows of the files a read step names."""
        ...


class StepServices(Protocol):
    """What a run gives its steps: its connections and sources, and its settings."""

    @property
    def retry_attempts(self) -> int:
        """Retries of a transient failure (``execution.retry_attempts``)."""
        ...

    @property
    def allowed_directories(self) -> Sequence[str]:
        """Folders file steps may read."""
        ...

    @property
    def sources(self) -> Sources:
        """The API and file sources."""
        ...

    def warehouse(self, name: str) -> Warehouse:
        """The named warehouse connection."""
        ...

    def crm(self, name: str) -> Crm:
        """The named CRM connection."""
        ...


@dataclass(frozen=True)
class StepContext:
    """What a step's ``prepare`` is given besides its resolved references."""

    loaded: LoadedPlaybook
    connection: str | None
    services: StepServices
    timeout_seconds: float


@dataclass(frozen=True)
class StepRequest:
    """What a step will send (SQL, a search, a request) and how to send it."""

    request: str | dict[str, Any] | None
    send: Callable[[], pa.Table]
    fingerprint: str | None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # The source retries each of its requests within execution.retry_attempts itself (CRMs):
    # the step must not retry it again, or the attempts multiply.
    retries_inside: bool = False


def request_fingerprint(connection: str, request: str | dict[str, Any]) -> str:
    """A hash of what a step asks its source: equal fingerprints mean the same question."""
    text = request if isinstance(request, str) else json.dumps(request, sort_keys=True, default=str)
    return hashlib.sha256(f"{connection}\n{text}".encode()).hexdigest()


@dataclass(frozen=True)
class ValidationContext:
    """What a step type's validation can see: the playbook, the configuration, the result
    columns of the steps before it (None where they are only known when it runs) and a way
    to name the line of a key of the step's config."""

    loaded: LoadedPlaybook
    config: ExecutorConfig
    index: int
    columns: Mapping[str, list[str] | None]
    # The category (data_warehouse or crm) of a configured connection, by name.
    connection_category: Callable[[str], str]

    def where(self, *path: str | int) -> SourceLocation:
        """The line of a key under the step's ``config``."""
        return self.loaded.document.location(("playbook", "steps", self.index, "config", *path))

    def check_connection(self, step: StepBase[Any], name: str | None, category: str) -> None:
        """The connection a step uses (its own, else the default of its category) must exist
        and be of the category; a config with no connections is checked only for a step that
        names one."""
        config = self.config
        if name is None and not config.connections:
            return
        chosen = name or (
            config.defaults.data_warehouse if category == "data_warehouse" else config.defaults.crm
        )
        if chosen not in config.connections:
            from playbook_assets.core.errors import unknown_name_hint

            raise PlaybookValidationError(
                f"unknown connection '{chosen}'",
                field="connection",
                hint=unknown_name_hint(chosen, config.connections, "connection"),
            )
        actual = self.connection_category(chosen)
        if actual != category:
            kind = getattr(step, "type", "this")
            raise PlaybookValidationError(
                f"connection '{chosen}' is a {actual.replace('_', ' ')}, "
                f"but a {kind} step needs a {category.replace('_', ' ')}",
                field="connection",
            )


def step_input(value: str, field_name: str, ctx: ValidationContext) -> Reference:
    """A transform's input, which must be a whole step result like ``${steps.ID}``."""
    reference = whole_reference(value)
    if reference is None or reference.kind != "steps" or reference.column is not None:
        raise PlaybookValidationError(
            f"'{field_name}' must be a whole step result like ${{steps.ID}}",
            location=ctx.where(field_name),
            field=f"config.{field_name}",
        )
    return reference


def input_table(value: Any, field_name: str) -> pa.Table:
    """A resolved transform input, which must be a step's table."""
    if not isinstance(value, pa.Table):
        raise TerminalStepError(
            f"'{field_name}' must be a step result (${{steps.ID}})", field=field_name
        )
    return value


@dataclass(frozen=True)
class TransformPlan:
    """A transform as SQL: its inputs (the config field and its ``${steps.ID}``) by the name
    its statement reads them under (``transforms.INPUT``, ``LEFT``, ``RIGHT``), the DuckDB
    statement given each input's columns, and how it runs locally on the inputs' tables."""

    inputs: Mapping[str, tuple[str, str]]
    sql: Callable[[Mapping[str, Sequence[str]]], str]
    run: Callable[[Mapping[str, pa.Table]], pa.Table]


def input_tables(plan: TransformPlan, resolution: ResolutionContext) -> dict[str, pa.Table]:
    """A transform's resolved inputs, by the name its statement reads them under."""
    from playbook_assets.core.references import resolve

    return {
        name: input_table(resolve(reference, resolution), field_name)
        for name, (field_name, reference) in plan.inputs.items()
    }


class StepType(ABC):
    """The behaviour of one kind of step."""

    # The YAML ``type`` and default ``source`` of the step, and its model.
    name: ClassVar[str]
    source: ClassVar[str]
    model: ClassVar[type[StepBase[Any]]]
    # data_warehouse or crm for a step that queries a configured connection.
    connection_category: ClassVar[str | None] = None
    # A transform of other steps' results, run locally on DuckDB.
    transform: ClassVar[bool] = False

    def connection(self, step: StepBase[Any]) -> str | None:
        """The connection the step names (None: the default of its category, or none)."""
        return getattr(step, "connection", None)

    @abstractmethod
    def validate(self, step: StepBase[Any], ctx: ValidationContext) -> list[str] | None:
        """Check what the model cannot; return the result's columns when they are known
        before the step runs."""

    @abstractmethod
    def prepare(
        self, step: StepBase[Any], ctx: StepContext, resolution: ResolutionContext
    ) -> StepRequest:
        """Render what the step sends from its parameters and upstream results."""

    def transform_plan(self, step: StepBase[Any]) -> TransformPlan | None:
        """The transform as SQL over its inputs (None: the step is not a transform)."""
        return None

    def kind(self, step: StepBase[Any], connection_kind: str | None) -> str:
        """The kind an asset of this step shows: its connection's, else DuckDB's."""
        return connection_kind or "duckdb"


class TransformStepType(StepType):
    """A transform of other steps' results (join, aggregate, filter): its ``transform_plan``
    says what it reads and computes; it runs locally on DuckDB over its inputs, unless its
    inputs are views that push-down sends it to (``core.pushdown``)."""

    source = "transform"
    transform = True

    def prepare(
        self, step: StepBase[Any], ctx: StepContext, resolution: ResolutionContext
    ) -> StepRequest:
        plan = self.transform_plan(step)
        return StepRequest(
            request=None, send=lambda: plan.run(input_tables(plan, resolution)), fingerprint=None
        )

    @abstractmethod
    def transform_plan(self, step: StepBase[Any]) -> TransformPlan:
        """The transform as SQL over its inputs."""
