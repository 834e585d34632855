"""``playbook mcp``: the MCP server for agents, over stdio or streamable HTTP."""

from __future__ import annotations

import argparse
import ipaddress

from playbook_assets.app.cli.common import EXIT_OK, Commands, load, quiet_warnings
from playbook_assets.core.errors import PlaybookValidationError


def add_commands(commands: Commands, common: argparse.ArgumentParser) -> None:
    """Add this group's commands to the parser."""
    mcp = commands.add_parser(
        "mcp", parents=[common], help="serve the playbooks to agents (Model Context Protocol)"
    )
    mcp.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="serve streamable HTTP on HOST:PORT (e.g. 127.0.0.1:8765) instead of stdio",
    )
    mcp.add_argument(
        "--read-only",
        action="store_true",
        help="offer only the listing, describing, validating and reading tools (no runs)",
    )
    mcp.add_argument(
        "--no-playbook-tools",
        action="store_true",
        help="no run_<playbook_id> tool per playbook (run_playbook only)",
    )
    mcp.set_defaults(handler=_cmd_mcp)


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` of ``--http``, the host an IP address or ``localhost``."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    valid_host = host == "localhost"
    if not valid_host:
        try:
            ipaddress.ip_address(host)
            valid_host = True
        except ValueError:
            valid_host = False
    if not sep or not valid_host or not port.isdigit() or not 0 < int(port) < 65536:
        raise PlaybookValidationError(
            f"--http {text} is not HOST:PORT", hint="e.g. --http 127.0.0.1:8765"
        )
    return host, int(port)


def _cmd_mcp(args: argparse.Namespace) -> int:
    quiet_warnings()
    from playbook_assets.app.mcp.server import ServerOptions, build_server
    from playbook_assets.app.mcp.service import PlaybookService

    address = parse_address(args.http) if args.http else None
    config, catalog = load(args)
    options = ServerOptions(read_only=args.read_only, playbook_tools=not args.no_playbook_tools)
    server = build_server(PlaybookService(config, catalog), options)
    if address is None:
        server.run("stdio")
    else:
        server.run("streamable-http", host=address[0], port=address[1])
    return EXIT_OK
