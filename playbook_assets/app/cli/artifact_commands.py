"""``playbook artifacts list``, ``show``, ``verify`` and ``prune``: the artifact store."""

from __future__ import annotations

import argparse
import sys

from playbook_assets.app.cli.common import (
    EXIT_OK,
    EXIT_STEP_FAILED,
    Commands,
    print_json,
    quiet_warnings,
)
from playbook_assets.core.config import load_config
from playbook_assets.core.errors import PlaybookValidationError


def add_commands(commands: Commands, common: argparse.ArgumentParser) -> None:
    """Add this group's commands to the parser."""
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


def _cmd_artifacts_list(args: argparse.Namespace) -> int:
    from playbook_assets.core.run_records import iter_runs, summary_row

    config = load_config(args.config)
    rows = [
        summary_row(record)
        for record in iter_runs(config.artifacts_dir)
        if args.playbook is None or record.playbook_id == args.playbook
    ]
    if args.json:
        print_json(rows)
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
    print_json(load_run(config.artifacts_dir, args.run_id).manifest)
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

    quiet_warnings()
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
