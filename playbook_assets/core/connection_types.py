"""The kinds of connection a config may name: each type's category, the resource class that
implements it (``module:Class``, imported by ``playbook_assets.connections.registry`` only
when a connection of that type is used) and which of its settings are paths.

Pure data: validating a playbook (does a step's connection have the right category?) needs
only this table, not the client libraries of every warehouse and CRM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from playbook_assets.core.config import ConnectionSettings
from playbook_assets.core.errors import ConfigError, unknown_name_hint

ConnectionCategory = Literal["data_warehouse", "crm"]


@dataclass(frozen=True)
class ConnectionType:
    """A kind of connection: its category, its resource class (``module:Class``, or the class
    itself when registered at run time) and which of its settings are paths."""

    category: ConnectionCategory
    implementation: str | type
    path_settings: tuple[str, ...] = ()


_WAREHOUSES = "playbook_assets.connections.warehouses"
_CRM = "playbook_assets.connections.crm"

# The registry: adding a warehouse or CRM means writing its module and adding one line here.
CONNECTION_TYPES: dict[str, ConnectionType] = {
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
