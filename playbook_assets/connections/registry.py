"""Connections as Dagster resources: the resource of a named connection, built from its
config block.

The table of connection types (name -> category, ``module:Class``, path settings) is
``playbook_assets.core.connection_types``; this module imports the classes it names. Adding a
warehouse or CRM means writing its module (same shape as the others) and adding one line to
that table.
"""

from __future__ import annotations

import importlib
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from playbook_assets.connections.crm.base import CrmResource
from playbook_assets.connections.warehouses.base import WarehouseResource
from playbook_assets.core.config import (
    ExecutorConfig,
    has_env_reference,
    resolve_env,
)
from playbook_assets.core.connection_types import (
    CONNECTION_TYPES,
    ConnectionCategory,
    ConnectionType,
    connection_type,
)
from playbook_assets.core.errors import ConfigError, unknown_name_hint

# The setting through which a connection that reads files (DuckDB) learns the folders it may
# read; it comes from files.allowed_directories, never from a connection block.
ALLOWED_DIRECTORIES_FIELD = "allowed_directories"

__all__ = [
    "CONNECTION_TYPES",
    "ConnectionCategory",
    "ConnectionType",
    "build_resource",
    "connection_type",
    "resource_class",
]


def resource_class(kind: ConnectionType) -> type[WarehouseResource] | type[CrmResource]:
    """The resource class of a connection type, imported on first use (so a command pays
    only for the client libraries it needs)."""
    if not isinstance(kind.implementation, str):
        found: object = kind.implementation
    else:
        module, _, name = kind.implementation.partition(":")
        found = getattr(importlib.import_module(module), name)
    if not (isinstance(found, type) and issubclass(found, WarehouseResource | CrmResource)):
        raise TypeError(f"{kind.implementation} is not a warehouse or CRM resource")
    return found


def build_resource(
    config: ExecutorConfig, name: str, environ: Mapping[str, str] | None = None
) -> WarehouseResource | CrmResource:
    """The Dagster resource for a named connection.

    A text setting with ``${VAR}`` in it (``${VAR}``, ``${VAR:-}``, ``Bearer ${TOKEN}``, a
    DSN) is kept as written: the resource resolves it when a run opens the connection
    (``playbook_assets.connections.env_settings``), so secrets never reach Dagster's snapshots, run
    records or UI. Other settings (paths, numbers) are resolved now; relative paths against
    the config file's folder. DuckDB-backed connections get the folders playbooks may read
    (``files.allowed_directories``).
    """
    settings = config.connections[name]
    kind = connection_type(settings)
    implementation = resource_class(kind)
    fields = implementation.model_fields
    values: dict[str, Any] = {}
    for key, raw in settings.settings.items():
        where = settings.setting_locations.get(key, settings.location)
        if key not in fields or key == ALLOWED_DIRECTORIES_FIELD:
            hint = (
                "set files.allowed_directories at the top of the config instead"
                if key == ALLOWED_DIRECTORIES_FIELD
                else unknown_name_hint(key, fields, "setting")
            )
            raise ConfigError(
                f"unknown setting '{key}' for a {settings.type} connection",
                location=where,
                hint=hint,
            )
        if (
            has_env_reference(raw)
            and key not in kind.path_settings
            and _is_text(fields[key].annotation)
        ):
            values[key] = raw  # resolved inside the run: see env_settings
            continue
        value = resolve_env(raw, environ, where)
        if key in kind.path_settings and isinstance(value, str) and value != ":memory:":
            value = str(config.resolve_path(value))
        values[key] = value
    if ALLOWED_DIRECTORIES_FIELD in fields:
        values[ALLOWED_DIRECTORIES_FIELD] = [str(path) for path in config.allowed_directories]
    try:
        return implementation(**values)
    except ValidationError as e:
        first = e.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else ""
        raise ConfigError(
            f"invalid setting '{key}' for connection '{name}': {first['msg']}",
            location=settings.setting_locations.get(key, settings.location),
        ) from e


def _is_text(annotation: Any) -> bool:
    """Whether a setting is text (``str`` or ``str | None``): secrets are text settings."""
    if annotation is str:
        return True
    arguments = set(typing.get_args(annotation))
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and arguments == {
        str,
        type(None),
    }
