"""The MCP server: the product's tools for agents, on the official SDK's ``MCPServer``.

Reading tools (listing, describing, validating, run records, stored rows, verifying) are
always offered; the running tools (``run_playbook`` and one ``run_<playbook_id>`` per
playbook) are left out in read-only mode. A tool's failure is a tool error whose text is the
product's own message (the same as the command line's), with every configured secret masked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from playbook_assets.app.mcp.playbook_tools import add_playbook_tool
from playbook_assets.app.mcp.progress import new_run_id, run_with_progress
from playbook_assets.app.mcp.rows import MAX_PAGE_ROWS
from playbook_assets.app.mcp.schemas import (
    PlaybookDescription,
    PlaybookList,
    RunList,
    RunReport,
    StepRows,
    ValidationResult,
    Verification,
)
from playbook_assets.app.mcp.service import DEFAULT_RUNS_LIMIT, PlaybookService
from playbook_assets.core.errors import PlaybookError
from playbook_assets.core.redaction import redact

SERVER_NAME = "playbook-executor"
INSTRUCTIONS = (
    "Business-intelligence playbooks (multi-step warehouse queries, CRM searches and "
    "transforms) run through Dagster. list_playbooks shows what exists; describe_playbook "
    "shows a playbook's parameters and the SQL it would send, without running it; "
    "run_playbook (or run_<playbook_id>) runs one and returns its report; get_step_rows "
    "pages through a stored result."
)
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
RUNS = ToolAnnotations(read_only_hint=False, open_world_hint=True)

T = TypeVar("T")

PlaybookId = Annotated[str, Field(description="a playbook id, as list_playbooks lists them")]
Parameters = Annotated[
    dict[str, Any] | None,
    Field(description="parameter values by name (JSON types); the defaults fill the rest"),
]
RunId = Annotated[str, Field(description="a run id, e.g. run_20260128_143000_abc123")]
Connection = Annotated[
    str | None, Field(description="a connection name of the configuration (default: its own)")
]


@dataclass(frozen=True)
class ServerOptions:
    """How the server is built: read-only, and with one tool per playbook or not."""

    read_only: bool = False
    playbook_tools: bool = True


@contextmanager
def tool_errors() -> Iterator[None]:
    """The product's errors as tool errors the agent reads (secrets masked)."""
    try:
        yield
    except PlaybookError as e:
        raise ToolError(redact(str(e))) from None


def _call(function: Callable[..., T], *args: Any) -> T:
    with tool_errors():
        return function(*args)


def build_server(service: PlaybookService, options: ServerOptions | None = None) -> MCPServer:
    """The MCP server over ``service``'s playbooks."""
    options = options or ServerOptions()
    server = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS, log_level="WARNING")

    @server.tool(annotations=READ_ONLY)
    def list_playbooks() -> PlaybookList:
        """The playbooks: ids, names, descriptions, data sources and parameters (name, type,
        default), and the files that failed to load with their errors."""
        return _call(service.list_playbooks)

    @server.tool(annotations=READ_ONLY)
    def describe_playbook(
        playbook_id: PlaybookId,
        parameters: Parameters = None,
        data_warehouse: Connection = None,
        crm: Connection = None,
    ) -> PlaybookDescription:
        """One playbook: its parameters as a JSON schema, its steps with their sources and
        dependencies, its outputs and partitions, and the SQL or search each step would send
        for the given parameters (a dry run: nothing is sent)."""
        return _call(service.describe, playbook_id, parameters, data_warehouse, crm)

    @server.tool(annotations=READ_ONLY)
    def get_run(run_id: RunId) -> RunReport:
        """A stored run's report (checked against its recorded sha256)."""
        return _call(service.get_run, run_id)

    @server.tool(annotations=READ_ONLY)
    def list_runs(
        playbook_id: Annotated[str | None, Field(description="only this playbook's runs")] = None,
        limit: Annotated[int, Field(ge=1, le=1000, description="most runs to list")] = (
            DEFAULT_RUNS_LIMIT
        ),
    ) -> RunList:
        """Stored runs, newest first: id, playbook, time, status, artifacts and bytes."""
        return _call(service.list_runs, playbook_id, limit)

    @server.tool(annotations=READ_ONLY)
    def get_step_rows(
        run_id: RunId,
        step_or_output: Annotated[str, Field(description="a step id or output name")],
        limit: Annotated[int, Field(ge=1, le=MAX_PAGE_ROWS, description="rows in this page")] = 100,
        offset: Annotated[int, Field(ge=0, description="the first row of the page")] = 0,
    ) -> StepRows:
        """A page of the rows a run stored for a step or output (verified against the
        sha256 of its manifest); ``next_offset`` gives the next page."""
        return _call(service.step_rows, run_id, step_or_output, limit, offset)

    @server.tool(annotations=READ_ONLY)
    def validate_playbook(
        yaml_text: Annotated[str, Field(description="the playbook file's text (YAML)")],
    ) -> ValidationResult:
        """Check a playbook before it is saved: its error names the line, step and field,
        and says how to fix it."""
        return _call(service.validate, yaml_text)

    @server.tool(annotations=READ_ONLY)
    def verify_artifacts(run_id: RunId) -> Verification:
        """Recompute every checksum of a stored run: report, playbook copy and results."""
        return _call(service.verify, run_id)

    if options.read_only:
        return server

    async def run(
        playbook_id: str,
        parameters: Mapping[str, Any] | None,
        save_artifacts: bool,
        partition: str | None,
        ctx: Context[Any, Any],
        data_warehouse: str | None = None,
        crm: str | None = None,
    ) -> RunReport:
        with tool_errors():
            request = service.run_request(
                playbook_id,
                parameters,
                save_artifacts=save_artifacts,
                data_warehouse=data_warehouse,
                crm=crm,
                partition=partition,
                run_id=new_run_id(),
            )
            return await run_with_progress(service, request, ctx)

    @server.tool(annotations=RUNS)
    async def run_playbook(
        playbook_id: PlaybookId,
        ctx: Context[Any, Any],
        parameters: Parameters = None,
        save_artifacts: Annotated[
            bool, Field(description="store the results and the run record")
        ] = True,
        data_warehouse: Connection = None,
        crm: Connection = None,
        partition: Annotated[
            str | None, Field(description="the partition key (partitioned playbooks)")
        ] = None,
    ) -> RunReport:
        """Run a playbook through Dagster (it shows in the Dagster UI) and return its run
        report: steps, summary, outputs, insights, artifact path. Each finished step is
        reported as progress; cancelling the call stops the run before its next step."""
        return await run(
            playbook_id, parameters, save_artifacts, partition, ctx, data_warehouse, crm
        )

    if options.playbook_tools:
        for loaded in sorted(service.catalog.playbooks.values(), key=lambda p: p.id):
            add_playbook_tool(server, loaded, run)
    return server
