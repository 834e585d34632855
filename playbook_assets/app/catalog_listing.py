"""The playbooks of a catalog as listed to users and programs (``playbook list --json``, the
MCP server's ``list_playbooks``): one row per playbook, one per file that failed to load."""

from __future__ import annotations

from typing import Any

from playbook_assets.core.catalog import PlaybookCatalog
from playbook_assets.core.parameters import to_json_value


def playbook_rows(catalog: PlaybookCatalog) -> list[dict[str, Any]]:
    """Every valid playbook, by id: name, description, steps, data sources, parameters
    (name, type, default, required, description), whether it is partitioned, origin, file."""
    return [
        {
            "id": loaded.id,
            "name": loaded.spec.name,
            "description": loaded.spec.description.strip(),
            "steps": len(loaded.spec.steps),
            "data_sources": [source.type for source in loaded.spec.data_sources],
            "parameters": [
                {
                    "name": parameter.name,
                    "type": parameter.type,
                    "default": to_json_value(parameter.default),
                    "required": parameter.required and parameter.default is None,
                    "description": parameter.description,
                }
                for parameter in loaded.spec.parameters
            ],
            "partitioned": loaded.spec.partitions is not None,
            "origin": loaded.origin,
            "file": loaded.display_path,
        }
        for loaded in sorted(catalog.playbooks.values(), key=lambda p: p.id)
    ]


def invalid_rows(catalog: PlaybookCatalog) -> list[dict[str, Any]]:
    """Every playbook file that failed to load, with its error."""
    return [
        {"id": broken.playbook_id, "file": broken.display_path, "error": str(broken.error)}
        for broken in catalog.broken
    ]
