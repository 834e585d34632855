"""A step's or output's result as a run keeps it: the table, its Parquet encoding when results
are stored, and what to record about it.

The metadata is plain data (numbers, text, JSON-able mappings); the Dagster adapter turns it
into Dagster's metadata values (``dagster_adapter.metadata``), a Dagster-free run reads it as
it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from playbook_assets.core.artifacts import SHA256_METADATA_KEY, EncodedTable, encode_table
from playbook_assets.core.insights import table_facts, top_row
from playbook_assets.core.pushdown import is_unfetched_view, stored_form
from playbook_assets.core.report import FACTS_METADATA_KEY

ROW_COUNT_KEY = "dagster/row_count"
COLUMN_SCHEMA_KEY = "dagster/column_schema"
ELAPSED_KEY = "execution_time_ms"
PREVIEW_KEY = "preview"
SQL_KEY = "sql"
SEARCH_REQUEST_KEY = "search_request"
PREVIEW_ROWS = 5


@dataclass(frozen=True)
class Result:
    """One result (of one partition): its table, encoded once when results are stored."""

    table: pa.Table
    encoded: EncodedTable | None
    metadata: Mapping[str, Any]

    @property
    def data_version(self) -> str | None:
        """The sha256 of its stored bytes (a cached result keeps its stored file's)."""
        if self.encoded is not None:
            return self.encoded.sha256
        found = self.metadata.get(SHA256_METADATA_KEY)
        return str(found) if found else None

    @property
    def value(self) -> EncodedTable | pa.Table:
        """What the artifact store takes: the encoding when there is one."""
        return self.encoded if self.encoded is not None else self.table


def build_result(
    table: pa.Table,
    *,
    store: bool,
    request: str | dict[str, Any] | None,
    elapsed_ms: float,
    extra: Mapping[str, Any] | None = None,
    facts: dict[str, Any] | None = None,
) -> Result:
    """A result with its metadata: rows, time, request, schema, a preview and the facts
    insights may quote (``extra`` added as given); encoded when results are stored."""
    metadata = result_metadata(table, request, elapsed_ms, facts)
    for name, value in (extra or {}).items():
        if value is not None:
            metadata[name] = value
    return Result(table, encode_table(stored_form(table)) if store else None, metadata)


def result_metadata(
    table: pa.Table,
    request: str | dict[str, Any] | None,
    elapsed_ms: float,
    facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Rows, time, request, schema, a preview and the facts insights may quote."""
    if is_unfetched_view(table):
        # Its artifact is its SQL: no rows to count, preview or quote.
        metadata: dict[str, Any] = {
            ELAPSED_KEY: round(elapsed_ms, 1),
            COLUMN_SCHEMA_KEY: [(f.name, str(f.type)) for f in table.schema],
            PREVIEW_KEY: "(a view: its SQL is stored, not its rows)",
        }
        if isinstance(request, str):
            metadata[SQL_KEY] = request.strip()
        return metadata
    all_facts = facts if facts is not None else table_facts(table)
    top = top_row(table)
    if top is not None:
        all_facts = {**all_facts, "top": top}
    metadata: dict[str, Any] = {
        ROW_COUNT_KEY: table.num_rows,
        ELAPSED_KEY: round(elapsed_ms, 1),
        COLUMN_SCHEMA_KEY: [(f.name, str(f.type)) for f in table.schema],
        PREVIEW_KEY: markdown_preview(table),
        FACTS_METADATA_KEY: all_facts,
    }
    if isinstance(request, str):
        metadata[SQL_KEY] = request.strip()
    elif request is not None:
        metadata[SEARCH_REQUEST_KEY] = request
    return metadata


def markdown_preview(table: pa.Table, rows: int = PREVIEW_ROWS) -> str:
    """The first rows of a table as a markdown table."""
    if not table.column_names:
        return "(no columns)"
    lines = [
        "| " + " | ".join(table.column_names) + " |",
        "|" + "---|" * len(table.column_names),
    ]
    for row in table.slice(0, rows).to_pylist():
        cells = ["" if value is None else str(value).replace("|", "\\|") for value in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    if table.num_rows > rows:
        lines.append(f"\n{table.num_rows - rows} more rows")
    return "\n".join(lines)
