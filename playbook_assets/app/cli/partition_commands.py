"""``playbook partitions list`` and ``add``: a playbook's partitions."""

from __future__ import annotations

import argparse
import sys

from playbook_assets.app.cli.common import (
    EXIT_OK,
    Commands,
    load,
    quiet_warnings,
)
from playbook_assets.core.errors import PlaybookValidationError, unknown_name_hint


def add_commands(commands: Commands, common: argparse.ArgumentParser) -> None:
    """Add this group's commands to the parser."""
    partitions = commands.add_parser("partitions", parents=[common], help="partitions")
    partition_commands = partitions.add_subparsers(
        dest="partitions_command", metavar="COMMAND", required=True
    )
    partitions_list = partition_commands.add_parser(
        "list", parents=[common], help="a playbook's partition keys"
    )
    partitions_list.add_argument("playbook_id", metavar="ID")
    partitions_list.set_defaults(handler=_cmd_partitions_list)
    partitions_add = partition_commands.add_parser(
        "add", parents=[common], help="add keys to a dynamic partition set"
    )
    partitions_add.add_argument("name", metavar="NAME")
    partitions_add.add_argument("keys", nargs="+", metavar="KEY")
    partitions_add.set_defaults(handler=_cmd_partitions_add)


def _cmd_partitions_list(args: argparse.Namespace) -> int:
    from playbook_assets.app.runner import dagster_instance

    quiet_warnings()
    from playbook_assets.dagster_adapter.partitions import partitions_definition

    _, catalog = load(args)
    spec = catalog.get(args.playbook_id).spec
    partitions = partitions_definition(spec.partitions)
    if partitions is None:
        raise PlaybookValidationError(f"playbook '{spec.id}' has no partitions")
    for key in partitions.get_partition_keys(dynamic_partitions_store=dagster_instance()):
        sys.stdout.write(f"{key}\n")
    return EXIT_OK


def _cmd_partitions_add(args: argparse.Namespace) -> int:
    from playbook_assets.app.runner import dagster_instance

    quiet_warnings()
    from playbook_assets.core.spec import DynamicPartitions

    _, catalog = load(args)
    names = sorted(
        {
            loaded.spec.partitions.name
            for loaded in catalog.playbooks.values()
            if isinstance(loaded.spec.partitions, DynamicPartitions)
        }
    )
    if args.name not in names:
        raise PlaybookValidationError(
            f"no playbook has dynamic partitions named '{args.name}'",
            hint=unknown_name_hint(args.name, names, "dynamic partition set"),
        )
    instance = dagster_instance()
    existing = set(instance.get_dynamic_partitions(args.name))
    new = [key for key in dict.fromkeys(args.keys) if key not in existing]
    instance.add_dynamic_partitions(args.name, new)
    sys.stdout.write(f"{args.name}: added {len(new)}, {len(existing) + len(new)} in all\n")
    return EXIT_OK
