"""The interface every data warehouse integration implements."""

from __future__ import annotations

from typing import ClassVar

import dagster as dg
import pyarrow as pa


class WarehouseResource(dg.ConfigurableResource):
    """A data warehouse that runs a rendered, single-statement query and returns Arrow.

    ``dialect`` is the sqlglot dialect used to render run-time values as literals.
    """

    dialect: ClassVar[str] = "duckdb"
    kind: ClassVar[str] = "sql"

    allow_writes: bool = False

    def run_query(self, sql: str) -> pa.Table:
        """Run ``sql`` (already rendered and checked) and return its result as Arrow."""
        raise NotImplementedError
