"""A playbook described for an agent: its parameters as a JSON schema, and each step with the
SQL, search or request it would send for the given parameters, rendered by the steps' own
code (the same safe rendering a run uses) without sending anything."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from playbook_assets.app.mcp.schemas import OutputInfo, PlaybookDescription, StepPlan
from playbook_assets.connections.registry import build_resource
from playbook_assets.connections.services import RunConnections
from playbook_assets.core.catalog import LoadedPlaybook
from playbook_assets.core.config import ExecutorConfig
from playbook_assets.core.errors import PlaybookError
from playbook_assets.core.parameters import resolve_parameters, to_json_value
from playbook_assets.core.plan import PlaybookPlan
from playbook_assets.core.references import ResolutionContext, walk_references
from playbook_assets.core.spec import ParameterSpec
from playbook_assets.core.steps.base import StepBase, StepContext
from playbook_assets.core.steps.registry import step_type

_JSON_TYPES: Mapping[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "identifier": {"type": "string", "description": "a table or column name, e.g. schema.table"},
    "number": {"type": "number"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "array": {"type": "array"},
}


def parameter_schema(parameter: ParameterSpec) -> dict[str, Any]:
    """One parameter as JSON schema: its type (an array's element type), default and
    description."""
    schema = dict(_JSON_TYPES[parameter.type])
    if parameter.type == "array" and parameter.element_type is not None:
        schema["items"] = dict(_JSON_TYPES[parameter.element_type])
    kind = schema.pop("description", "")
    if parameter.description or kind:
        schema["description"] = (
            f"{parameter.description} ({kind})"
            if parameter.description and kind
            else parameter.description or kind
        )
    if parameter.default is not None:
        schema["default"] = to_json_value(parameter.default)
    return schema


def parameters_schema(loaded: LoadedPlaybook) -> dict[str, Any]:
    """The playbook's parameters as the JSON schema of an object."""
    parameters = loaded.spec.parameters
    return {
        "type": "object",
        "properties": {parameter.name: parameter_schema(parameter) for parameter in parameters},
        "required": [p.name for p in parameters if p.required and p.default is None],
        "additionalProperties": False,
    }


def describe_playbook(
    loaded: LoadedPlaybook,
    config: ExecutorConfig,
    parameters: Mapping[str, Any] | None = None,
    *,
    data_warehouse: str | None = None,
    crm: str | None = None,
) -> PlaybookDescription:
    """The playbook with each step's request rendered for ``parameters`` (checked as a run
    checks them: a bad value is a ``PlaybookValidationError``); nothing is sent."""
    spec = loaded.spec
    values = resolve_parameters(spec, parameters or {})
    warehouse = data_warehouse or config.defaults.data_warehouse
    default_crm = crm or config.defaults.crm
    plan = PlaybookPlan.build(loaded, warehouse, default_crm)
    return {
        "id": spec.id,
        "name": spec.name,
        "description": spec.description.strip(),
        "version": spec.version,
        "file": loaded.display_path,
        "data_sources": [source.type for source in spec.data_sources],
        "parameters_schema": parameters_schema(loaded),
        "parameters_used": {name: to_json_value(value) for name, value in values.items()},
        "data_warehouse": warehouse,
        "crm": default_crm,
        "steps": [
            _step_plan(loaded, plan, config, spec.step(step_id), values) for step_id in plan.order
        ],
        "outputs": [
            OutputInfo(
                name=output.name,
                type=output.type,
                source=loaded.output_source(output),
                metrics=[f"{metric.name}: {metric.expression}" for metric in output.metrics],
            )
            for output in spec.outputs
        ],
        "partitions": spec.partitions.model_dump(mode="json") if spec.partitions else None,
    }


def _step_plan(
    loaded: LoadedPlaybook,
    plan: PlaybookPlan,
    config: ExecutorConfig,
    step: StepBase[Any],
    parameters: Mapping[str, Any],
) -> StepPlan:
    """A step with the request it would send; a step that reads another step's result or
    the run's partition is rendered only when it runs (``waits_for`` names what it reads)."""
    connection = plan.connections[step.id]
    entry = StepPlan(
        step_id=step.id,
        name=step.title,
        type=str(getattr(step, "type")),
        source=str(getattr(step, "source")),
        connection=connection,
        depends_on=list(plan.upstream[step.id]),
        request=None,
        waits_for=[],
        error=None,
    )
    references = walk_references(step.config.model_dump())
    run_time = sorted({ref.text for _, ref in references if ref.kind != "parameters"})
    if run_time:
        entry["waits_for"] = run_time
        return entry
    try:
        resources = {connection: build_resource(config, connection)} if connection else {}
        context = StepContext(
            loaded=loaded,
            connection=connection,
            services=RunConnections(
                resources,
                allowed_directories=tuple(str(folder) for folder in config.allowed_directories),
            ),
            timeout_seconds=step.timeout_seconds or config.execution.timeout_seconds,
        )
        prepared = step_type(step).prepare(
            step, context, ResolutionContext(parameters=parameters, steps={})
        )
    except PlaybookError as e:
        entry["error"] = str(e)
        return entry
    entry["request"] = prepared.request
    return entry
