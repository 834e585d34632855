"""Driving the MCP server with the SDK's own client, in process: a server over a test
project, and calls that return the structured result or the tool error's text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
from mcp import Client
from mcp.server.mcpserver import MCPServer

from playbook_assets.app.mcp.server import ServerOptions, build_server
from playbook_assets.app.mcp.service import PlaybookService
from playbook_assets.core.catalog import load_catalog
from playbook_assets.core.config import load_config
from playbook_defs import TEMPLATES_DIR

T = TypeVar("T")


def server_for(config_path: Path, options: ServerOptions | None = None) -> MCPServer:
    """The server ``playbook mcp --config config_path`` builds, in this process."""
    config = load_config(str(config_path))
    return build_server(PlaybookService(config, load_catalog(config, [TEMPLATES_DIR])), options)


def with_client(server: MCPServer, body: Callable[[Client], Awaitable[T]]) -> T:
    """Run ``body`` with an in-process client connected to ``server``."""

    async def main() -> T:
        async with Client(server) as client:
            return await body(client)

    return anyio.run(main)


async def call(client: Client, tool: str, arguments: dict[str, Any] | None = None) -> Any:
    """A tool's structured result; a tool error fails the test with its text."""
    result = await client.call_tool(tool, arguments or {})
    assert not result.is_error, result.content
    return result.structured_content


async def tool_error(client: Client, tool: str, arguments: dict[str, Any]) -> str:
    """The text of the tool error a call must end in."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    return " ".join(getattr(block, "text", "") for block in result.content)
