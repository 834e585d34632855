"""A run's connections as its steps see them (``core.steps.base.StepServices``): the warehouse
and CRM resources by connection name, and the REST, GraphQL and file sources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from playbook_assets.core.errors import PlaybookValidationError
from playbook_assets.core.references import ResolutionContext
from playbook_assets.core.steps.base import Crm, Sources, Warehouse


class LocalSources:
    """The REST and GraphQL sources (``connections.sources.api``, loaded on first use: its
    libraries cost a quarter of a second to import) and the file source."""

    def describe_rest(self, config: Any, resolution: ResolutionContext) -> dict[str, Any]:
        from playbook_assets.connections.sources.api import describe_request

        return describe_request(config, resolution)

    def fetch_rest(
        self, config: Any, resolution: ResolutionContext, *, timeout_seconds: float
    ) -> pa.Table:
        from playbook_assets.connections.sources.api import fetch_rest

        return fetch_rest(config, resolution, timeout_seconds=timeout_seconds)

    def describe_graphql(self, config: Any, resolution: ResolutionContext) -> dict[str, Any]:
        from playbook_assets.connections.sources.api import describe_graphql

        return describe_graphql(config, resolution)

    def fetch_graphql(
        self, config: Any, resolution: ResolutionContext, *, timeout_seconds: float
    ) -> pa.Table:
        from playbook_assets.connections.sources.api import fetch_graphql

        return fetch_graphql(config, resolution, timeout_seconds=timeout_seconds)

    def describe_files(self, config: Any, folder: Path) -> dict[str, Any]:
        from playbook_assets.connections.sources.files import file_format, resolve_file_path

        return {"path": resolve_file_path(config, folder), "format": file_format(config)}

    def read_files(
        self,
        config: Any,
        folder: Path,
        *,
        allowed_directories: Sequence[str],
        timeout_seconds: float,
    ) -> pa.Table:
        from playbook_assets.connections.sources.files import read_files

        return read_files(
            config,
            folder,
            allowed_directories=list(allowed_directories),
            timeout_seconds=timeout_seconds,
        )


@dataclass(frozen=True)
class RunConnections:
    """The connections of one run, by name (resources already set up for the run)."""

    resources: Mapping[str, Any]
    retry_attempts: int = 2
    allowed_directories: Sequence[str] = ()
    sources: Sources = field(default_factory=LocalSources)

    def warehouse(self, name: str) -> Warehouse:
        """The named warehouse."""
        return self._connection(name)

    def crm(self, name: str) -> Crm:
        """The named CRM."""
        return self._connection(name)

    def _connection(self, name: str) -> Any:
        if name not in self.resources:
            raise PlaybookValidationError(
                f"connection '{name}' is not available to this run",
                hint="name it under connections: in the config",
            )
        return self.resources[name]
