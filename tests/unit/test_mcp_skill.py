"""The agent skill shipped with the product names only tools the MCP server has and commands
the command line accepts, and it names every tool."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import anyio
from mcp import Client

from playbook_assets.app.cli.main import parser_of_commands
from tests.conftest import Project
from tests.mcp_client import server_for

SKILL = Path(__file__).resolve().parents[2] / "skills" / "playbook-executor" / "SKILL.md"
TOOL_CALL = re.compile(r"`([a-z_<>]+)\(")
COMMAND_LINE = re.compile(r"^(playbook .+)$", re.MULTILINE)
INLINE_COMMAND = re.compile(r"`(playbook [^`]+)`")


def server_tools(project: Project) -> set[str]:
    async def main() -> set[str]:
        async with Client(server_for(project.config_path)) as client:
            return {tool.name for tool in (await client.list_tools()).tools}

    return anyio.run(main)


def test_the_skill_names_every_tool_and_only_tools_that_exist(project: Project) -> None:
    text = SKILL.read_text(encoding="utf-8")
    named = set(TOOL_CALL.findall(text))
    tools = server_tools(project)
    playbook_tools = {name for name in tools if name.startswith("run_") and name != "run_playbook"}
    assert "run_<playbook_id>" in named
    named.discard("run_<playbook_id>")
    assert named - tools == set()
    assert tools - playbook_tools <= named


def test_every_command_in_the_skill_parses() -> None:
    text = SKILL.read_text(encoding="utf-8")
    parser = parser_of_commands()
    commands = [*COMMAND_LINE.findall(text), *INLINE_COMMAND.findall(text)]
    assert len(commands) >= 9
    for command in commands:
        args, extra = parser.parse_known_args(shlex.split(command)[1:])  # a bad one exits
        assert args.command, command
        assert all("=" in item for item in extra), command
