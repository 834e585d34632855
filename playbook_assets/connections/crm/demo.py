"""The demo CRM: HubSpot's CRM search semantics answered from a local DuckDB file.

The file is the one ``playbook_assets.demo.generator.write_demo_crm`` generates (created on
first use), one table per object with HubSpot's property names and one link table per
association. A search is one DuckDB statement compiled by ``crm/hubspot_filters.py``, whose
docstring lists the semantics (filter groups, operators, case, missing values, order), with
every value a prepared-statement parameter.

Documented behaviour this module relies on (HubSpot's CRM search API, as in
``crm/hubspot_filters.py``; each tested in tests/test_demo_crm.py against plain SQL over the
generated file):

- the default properties of each object when ``properties`` is empty;
- ``associations: [companies]``: a deal's or contact's company (the smallest id when several);
- a search that matches nothing has the columns and types of one that matches.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa

from playbook_assets.connections.crm.base import DEFAULT_RETRY_ATTEMPTS, CrmResource
from playbook_assets.connections.crm.hubspot_filters import (
    DEFAULT_PROPERTIES,
    AssociationJoin,
    Kind,
    describe_filter,
    names_hint,
    object_columns,
    search_query,
)
from playbook_assets.connections.kit.deadline import interrupt_after, limit_text, step_timeout
from playbook_assets.connections.kit.errors import ErrorMapping, mapped_errors
from playbook_assets.core.errors import SourceUnreachableError, TerminalStepError
from playbook_assets.core.file_access import confined_connection
from playbook_assets.core.spec import SearchConfig
from playbook_assets.demo.generator import ensure_demo_crm

__all__ = ["DemoCrm", "build_search_query", "object_columns"]

OBJECTS = tuple(sorted(DEFAULT_PROPERTIES))
# Association name -> how the demo file links it, per searched object. Only to-one
# associations become a column.
ASSOCIATIONS: dict[str, dict[str, AssociationJoin]] = {
    "deals": {"companies": AssociationJoin("company_id", "deal_company", "deal_id", "company_id")},
    "contacts": {
        "companies": AssociationJoin("company_id", "contact_company", "contact_id", "company_id")
    },
    "companies": {},
}
_ASSOCIATION_ALIASES = {"company": "companies", "companies": "companies"}


class DemoCrm(CrmResource):
    """The embedded demo CRM: a DuckDB file searched with HubSpot's search semantics.

    The file is created (at ``scale``) the first time it is searched.
    """

    kind: ClassVar[str] = "demo crm"
    # A locked file is retried by the step, which reruns the whole (local) search.
    retries_requests: ClassVar[bool] = False

    # -- settings -------------------------------------------------------------------------------

    database: str
    scale: float = 1.0

    # -- search ---------------------------------------------------------------------------------

    def search(
        self,
        request: SearchConfig,
        *,
        timeout_seconds: float | None = None,
        retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
    ) -> pa.Table:
        """Run the search and return every matching record (up to ``request.limit``); the
        step retries it (``retry_attempts`` is unused)."""
        request = self.mapped(request)
        table = _object_table(request.object)
        ensure_demo_crm(Path(self.database), self.scale)
        with self._connect() as con:
            columns = object_columns(con, table)
            sql, params = build_search_query(table, columns, request)
            with interrupt_after(con, timeout_seconds) as timed_out:
                errors = _error_mapping(table, timeout_seconds, timed_out.is_set)
                with mapped_errors(errors):
                    return con.sql(sql, params=params).to_arrow_table()

    def describe_request(self, request: SearchConfig) -> dict[str, Any]:
        """The HubSpot search API request body (filterGroups, properties, sorts, limit)."""
        request = self.mapped(request)
        table = request.object.strip().lower()
        properties = list(request.properties) or list(DEFAULT_PROPERTIES.get(table, ()))
        body: dict[str, Any] = {
            "filterGroups": [
                {"filters": [describe_filter(f) for f in group]} for group in request.groups()
            ],
            "properties": properties,
            "sorts": [
                {"propertyName": sort.property, "direction": sort.direction}
                for sort in request.sorts
            ],
        }
        if request.limit is not None:
            body["limit"] = request.limit
        return body

    # -- connect --------------------------------------------------------------------------------

    def _connect(self) -> duckdb.DuckDBPyConnection:
        try:
            return confined_connection(self.database, read_only=True)
        except duckdb.IOException as e:
            raise SourceUnreachableError(
                f"cannot open the demo CRM file {self.database}: {e}",
                hint="check connections.<name>.database; another process may be writing it",
            ) from e


def build_search_query(
    table: str, columns: dict[str, Kind], request: SearchConfig
) -> tuple[str, dict[str, Any]]:
    """The demo CRM's statement for a search of ``table`` (its associations from the file's
    link tables) and its parameters."""
    return search_query(table, columns, request, _association_joins(table, request.associations))


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------


def _object_table(name: str) -> str:
    table = name.strip().lower()
    if table in DEFAULT_PROPERTIES:
        return table
    raise TerminalStepError(
        f"unknown CRM object '{name}'",
        field="object",
        hint=names_hint(name, OBJECTS, "objects of the demo CRM"),
    )


def _association_joins(table: str, names: list[str]) -> list[AssociationJoin]:
    available = ASSOCIATIONS[table]
    found: list[AssociationJoin] = []
    for name in names:
        key = _ASSOCIATION_ALIASES.get(name.strip().lower(), name.strip().lower())
        if key not in available:
            listing = ", ".join(sorted(available)) or "none"
            raise TerminalStepError(
                f"{table} have no '{name}' association in the demo CRM",
                field="associations",
                hint=f"associations of {table}: {listing}",
            )
        if available[key] not in found:
            found.append(available[key])
    return found


# ---------------------------------------------------------------------------------------------
# Error mapping
# ---------------------------------------------------------------------------------------------


def _error_mapping(
    table: str, timeout_seconds: float | None, interrupted: Callable[[], bool]
) -> ErrorMapping:
    """DuckDB's errors of a search: past the time limit (the interrupt fired), or the query's."""

    def mapping(error: Exception) -> Exception:
        if not isinstance(error, duckdb.Error):
            return error
        if interrupted():
            return step_timeout(
                f"the search ran longer than {limit_text(timeout_seconds)} and was cancelled"
            )
        return TerminalStepError(f"demo CRM search on '{table}' failed: {error}")

    return mapping
