"""Parameter values in Dagster's run config: the per-playbook parameters resource."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from playbook_assets.spec import PlaybookSpec


def parameters_resource_key(playbook_id: str) -> str:
    """Resource key holding a playbook's parameter values."""
    return f"{playbook_id}_parameters"


def parameters_run_config(playbook_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Run config that sets a playbook's parameters."""
    return {"resources": {parameters_resource_key(playbook_id): {"config": dict(values)}}}


def run_config_values(spec: PlaybookSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """Coerced parameter values in the shape Dagster config accepts (dates as text)."""
    out: dict[str, Any] = {}
    for parameter in spec.parameters:
        value = values.get(parameter.name)
        if value is None:
            continue
        if parameter.type == "date":
            out[parameter.name] = value.isoformat()
        elif parameter.type == "number":
            out[parameter.name] = float(value)
        else:
            out[parameter.name] = value
    return out
