"""``playbook demo init`` and ``load``: the demo data set."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playbook_assets.app.cli.common import (
    EXIT_OK,
    Commands,
)
from playbook_assets.core.config import load_config
from playbook_assets.core.errors import PlaybookValidationError, unknown_name_hint


def add_commands(commands: Commands, common: argparse.ArgumentParser) -> None:
    """Add this group's commands to the parser."""
    demo = commands.add_parser("demo", parents=[common], help="demo data")
    demo_commands = demo.add_subparsers(dest="demo_command", metavar="COMMAND", required=True)
    init = demo_commands.add_parser("init", parents=[common], help="generate the demo data")
    init.add_argument("--scale", type=float, default=1.0, help="scale factor (1: ~10k accounts)")
    init.add_argument("--force", action="store_true", help="regenerate existing files")
    init.set_defaults(handler=_cmd_demo_init)
    load = demo_commands.add_parser(
        "load", parents=[common], help="copy the demo warehouse into a configured warehouse"
    )
    load.add_argument("--connection", required=True, metavar="NAME", help="target warehouse")
    load.set_defaults(handler=_cmd_demo_load)


def _cmd_demo_init(args: argparse.Namespace) -> int:
    from playbook_assets.connections.crm.demo import DemoCrm
    from playbook_assets.connections.registry import build_resource
    from playbook_assets.connections.warehouses.duckdb import DuckDBWarehouse
    from playbook_assets.demo.generator import CRM, WAREHOUSE, dataset_problem, write_demo_dataset

    if args.scale <= 0:
        raise PlaybookValidationError("--scale must be greater than 0", hint="e.g. --scale 0.1")
    config = load_config(args.config)
    targets: list[tuple[str, str, Path]] = []
    for name in config.connections:
        if config.connections[name].type not in {"duckdb", "demo"}:
            continue
        resource = build_resource(config, name)
        if isinstance(resource, DemoCrm):
            targets.append((name, CRM, Path(resource.database)))
        elif isinstance(resource, DuckDBWarehouse) and resource.demo_data:
            targets.append((name, WAREHOUSE, Path(resource.database)))
    if not targets:
        raise PlaybookValidationError(
            f"no demo connection in {config.display_path}",
            hint="the demo needs a 'demo' CRM connection or a duckdb one with demo_data: true",
        )
    files = [(kind, path) for _, kind, path in targets]
    if not args.force and any(path.exists() for _, path in files):
        problem = dataset_problem(files)
        if problem is None:
            for name, _, path in targets:
                sys.stdout.write(f"{name}: {path} exists (use --force to regenerate)\n")
            return EXIT_OK
        sys.stdout.write(f"regenerating the demo data set: {problem}\n")
    counts = write_demo_dataset(files, scale=args.scale)
    for name, _, path in targets:
        summary = ", ".join(f"{table} {rows:,}" for table, rows in counts[path].items())
        sys.stdout.write(f"{name}: wrote {path} ({summary})\n")
    return EXIT_OK


def _cmd_demo_load(args: argparse.Namespace) -> int:
    import duckdb

    from playbook_assets.connections.registry import build_resource, connection_type
    from playbook_assets.connections.warehouses.base import WarehouseResource
    from playbook_assets.connections.warehouses.duckdb import DuckDBWarehouse
    from playbook_assets.demo.generator import (
        WAREHOUSE_SCHEMA,
        WAREHOUSE_TABLES,
        ensure_demo_warehouse,
    )

    config = load_config(args.config)
    if args.connection not in config.connections:
        raise PlaybookValidationError(
            f"unknown connection '{args.connection}'",
            hint=unknown_name_hint(args.connection, config.connections, "connection"),
        )
    if connection_type(config.connections[args.connection]).category != "data_warehouse":
        raise PlaybookValidationError(f"connection '{args.connection}' is not a data warehouse")
    sources = [
        resource
        for name in config.connections
        if isinstance(resource := build_resource(config, name), DuckDBWarehouse)
        and resource.demo_data
    ]
    if not sources:
        raise PlaybookValidationError(
            "no demo warehouse in the config", hint="add a duckdb connection with demo_data: true"
        )
    source = Path(sources[0].database)
    ensure_demo_warehouse(source, sources[0].demo_scale)
    target = build_resource(config, args.connection)
    assert isinstance(target, WarehouseResource)
    target = target.process_config_and_initialize()  # reads ${VAR} secrets now
    target.raise_if_unresolved(args.connection)
    with duckdb.connect(str(source), read_only=True) as con:
        for name in WAREHOUSE_TABLES:
            table_name = f"{WAREHOUSE_SCHEMA}.{name}"
            table = con.sql(f"FROM {table_name}").to_arrow_table()
            target.load_table(table_name, table)
            sys.stdout.write(f"{args.connection}: loaded {table_name} ({table.num_rows:,} rows)\n")
    return EXIT_OK
