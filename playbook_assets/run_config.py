"""How a run of a playbook is asked for: the job, the assets and the parameters.

Every playbook runs in Dagster's implicit asset job (``ASSET_JOB``) with its own assets
selected; the code location defines no job per playbook, so loading stays linear in the number
of playbooks. Each playbook is one op (a multi-asset named after the playbook) whose config
schema is the playbook's typed parameters, so the launchpad shows and checks them and a run
records them: ``{"ops": {<playbook id>: {"config": {<parameter>: <value>}}}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from playbook_assets.parameters import coerce_parameter, resolve_parameters
from playbook_assets.spec import PlaybookSpec

# Dagster's implicit job over every asset of the code location.
ASSET_JOB = "__ASSET_JOB"
REPORT_ASSET = "run_report"
TAG_PLAYBOOK = "playbook/id"


def asset_key(playbook_id: str, name: str) -> dg.AssetKey:
    """The key of a playbook's step, output or report asset."""
    return dg.AssetKey([playbook_id, name])


def playbook_asset_keys(spec: PlaybookSpec) -> list[dg.AssetKey]:
    """Every asset of a playbook: its steps, outputs and run report."""
    names = [*spec.step_ids, *(output.name for output in spec.outputs), REPORT_ASSET]
    return [asset_key(spec.id, name) for name in names]


def playbook_run_request(
    spec: PlaybookSpec,
    given: Mapping[str, Any],
    *,
    partition_key: str | None = None,
    run_key: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> dg.RunRequest:
    """A request to run a whole playbook with the ``given`` parameters, the others taking
    their defaults (checked: a bad value raises ``PlaybookError``)."""
    values = resolve_parameters(spec, given)
    return dg.RunRequest(
        job_name=ASSET_JOB,
        asset_selection=playbook_asset_keys(spec),
        run_config=parameters_run_config(spec.id, run_config_values(spec, values)),
        partition_key=partition_key,
        run_key=run_key,
        tags={TAG_PLAYBOOK: spec.id, **(tags or {})},
    )


def parameters_run_config(playbook_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Run config that sets a playbook's parameters."""
    return {"ops": {playbook_id: {"config": dict(values)}}}


def parameters_in_run_config(run_config: Mapping[str, Any], playbook_id: str) -> dict[str, Any]:
    """The parameter values a run's config gives a playbook (none given: empty)."""
    ops: Any = run_config.get("ops") or {}
    op_config: Any = (ops.get(playbook_id) or {}).get("config") if isinstance(ops, dict) else None
    return dict(op_config) if isinstance(op_config, dict) else {}


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


def parameter_values(spec: PlaybookSpec, config: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter's value from the op config (Dagster filled in the defaults), checked
    and coerced to its Python type; a parameter with no value is None."""
    values: dict[str, Any] = {}
    for parameter in spec.parameters:
        raw = config.get(parameter.name, parameter.default)
        values[parameter.name] = coerce_parameter(parameter, raw) if raw is not None else None
    return values
