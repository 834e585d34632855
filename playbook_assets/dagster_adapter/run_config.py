"""How a run of a playbook is asked for: the job, the assets and the parameters.

Every playbook runs in Dagster's implicit asset job (``ASSET_JOB``) with its own assets
selected; the code location defines no job per playbook, so loading stays linear in the number
of playbooks. Each playbook is one op (a multi-asset named after the playbook) whose config
schema is the playbook's typed parameters, so the launchpad shows and checks them and a run
records them: ``{"ops": {<playbook id>: {"config": {<parameter>: <value>}}}}``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from playbook_assets.core.parameters import coerce_parameter, resolve_parameters
from playbook_assets.core.spec import ParameterSpec, PlaybookSpec

# Dagster's implicit job over every asset of the code location.
ASSET_JOB = "__ASSET_JOB"
REPORT_ASSET = "run_report"
TAG_PLAYBOOK = "playbook/id"


def asset_key(playbook_id: str, name: str) -> dg.AssetKey:
    """The key of a playbook's step, output or report asset."""
    return dg.AssetKey([playbook_id, name])


# How a deployment keys a playbook's assets (``translator.PlaybookTranslator.asset_key``).
AssetKeys = Callable[[str, str], dg.AssetKey]


def playbook_asset_keys(spec: PlaybookSpec, keys: AssetKeys = asset_key) -> list[dg.AssetKey]:
    """Every asset of a playbook: its steps, outputs and run report."""
    names = [*spec.step_ids, *(output.name for output in spec.outputs), REPORT_ASSET]
    return [keys(spec.id, name) for name in names]


def playbook_run_request(
    spec: PlaybookSpec,
    given: Mapping[str, Any],
    *,
    partition_key: str | None = None,
    run_key: str | None = None,
    tags: Mapping[str, str] | None = None,
    keys: AssetKeys = asset_key,
) -> dg.RunRequest:
    """A request to run a whole playbook with the ``given`` parameters, the others taking
    their defaults (checked: a bad value raises ``PlaybookError``)."""
    values = resolve_parameters(spec, given)
    return dg.RunRequest(
        job_name=ASSET_JOB,
        asset_selection=playbook_asset_keys(spec, keys),
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


# One config type per parameter (and element) type, shared: Dagster computes each type's schema
# once. Dates travel as ISO text (Dagster has no date type; they are checked when the op starts).
_SCALAR_CONFIG_TYPES: dict[str, Any] = {
    "string": dg.String,
    "number": dg.Float,
    "integer": dg.Int,
    "boolean": dg.Bool,
    "date": dg.String,
    "identifier": dg.String,
}
_CONFIG_TYPES: dict[tuple[str, str | None], Any] = {}


def parameter_config_type(parameter: ParameterSpec) -> Any:
    """The Dagster config type of a parameter: what the launchpad checks before a run starts
    (a list's elements too, when their type is known)."""
    element = parameter.element_type if parameter.type == "array" else None
    key = (parameter.type, element)
    if key not in _CONFIG_TYPES:
        if parameter.type == "array":
            inner = _SCALAR_CONFIG_TYPES[element] if element is not None else dg.Any
            _CONFIG_TYPES[key] = dg.Noneable(dg.Array(dg.Noneable(inner)))
        else:
            _CONFIG_TYPES[key] = dg.Noneable(_SCALAR_CONFIG_TYPES[parameter.type])
    return _CONFIG_TYPES[key]


def to_config_value(value: Any) -> Any:
    """A coerced parameter value in the shape Dagster config accepts (dates as ISO text)."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [to_config_value(item) for item in value]
    return value


def run_config_values(spec: PlaybookSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """Coerced parameter values in the shape Dagster config accepts (dates as text)."""
    return {
        parameter.name: to_config_value(values[parameter.name])
        for parameter in spec.parameters
        if values.get(parameter.name) is not None
    }


def parameter_values(spec: PlaybookSpec, config: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter's value from the op config (Dagster filled in the defaults), checked
    and coerced to its Python type; a parameter with no value is None."""
    values: dict[str, Any] = {}
    for parameter in spec.parameters:
        raw = config.get(parameter.name, parameter.default)
        values[parameter.name] = coerce_parameter(parameter, raw) if raw is not None else None
    return values
