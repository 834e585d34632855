"""The product's plain result metadata as Dagster metadata values, so the UI shows each entry
as what it is: a row count, a table schema, Markdown, a path, JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from playbook_assets.core.artifacts import PATH_METADATA_KEY
from playbook_assets.core.results import COLUMN_SCHEMA_KEY, PREVIEW_KEY, SQL_KEY

_PATHS = {PATH_METADATA_KEY}


def dagster_metadata(metadata: Mapping[str, Any]) -> dict[str, dg.MetadataValue]:
    """Each plain entry as the Dagster metadata value that shows it best."""
    return {name: _value(name, value) for name, value in metadata.items()}


def _value(name: str, value: Any) -> dg.MetadataValue:
    if isinstance(value, dg.MetadataValue):
        return value
    if name == COLUMN_SCHEMA_KEY:
        columns = [dg.TableColumn(name=column, type=kind) for column, kind in value]
        return dg.MetadataValue.table_schema(dg.TableSchema(columns=columns))
    if name == PREVIEW_KEY:
        return dg.MetadataValue.md(str(value))
    if name == SQL_KEY:
        return dg.MetadataValue.md(f"```sql\n{value}\n```")
    if name in _PATHS:
        return dg.MetadataValue.path(str(value))
    if value is None:
        return dg.MetadataValue.null()
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(value)
    if isinstance(value, str):
        return dg.MetadataValue.text(value)
    return dg.MetadataValue.json(value)
