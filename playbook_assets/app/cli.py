"""The ``playbook`` command line.

Exit codes: 0 every step succeeded, 1 a step failed or the run's record could not be stored
(the report is still printed), 2 a usage or validation error (nothing ran).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from playbook_assets.core.catalog import PlaybookCatalog, load_catalog, load_playbook_file
from playbook_assets.core.config import ExecutorConfig, load_config
from playbook_assets.core.errors import PlaybookError, PlaybookValidationError, unknown_name_hint
from playbook_assets.core.spec import PlaybookSpec

if TYPE_CHECKING:
    from playbook_assets.app.runner import RunRequest

EXIT_OK = 0
EXIT_STEP_FAILED = 1
EXIT_INVALID = 2


def templates_dir() -> Path:
    """The built-in playbook templates shipped with the code location."""
    from playbook_defs import TEMPLATES_DIR

    return TEMPLATES_DIR


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``playbook`` console script."""
    parser = _parser()
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
    _quiet_warnings()
    try:
        return args.handler(args)
    except PlaybookError as e:
        sys.stderr.write(f"error: {e}\n")
        return EXIT_INVALID


def _quiet_warnings() -> None:
    """Dagster's beta/preview notices are for library authors, not for command-line users."""
    import dagster as dg

    for category in (dg.BetaWarning, dg.PreviewWarning, dg.SupersessionWarning):
        warnings.filterwarnings("ignore", category=category)


