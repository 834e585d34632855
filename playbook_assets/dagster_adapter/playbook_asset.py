"""A playbook as one subsettable multi-asset: one op, named after the playbook, whose assets
are its steps, outputs and run report, and whose config is the playbook's typed parameters
with their defaults filled in (the launchpad shows and checks them)."""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from playbook_assets.core.parameters import coerce_parameter
from playbook_assets.core.plan import PlaybookPlan
from playbook_assets.core.spec import ParameterSpec, PlaybookSpec
from playbook_assets.dagster_adapter.partitions import backfill_policy, partitions_definition
from playbook_assets.dagster_adapter.playbook_op import run_playbook_op
from playbook_assets.dagster_adapter.run_config import (
    TAG_PLAYBOOK,
    parameter_config_type,
    to_config_value,
)
from playbook_assets.dagster_adapter.translator import PlaybookTranslator


def connection_resource_key(name: str) -> str:
    """Resource key of a named connection."""
    return f"connection_{name}"


def playbook_multi_asset(plan: PlaybookPlan, translator: PlaybookTranslator) -> dg.AssetsDefinition:
    """The multi-asset of one playbook: its steps, outputs and run report."""
    loaded = plan.loaded
    spec = loaded.spec
    resource_keys = {"run_settings"} | {
        connection_resource_key(name) for name in plan.used_connections
    }
    checks = translator.check_specs(loaded)

    @dg.multi_asset(
        name=spec.id,
        specs=translator.asset_specs(plan),
        check_specs=checks or None,
        can_subset=True,
        description=spec.description or spec.name,
        config_schema=parameters_config_schema(spec),
        required_resource_keys=resource_keys,
        partitions_def=partitions_definition(spec.partitions),
        backfill_policy=backfill_policy(spec.partitions),
        pool=_pool(plan),
        op_tags={TAG_PLAYBOOK: spec.id},
    )
    def playbook(context: dg.AssetExecutionContext) -> Iterator[Any]:
        yield from run_playbook_op(context, plan, translator.asset_key)

    return playbook


def parameters_config_schema(spec: PlaybookSpec) -> dict[str, dg.Field] | None:
    """The op config of a playbook: its typed parameters, defaults filled in."""
    if not spec.parameters:
        return None
    return {parameter.name: _config_field(parameter) for parameter in spec.parameters}


def _config_field(parameter: ParameterSpec) -> dg.Field:
    config_type = parameter_config_type(parameter)
    description = parameter.description or None
    if parameter.default is not None:
        default = coerce_parameter(parameter, parameter.default, strict=True)
        return dg.Field(
            config_type, default_value=to_config_value(default), description=description
        )
    return dg.Field(config_type, is_required=parameter.required, description=description)


def _pool(plan: PlaybookPlan) -> str | None:
    """The op's concurrency pool: its warehouse connection's, else its CRM's, else none.

    An op has one pool, so a playbook that uses a warehouse and a CRM counts against its
    warehouse's.
    """
    used = plan.used_connections
    if not used:
        return None
    for preferred in (plan.data_warehouse, plan.crm):
        if preferred in used:
            return connection_resource_key(preferred)
    return connection_resource_key(sorted(used)[0])
