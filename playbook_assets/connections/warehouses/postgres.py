"""PostgreSQL as the data warehouse: the PostgreSQL wire protocol's resource with PostgreSQL's
defaults (``warehouses/postgres_wire``)."""

from __future__ import annotations

from typing import ClassVar

from playbook_assets.connections.warehouses.postgres_wire import (
    PostgresWireWarehouse,
    arrow_type_of_column,
)

__all__ = ["PostgresWarehouse", "arrow_type_of_column"]


class PostgresWarehouse(PostgresWireWarehouse):
    """A PostgreSQL database, queried in read-only sessions (unless ``allow_writes``).

    Connect with ``dsn`` (a libpq connection string or ``postgresql://`` URL) and/or the
    separate fields; a field that is set wins over the same part of the DSN. Write secrets as
    ``${VAR}`` (``dsn: "${PG_DSN}"``, ``password: "${PG_PASSWORD}"``, or inside a DSN) so that
    they are read only when a run opens the connection; they never appear in messages.

    Result types: see ``arrow_type_of_column``. Numeric values without a declared
    precision and scale (aggregates, arithmetic) arrive as float64, exact to about 15
    significant digits; cast them in SQL (``SUM(arr)::numeric(18,2)``) to get decimals.
    """

    dialect: ClassVar[str] = "postgres"
    kind: ClassVar[str] = "postgres"
    label: ClassVar[str] = "PostgreSQL"
    default_port: ClassVar[int] = 5432