def _global_options(default: Any) -> argparse.ArgumentParser:
    """The options every command takes, before or after the command's name."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="config file (default: $PLAYBOOK_CONFIG, else ./config/playbook-executor.yaml)",
    )
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="playbook",
        description="Run business-intelligence playbooks on Dagster.",
        parents=[_global_options(None)],
    )
    # A subcommand's own copy of a global option must not reset what was given before the
    # subcommand (`playbook --config X run ID`): argparse would write its default over it.
    common = _global_options(argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    listing = commands.add_parser("list", parents=[common], help="list playbooks")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_cmd_list)

    show = commands.add_parser("show", parents=[common], help="show one playbook")
    show.add_argument("playbook_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=_cmd_show)

    validate = commands.add_parser(
        "validate", parents=[common], help="validate playbooks (all, or the given files)"
    )
    validate.add_argument("paths", nargs="*", metavar="PATH")
    validate.add_argument(
        "--strict", action="store_true", help="also fail on warnings (e.g. a replaced built-in)"
    )
    validate.set_defaults(handler=_cmd_validate)

    run = commands.add_parser("run", parents=[common], help="run a playbook through Dagster")
    run.add_argument("playbook_id", metavar="ID")
    run.add_argument("assignments", nargs="*", metavar="k=v", help="parameter values")
    run.add_argument(
        "--param", "-p", action="append", default=[], metavar="k=v", help="a parameter value"
    )
    run.add_argument("--params-file", metavar="F", help="YAML or JSON mapping of parameters")
    run.add_argument("--data-warehouse", metavar="NAME", help="override defaults.data_warehouse")
    run.add_argument("--crm", metavar="NAME", help="override defaults.crm")
    run.add_argument(
        "--no-artifacts", action="store_true", help="keep results in memory; write nothing"
    )
    run.add_argument("--partition", metavar="KEY", help="the partition to run (partitioned)")
    run.add_argument("--json", action="store_true", help="print JSON even on a terminal")
    run.set_defaults(handler=_cmd_run)

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

    rerun = commands.add_parser(
        "rerun", parents=[common], help="run a stored run's playbook again with its parameters"
    )
    rerun.add_argument("run_id", metavar="RUN_ID")
    rerun.add_argument("--json", action="store_true", help="print JSON even on a terminal")
    rerun.set_defaults(handler=_cmd_rerun)

    report = commands.add_parser(
        "report", parents=[common], help="a stored run's report: HTML, Markdown or JSON"
    )
    report.add_argument("run_id", metavar="RUN_ID")
    report.add_argument(
        "--format", choices=("html", "md", "json"), default="html", help="default: html"
    )
    report.add_argument("--output", "-o", metavar="FILE", help="write it to FILE (else print)")
    report.set_defaults(handler=_cmd_report)

    artifacts = commands.add_parser("artifacts", parents=[common], help="the artifact store")
    artifact_commands = artifacts.add_subparsers(
        dest="artifacts_command", metavar="COMMAND", required=True
    )
    artifacts_list = artifact_commands.add_parser("list", parents=[common], help="stored runs")
    artifacts_list.add_argument("--playbook", metavar="ID", help="only runs of this playbook")
    artifacts_list.add_argument("--json", action="store_true", help="print JSON")
    artifacts_list.set_defaults(handler=_cmd_artifacts_list)
    artifacts_show = artifact_commands.add_parser("show", parents=[common], help="a run's manifest")
    artifacts_show.add_argument("run_id", metavar="RUN_ID")
    artifacts_show.set_defaults(handler=_cmd_artifacts_show)
    verify = artifact_commands.add_parser(
        "verify", parents=[common], help="recompute every checksum of a run (or of all runs)"
    )
    verify.add_argument("run_id", metavar="RUN_ID", nargs="?")
    verify.add_argument("--all", action="store_true", help="verify every stored run")
    verify.set_defaults(handler=_cmd_artifacts_verify)
    prune = artifact_commands.add_parser(
        "prune", parents=[common], help="remove runs older than artifacts.retention_days"
    )
    prune.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    prune.set_defaults(handler=_cmd_artifacts_prune)

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
    return parser


def _load(args: argparse.Namespace) -> tuple[ExecutorConfig, PlaybookCatalog]:
    config = load_config(args.config)
    return config, load_catalog(config, [templates_dir()])


def _cmd_list(args: argparse.Namespace) -> int:
    _, catalog = _load(args)
    rows = [
        {
            "id": loaded.id,
            "name": loaded.spec.name,
            "steps": len(loaded.spec.steps),
            "data_sources": [source.type for source in loaded.spec.data_sources],
            "origin": loaded.origin,
            "file": loaded.display_path,
        }
        for loaded in sorted(catalog.playbooks.values(), key=lambda p: p.id)
    ]
    invalid = [
        {"id": broken.playbook_id, "file": broken.display_path, "error": str(broken.error)}
        for broken in catalog.broken
    ]
    if args.json:
        _print_json({"playbooks": rows, "invalid": invalid})
        return EXIT_OK
    width = max((len(row["id"]) for row in rows), default=2)
    for row in rows:
        sources = "+".join(_short_source(s) for s in row["data_sources"]) or "-"
        sys.stdout.write(
            f"{row['id']:<{width}}  {row['steps']} steps  {sources:<7}  {row['name']}"
            f"{'  (custom)' if row['origin'] == 'custom' else ''}\n"
        )
    for broken in invalid:
        sys.stdout.write(f"INVALID {broken['file']}: {broken['error']}\n")
    return EXIT_OK


def _short_source(kind: str) -> str:
    return {"data_warehouse": "DW", "crm": "CRM", "api": "API", "file": "FILE"}.get(kind, kind)


def _cmd_show(args: argparse.Namespace) -> int:
    _, catalog = _load(args)
    loaded = catalog.get(args.playbook_id)
    spec = loaded.spec
    if args.json:
        _print_json(
            {"file": loaded.display_path, "origin": loaded.origin, **spec.model_dump(mode="json")}
        )
        return EXIT_OK
    out = sys.stdout
    out.write(f"{spec.id}: {spec.name} (version {spec.version})\n")
    out.write(f"file: {loaded.display_path} ({loaded.origin})\n")
    if spec.description:
        out.write(f"\n{spec.description.strip()}\n")
    if spec.parameters:
        out.write("\nparameters:\n")
        for parameter in spec.parameters:
            default = "" if parameter.default is None else f" = {parameter.default!r}"
            text = f" - {parameter.description}" if parameter.description else ""
            out.write(f"  {parameter.name} ({parameter.type}){default}{text}\n")
    out.write("\nsteps:\n")
    for step in spec.steps:
        after = f" after {', '.join(step.depends_on)}" if step.depends_on else ""
        out.write(f"  {step.id}: {step.title} [{step.source}/{step.type}]{after}\n")
    if spec.outputs:
        out.write("\noutputs:\n")
        for output in spec.outputs:
            out.write(f"  {output.name} ({output.type}) from {output.source or '(default)'}\n")
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.paths:
        failures = 0
        for raw in args.paths:
            path = Path(raw)
            try:
                loaded = load_playbook_file(path, config)
            except PlaybookError as e:
                failures += 1
                sys.stderr.write(f"error: {e}\n")
                continue
            sys.stdout.write(f"ok {loaded.id} ({loaded.display_path})\n")
        return EXIT_INVALID if failures else EXIT_OK
    catalog = load_catalog(config, [templates_dir()])
    for loaded in sorted(catalog.playbooks.values(), key=lambda p: p.id):
        sys.stdout.write(f"ok {loaded.id} ({loaded.display_path})\n")
    warnings_found = 0
    for playbook_id, builtin in sorted(catalog.replaced.items()):
        warnings_found += 1
        replacement = catalog.playbooks[playbook_id].display_path
        sys.stderr.write(
            f"warning: {replacement}: playbook '{playbook_id}' "
            f"replaces the built-in {builtin.name}\n"
        )
    for broken in catalog.broken:
        sys.stderr.write(f"error: {broken.error}\n")
    if catalog.broken or (args.strict and warnings_found):
        return EXIT_INVALID
    return EXIT_OK


def _parse_assignments(items: Sequence[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise PlaybookValidationError(
                f"parameter '{item}' is not of the form name=value", hint="e.g. min_arr=50000"
            )
        values[name.strip()] = value
    return values


def _read_params_file(path: str, spec: PlaybookSpec) -> dict[str, Any]:
    from playbook_assets.core.parameters import params_from_yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise PlaybookValidationError(f"cannot read params file {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise PlaybookValidationError(f"params file {path} is not UTF-8 text") from e
    return params_from_yaml(text, spec, path)


def _cmd_run(args: argparse.Namespace) -> int:
    from playbook_assets.app.runner import RunRequest

    config, catalog = _load(args)
    loaded = catalog.get(args.playbook_id)
    from_file = _read_params_file(args.params_file, loaded.spec) if args.params_file else {}
    from_text = _parse_assignments([*args.param, *args.assignments])
    request = RunRequest(
        loaded=loaded,
        config=config,
        file_parameters=from_file,
        text_parameters=from_text,
        data_warehouse=args.data_warehouse,
        crm=args.crm,
        save_artifacts=not args.no_artifacts,
        partition=args.partition,
    )
    return _run_and_report(request, args)


def _run_and_report(request: RunRequest, args: argparse.Namespace) -> int:
    """Run, print the report, and say on stderr what could not be stored, if anything.

    The report is printed even when its record cannot be written (disk full): the run
    happened and its figures are known; the exit code is then 1.
    """
    from playbook_assets.app.runner import run_playbook
    from playbook_assets.core.artifacts import ensure_folder
    from playbook_assets.core.errors import SourceLocation
    from playbook_assets.core.run_records import RunRecordNotStoredError

    config = request.config
    if request.save_artifacts and config.artifacts.enabled:
        try:  # before anything runs: a file where the folder should be is a config error
            ensure_folder(config.artifacts_dir)
        except PlaybookError as e:
            raise e.at(location=SourceLocation(config.display_path), field="artifacts.directory")
    not_stored: PlaybookError | None = None
    try:
        report = run_playbook(request)
    except RunRecordNotStoredError as e:
        report = {**e.report, "artifact_path": None}
        not_stored = e
    if args.json or not sys.stdout.isatty():
        _print_json(report)
    else:
        _print_summary(report, sys.stdout)
    sys.stdout.flush()
    if not_stored is not None:
        sys.stderr.write(f"error: {not_stored}\n")
        return EXIT_STEP_FAILED
    return EXIT_OK if report["status"] == "success" else EXIT_STEP_FAILED


def _cmd_partitions_list(args: argparse.Namespace) -> int:
    from playbook_assets.app.runner import dagster_instance
    from playbook_assets.dagster_adapter.partitions import partitions_definition

    _, catalog = _load(args)
    spec = catalog.get(args.playbook_id).spec
    partitions = partitions_definition(spec.partitions)
    if partitions is None:
        raise PlaybookValidationError(f"playbook '{spec.id}' has no partitions")
    for key in partitions.get_partition_keys(dynamic_partitions_store=dagster_instance()):
        sys.stdout.write(f"{key}\n")
    return EXIT_OK


def _cmd_partitions_add(args: argparse.Namespace) -> int:
    from playbook_assets.app.runner import dagster_instance
    from playbook_assets.core.spec import DynamicPartitions

    _, catalog = _load(args)
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


def _cmd_rerun(args: argparse.Namespace) -> int:
    from playbook_assets.app.runner import RunRequest
    from playbook_assets.core.run_records import checked_playbook_copy, load_run

    config, catalog = _load(args)
    record = load_run(config.artifacts_dir, args.run_id)
    manifest = record.manifest
    playbook_id = record.playbook_id
    current = catalog.playbooks.get(playbook_id)
    if current is not None and current.sha256 == manifest["playbook"]["sha256"]:
        loaded = current
    else:
        copy = checked_playbook_copy(record)
        sys.stderr.write(
            f"note: {manifest['playbook']['file']} changed since {record.run_id}; "
            f"rerunning the playbook as it ran, from {copy}\n"
        )
        loaded = load_playbook_file(copy, config, origin="rerun")
    request = RunRequest(
        loaded=loaded,
        config=config,
        file_parameters=manifest["parameters"],
        data_warehouse=manifest["connections"]["data_warehouse"] or None,
        crm=manifest["connections"]["crm"] or None,
        tags={"playbook/rerun_of": record.run_id},
        partition=manifest.get("partition"),
    )
    return _run_and_report(request, args)


def _cmd_report(args: argparse.Namespace) -> int:
    from playbook_assets.core.artifacts import atomic_write_bytes
    from playbook_assets.core.report_render.stored import stored_report

    config = load_config(args.config)
    text = stored_report(config.artifacts_dir, args.run_id, args.format)
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    atomic_write_bytes(Path(args.output), text.encode())
    sys.stderr.write(f"wrote {args.output}\n")
    return EXIT_OK


def _cmd_artifacts_list(args: argparse.Namespace) -> int:
    from playbook_assets.core.run_records import iter_runs, summary_row

    config = load_config(args.config)
    rows = [
        summary_row(record)
        for record in iter_runs(config.artifacts_dir)
        if args.playbook is None or record.playbook_id == args.playbook
    ]
    if args.json:
        _print_json(rows)
        return EXIT_OK
    for row in rows:
        sys.stdout.write(
            f"{row['run_id']}  {row['playbook_id']:<24} {row['status']:<8} "
            f"{row['artifacts']:>3} artifacts {row['bytes'] / 1024:>10,.1f} KiB  "
            f"{row['executed_at']}\n"
        )
    if not rows:
        sys.stdout.write(f"no stored runs in {config.artifacts_dir}\n")
    return EXIT_OK


def _cmd_artifacts_show(args: argparse.Namespace) -> int:
    from playbook_assets.core.run_records import load_run

    config = load_config(args.config)
    _print_json(load_run(config.artifacts_dir, args.run_id).manifest)
    return EXIT_OK


def _cmd_artifacts_verify(args: argparse.Namespace) -> int:
    from playbook_assets.core.run_records import verify_store

    config = load_config(args.config)
    if args.all == (args.run_id is not None):
        raise PlaybookValidationError(
            "give either a RUN_ID or --all", hint="e.g. playbook artifacts verify --all"
        )
    failed = 0
    for result in verify_store(config.artifacts_dir, None if args.all else args.run_id):
        if result.problems:
            failed += 1
            for problem in result.problems:
                sys.stdout.write(f"FAILED {problem}\n")
        else:
            sys.stdout.write(f"ok {result.run_id} ({result.checked_files} files)\n")
    return EXIT_STEP_FAILED if failed else EXIT_OK


def _cmd_artifacts_prune(args: argparse.Namespace) -> int:
    from playbook_assets.app.runner import dagster_instance
    from playbook_assets.dagster_adapter.retention import prune_runs

    config = load_config(args.config)
    result = prune_runs(
        config.artifacts_dir,
        config.artifacts.retention_days,
        dagster_instance(),
        dry_run=args.dry_run,
    )
    verb = "would remove" if args.dry_run else "removed"
    for path in result.removed_files:
        sys.stdout.write(f"{verb} {path}\n")
    for path in result.kept_latest:
        sys.stdout.write(f"kept {path} (latest materialization of its asset)\n")
    for path in result.removed_leftovers:
        sys.stdout.write(f"{verb} {path} (left by an interrupted run)\n")
    sys.stdout.write(
        f"{verb} {len(result.removed_runs)} runs older than "
        f"{config.artifacts.retention_days} days ({len(result.removed_files)} files)\n"
    )
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


def _print_json(data: Any) -> None:
    from playbook_assets.core.report import json_default

    sys.stdout.write(json.dumps(data, indent=2, default=json_default) + "\n")


def _print_summary(report: dict[str, Any], out: TextIO) -> None:
    out.write(f"{report['playbook_name']} ({report['playbook_id']}): {report['status']}\n")
    out.write(f"run {report['run_id']} (Dagster run {report['dagster_run_id']})\n")
    if report.get("partition"):
        out.write(f"partition {report['partition']}\n")
    if report.get("error"):
        out.write(f"error: {report['error']}\n")
    out.write("\n")
    for step in report["steps"]:
        rows = "" if step["row_count"] is None else f"{step['row_count']:>8,} rows"
        out.write(
            f"  {step['status']:<12} {step['step_id']:<24} {rows:>13}"
            f"  {step['execution_time_ms']:>8.0f} ms\n"
        )
        for detail in (step.get("error"), step.get("reason")):
            if detail:
                out.write(f"               {detail}\n")
    unfinished = {
        name: output
        for name, output in report["outputs"].items()
        if output["status"] not in {"success", "not_selected"}
    }
    if unfinished:
        out.write("\noutputs not produced:\n")
        for name, output in unfinished.items():
            out.write(
                f"  {output['status']:<12} {name}: {output.get('error') or output.get('reason')}\n"
            )
    if report["insights"]:
        out.write("\ninsights:\n")
        for insight in report["insights"]:
            out.write(f"  - {insight}\n")
    if report.get("artifact_path"):
        out.write(f"\nreport: {report['artifact_path']}\n")


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


if __name__ == "__main__":
    raise SystemExit(main())
