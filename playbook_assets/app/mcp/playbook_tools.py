"""One tool per playbook, ``run_<playbook_id>``, whose input schema is the playbook's typed
parameters, so an agent's client checks the values before it calls.

The schema tells the client each parameter's type; the values themselves are checked by the
product's own parameter rules when the run starts (``core.parameters``), with the same
messages as the command line: a number a float cannot hold exactly, for one, is refused
there rather than rounded by a schema validator on the way in.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolAnnotations
from pydantic import Field, WithJsonSchema

from playbook_assets.app.mcp.describe import parameter_schema
from playbook_assets.app.mcp.schemas import RunReport
from playbook_assets.core.catalog import LoadedPlaybook

# The tool's own arguments beside the playbook's parameters (a parameter of the same name
# wins: the argument is then left out).
SAVE_ARTIFACTS = "save_artifacts"
PARTITION = "partition"
CONTEXT = "mcp_context"

# Runs a playbook: (playbook id, its parameters, save_artifacts, partition, context).
RunFunction = Callable[
    [str, dict[str, Any], bool, str | None, Context[Any, Any]], Awaitable[RunReport]
]


def tool_name(loaded: LoadedPlaybook) -> str:
    """The name of a playbook's own tool."""
    return f"run_{loaded.id}"


def add_playbook_tool(server: MCPServer, loaded: LoadedPlaybook, run: RunFunction) -> None:
    """Add ``run_<playbook_id>`` to ``server``: its arguments are the playbook's parameters
    (required ones without a default are required), ``save_artifacts`` and, for a
    partitioned playbook, ``partition``."""
    spec = loaded.spec
    names = {parameter.name for parameter in spec.parameters}
    parameters: list[inspect.Parameter] = []
    annotations: dict[str, Any] = {}
    for parameter in spec.parameters:
        schema = parameter_schema(parameter)
        annotation = Annotated[
            Any, WithJsonSchema(schema), Field(description=schema.get("description"))
        ]
        required = parameter.required and parameter.default is None
        parameters.append(
            inspect.Parameter(
                parameter.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if required else schema.get("default"),
                annotation=annotation,
            )
        )
        annotations[parameter.name] = annotation
    extras: list[tuple[str, Any, Any]] = [
        (
            SAVE_ARTIFACTS,
            Annotated[bool, Field(description="store the results and the run record")],
            True,
        )
    ]
    if spec.partitions is not None:
        extras.append(
            (
                PARTITION,
                Annotated[str, Field(description="the partition key to run")],
                inspect.Parameter.empty,
            )
        )
    for name, annotation, default in extras:
        if name not in names:
            parameters.append(
                inspect.Parameter(
                    name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
                )
            )
            annotations[name] = annotation
    parameters.append(
        inspect.Parameter(CONTEXT, inspect.Parameter.KEYWORD_ONLY, annotation=Context)
    )
    annotations[CONTEXT] = Context

    async def run_this(**arguments: Any) -> RunReport:
        ctx = arguments.pop(CONTEXT)
        save = bool(arguments.pop(SAVE_ARTIFACTS, True)) if SAVE_ARTIFACTS not in names else True
        partition = arguments.pop(PARTITION, None) if PARTITION not in names else None
        given = {name: value for name, value in arguments.items() if value is not None}
        return await run(spec.id, given, save, partition, ctx)

    run_this.__signature__ = inspect.Signature(parameters, return_annotation=RunReport)  # type: ignore[attr-defined]
    run_this.__annotations__ = {**annotations, "return": RunReport}
    run_this.__name__ = tool_name(loaded)
    description = spec.description.strip() or spec.name
    server.add_tool(
        run_this,
        name=tool_name(loaded),
        title=f"Run {spec.name}",
        description=f"Run the playbook {spec.id} ({spec.name}) through Dagster: {description} "
        "Returns the run report; each finished step is reported as progress.",
        annotations=ToolAnnotations(read_only_hint=False, open_world_hint=True),
    )
