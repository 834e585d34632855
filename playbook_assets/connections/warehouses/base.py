"""The interface every data warehouse integration implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field

from playbook_assets.connections.env_settings import EnvResolvedResource
from playbook_assets.core.errors import TerminalStepError


class WarehouseResource(EnvResolvedResource):
    """A data warehouse that runs a rendered, single-statement query and returns Arrow.

    ``dialect`` is the sqlglot dialect used to render run-time values as literals; ``kind`` is
    the Dagster kind shown on the step's asset.

    Implementations raise, from ``playbook_assets.core.errors``:
    - ``SourceUnreachableError`` when the warehouse cannot be reached (connection refused,
      DNS, auth endpoint down, timeout while connecting);
    - ``TransientStepError`` for failures a retry may fix (connection reset mid-query,
      throttling, 5xx, lock or serialization timeouts);
    - ``StepTimeoutError`` when ``timeout_seconds`` passed: the query has been cancelled on
      the server, not left running;
    - ``TerminalStepError`` for everything else (syntax, permission, missing table), with
      the warehouse's message and the line of the rendered SQL it points at.
    Secrets never appear in messages: text from the warehouse goes through
    ``playbook_assets.core.redaction.redact``. Text settings may be ``${VAR}`` templates, resolved
    when a run opens the resource (``EnvResolvedResource``).
    """

    dialect: ClassVar[str] = "duckdb"
    kind: ClassVar[str] = "sql"
    # Whether ``run_query_with_lists`` can read a long list as a table (see
    # ``sql.render_sql_binding``); otherwise every list is rendered as literals.
    binds_lists: ClassVar[bool] = False

    allow_writes: bool = Field(
        default=False, description="Allow statements other than a single read-only query."
    )

    def run_query(self, sql: str, *, timeout_seconds: float | None = None) -> pa.Table:
        """Run ``sql`` (already rendered and checked) and return its result as Arrow."""
        raise NotImplementedError

    def run_query_with_lists(
        self,
        sql: str,
        lists: Mapping[str, Sequence[Any]],
        *,
        timeout_seconds: float | None = None,
    ) -> pa.Table:
        """Run ``sql``, which reads each of ``lists`` as a one-column table of that name
        (column ``value``); only called with lists when ``binds_lists`` is set."""
        if lists:
            raise TerminalStepError(f"{self.kind} cannot read a list as a table")
        return self.run_query(sql, timeout_seconds=timeout_seconds)

    def load_table(self, name: str, table: pa.Table) -> None:
        """Create or replace the table ``schema.table`` with ``table``'s rows (used to load
        the demo data into a real warehouse: ``playbook demo load``)."""
        raise TerminalStepError(f"loading tables into {self.kind} is not supported")


def typed_empty(table: pa.Table, description: Any) -> pa.Table:
    """A result with rows as it is; an empty one with the integer columns the cursor declares
    with a scale (PEP 249 ``description``: name, type code, sizes, precision, scale) typed as
    those decimals: a connector may type the columns of a result with no rows from their kind
    alone (Snowflake's gives int64 for any NUMBER)."""
    columns = list(description or ())
    if table.num_rows or len(columns) != table.num_columns:
        return table
    fields = [
        field.with_type(pa.decimal128(column[4] or 38, column[5]))
        if column[5] and pa.types.is_integer(field.type)
        else field
        for field, column in zip(table.schema, columns, strict=True)
    ]
    return pa.schema(fields, metadata=table.schema.metadata).empty_table()
