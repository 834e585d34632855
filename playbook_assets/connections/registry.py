"""The one registry: connection type names used in config -> their implementations.

Adding a warehouse or CRM means writing its module (same interface as the others) and adding
one line here.
"""

from __future__ import annotations

import importlib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from playbook_assets.connections.crm.base import CrmResource
from playbook_assets.connections.warehouses.base import WarehouseResource
from playbook_assets.core.config import (
    ConnectionSettings,
    ExecutorConfig,
    has_env_reference,
    resolve_env,
)
from playbook_assets.core.errors import ConfigError, unknown_name_hint

ConnectionCategory = Literal["data_warehouse", "crm"]
# The setting through which a connection that reads files (DuckDB) learns the folders it may
# read; it comes from files.allowed_directories, never from a connection block.
ALLOWED_DIRECTORIES_FIELD = "allowed_directories"


@dataclass(frozen=True)
class ConnectionType:
    """A kind of connection: its category, its resource class (``module:Class``, imported
    when first used, so a command pays only for the client libraries it needs) and which of
    its settings are paths."""

    category: ConnectionCategory
    implementation: str | type[WarehouseResource] | type[CrmResource]
    path_settings: tuple[str, ...] = ()

    @property
    def resource_class(self) -> type[WarehouseResource] | type[CrmResource]:
        """The resource class, imported on first use."""
        if not isinstance(self.implementation, str):
            return self.implementation
        module, _, name = self.implementation.partition(":")
        found = getattr(importlib.import_module(module), name)
        if not (isinstance(found, type) and issubclass(found, WarehouseResource | CrmResource)):
            raise TypeError(f"{self.implementation} is not a warehouse or CRM resource")
        return found


_WAREHOUSES = "playbook_assets.connections.warehouses"
_CRM = "playbook_assets.connections.crm"

CONNECTION_TYPES: Mapping[str, ConnectionType] = {
    "duckdb": ConnectionType(
        "data_warehouse", f"{_WAREHOUSES}.duckdb:DuckDBWarehouse", path_settings=("database",)
    ),
    "postgres": ConnectionType("data_warehouse", f"{_WAREHOUSES}.postgres:PostgresWarehouse"),
    "redshift": ConnectionType("data_warehouse", f"{_WAREHOUSES}.redshift:RedshiftWarehouse"),
    "snowflake": ConnectionType("data_warehouse", f"{_WAREHOUSES}.snowflake:SnowflakeWarehouse"),
    "bigquery": ConnectionType(
        "data_warehouse",
        f"{_WAREHOUSES}.bigquery:BigQueryWarehouse",
        path_settings=("credentials_path",),
    ),
    "databricks": ConnectionType("data_warehouse", f"{_WAREHOUSES}.databricks:DatabricksWarehouse"),
    "demo": ConnectionType("crm", f"{_CRM}.demo:DemoCrm", path_settings=("database",)),
    "hubspot": ConnectionType(
        "crm", f"{_CRM}.hubspot:HubSpotCrm", path_settings=("rate_limit_file",)
    ),
    "salesforce": ConnectionType(
        "crm", f"{_CRM}.salesforce:SalesforceCrm", path_settings=("verify",)
    ),
    "marketo": ConnectionType(
        "crm", f"{_CRM}.marketo:MarketoCrm", path_settings=("rate_limit_file",)
    ),
    "klaviyo": ConnectionType(
        "crm", f"{_CRM}.klaviyo:KlaviyoCrm", path_settings=("rate_limit_file",)
    ),
}


def connection_type(settings: ConnectionSettings) -> ConnectionType:
    """The registered type of a connection block."""
    found = CONNECTION_TYPES.get(settings.type)
    if found is None:
        raise ConfigError(
            f"connection '{settings.name}' has unknown type '{settings.type}'",
            location=settings.location,
            hint=unknown_name_hint(settings.type, CONNECTION_TYPES, "connection type"),
        )
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
    fields = kind.resource_class.model_fields
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
        return kind.resource_class(**values)
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
