"""The ``playbook`` command line.

Exit codes: 0 every step succeeded, 1 a step failed or the run's record could not be stored
(the report is still printed), 2 a usage or validation error (nothing ran). One module per
group of commands; each adds its commands to the parser (``add_commands``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from playbook_assets.app.cli import (
    artifact_commands,
    catalog_commands,
    demo_commands,
    mcp_commands,
    partition_commands,
    run_commands,
    schema_commands,
    test_commands,
)
from playbook_assets.app.cli.common import EXIT_INVALID, global_options
from playbook_assets.core.errors import PlaybookError

_GROUPS = (
    catalog_commands,
    run_commands,
    partition_commands,
    artifact_commands,
    demo_commands,
    mcp_commands,
    schema_commands,
    test_commands,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``playbook`` console script."""
    parser = parser_of_commands()
    # k=v parameters may come after options (`run ID --params-file F k=v`).
    args, extra = parser.parse_known_args(argv)
    if extra:
        if getattr(args, "command", None) == "run" and all(
            "=" in item and not item.startswith("-") for item in extra
        ):
            args.assignments = [*args.assignments, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_INVALID
    try:
        return args.handler(args)
    except PlaybookError as e:
        sys.stderr.write(f"error: {e}\n")
        return EXIT_INVALID


def parser_of_commands() -> argparse.ArgumentParser:
    """The parser of every command."""
    parser = argparse.ArgumentParser(
        prog="playbook",
        description="Run business-intelligence playbooks on Dagster.",
        parents=[global_options(None)],
    )
    # A subcommand's own copy of a global option must not reset what was given before the
    # subcommand (`playbook --config X run ID`): argparse would write its default over it.
    common = global_options(argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in _GROUPS:
        group.add_commands(commands, common)
    return parser
