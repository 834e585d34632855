"""``playbook run``, ``rerun`` and ``report``: running a playbook through Dagster, running a
stored run again, and a stored run's report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from playbook_assets.app.cli.common import (
    EXIT_OK,
    EXIT_STEP_FAILED,
    Commands,
    load,
    print_json,
    quiet_warnings,
)
from playbook_assets.core.catalog import load_playbook_file
from playbook_assets.core.config import load_config
from playbook_assets.core.errors import PlaybookError, PlaybookValidationError
from playbook_assets.core.spec import PlaybookSpec

if TYPE_CHECKING:
    from playbook_assets.app.runner import RunRequest


def add_commands(commands: Commands, common: argparse.ArgumentParser) -> None:
    """Add this group's commands to the parser."""
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

    quiet_warnings()

    config, catalog = load(args)
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
    return run_and_report(request, args)


def run_and_report(request: RunRequest, args: argparse.Namespace) -> int:
    """Run, print the report, and say on stderr what could not be stored, if anything.

    The report is printed even when its record cannot be written (disk full): the run
    happened and its figures are known; the exit code is then 1.
    """
    from playbook_assets.app.runner import run_playbook

    quiet_warnings()
    from playbook_assets.app.runner import check_artifacts_folder
    from playbook_assets.core.run_records import RunRecordNotStoredError

    check_artifacts_folder(request)
    not_stored: PlaybookError | None = None
    try:
        report = run_playbook(request)
    except RunRecordNotStoredError as e:
        report = {**e.report, "artifact_path": None}
        not_stored = e
    if args.json or not sys.stdout.isatty():
        print_json(report)
    else:
        print_summary(report, sys.stdout)
    sys.stdout.flush()
    if not_stored is not None:
        sys.stderr.write(f"error: {not_stored}\n")
        return EXIT_STEP_FAILED
    return EXIT_OK if report["status"] == "success" else EXIT_STEP_FAILED


def _cmd_rerun(args: argparse.Namespace) -> int:
    from playbook_assets.app.runner import RunRequest

    quiet_warnings()
    from playbook_assets.core.run_records import checked_playbook_copy, load_run

    config, catalog = load(args)
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
    return run_and_report(request, args)


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


def print_summary(report: dict[str, Any], out: TextIO) -> None:
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
