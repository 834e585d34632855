"""``playbook schema``: the JSON schema of the playbook format, of ``playbook-executor.yaml``
or of the component's ``defs.yaml``, for editors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playbook_assets.app.cli.common import EXIT_OK, Commands
from playbook_assets.core.artifacts import atomic_write_bytes
from playbook_assets.core.schema import config_schema, playbook_schema, schema_text, tests_schema


def add_commands(commands: Commands, common: argparse.ArgumentParser) -> None:
    """Add this group's commands to the parser."""
    # No global options: the schema reads no configuration, and its --config asks for the
    # configuration file's schema.
    del common
    schema = commands.add_parser(
        "schema",
        help="print the JSON schema of playbook files (or of the config, tests or defs.yaml)",
    )
    which = schema.add_mutually_exclusive_group()
    which.add_argument(
        "--config",
        dest="config_schema",
        action="store_true",
        help="the schema of playbook-executor.yaml",
    )
    which.add_argument("--tests", action="store_true", help="the schema of a playbook's tests file")
    which.add_argument(
        "--component",
        action="store_true",
        help="the schema of a defs.yaml that declares PlaybookCollectionComponent",
    )
    schema.add_argument("--output", metavar="FILE", help="write it to FILE instead of stdout")
    schema.set_defaults(handler=_cmd_schema)


def _cmd_schema(args: argparse.Namespace) -> int:
    if args.component:
        from playbook_assets.dagster_adapter.component import component_json_schema

        text = schema_text(component_json_schema())
    else:
        text = schema_text(
            config_schema()
            if args.config_schema
            else tests_schema()
            if args.tests
            else playbook_schema()
        )
    if args.output is None:
        sys.stdout.write(text)
    else:
        atomic_write_bytes(Path(args.output), text.encode("utf-8"))
        sys.stderr.write(f"wrote {args.output}\n")
    return EXIT_OK
