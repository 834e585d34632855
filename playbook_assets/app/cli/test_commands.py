"""``playbook test [ID ...]``: run the playbooks' tests (``<id>.tests.yaml``) offline.

Exit codes: 0 every test passed, 1 a test failed (each failure is shown with its row diff:
``-`` an expected row the result lacks, ``+`` a row of the result not expected), 2 a test
file or the command is wrong (nothing ran).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from playbook_assets.app.cli.common import (
    EXIT_OK,
    EXIT_STEP_FAILED,
    Commands,
    load,
    print_json,
)
from playbook_assets.core.errors import PlaybookValidationError
from playbook_assets.core.playbook_tests.compare import show_row
from playbook_assets.core.playbook_tests.runner import (
    TestOutcome,
    find_test_files,
    load_tests,
    run_tests,
)
from playbook_assets.core.step_execution import ExecutionSettings

# Rows of a diff shown on a terminal per side; --json has them all.
_SHOWN_ROWS = 20


def add_commands(commands: Commands, common: argparse.ArgumentParser) -> None:
    """Add this group's commands to the parser."""
    test = commands.add_parser(
        "test", parents=[common], help="run the playbooks' tests (given rows, expected results)"
    )
    test.add_argument("playbook_ids", nargs="*", metavar="ID", help="only these playbooks")
    test.add_argument("--json", action="store_true", help="print the results as JSON")
    test.set_defaults(handler=_cmd_test)


def _cmd_test(args: argparse.Namespace) -> int:
    config, catalog = load(args)
    for playbook_id in args.playbook_ids:
        catalog.get(playbook_id)  # an unknown id is an error with a did-you-mean
    files = [load_tests(path, catalog, config) for path in find_test_files(catalog, config)]
    if args.playbook_ids:
        files = [tests for tests in files if tests.loaded.id in args.playbook_ids]
    untested = sorted(
        set(args.playbook_ids or catalog.playbooks) - {tests.loaded.id for tests in files}
    )
    if not files:
        raise PlaybookValidationError(
            "no playbook tests found",
            hint="write <playbook>.tests.yaml next to the playbook, or a file in tests/ "
            "beside the config file",
        )
    execution = config.execution
    settings = ExecutionSettings(
        retry_attempts=0,
        timeout_seconds=execution.timeout_seconds,
        max_parallel_steps=execution.max_parallel_steps,
    )
    outcomes = run_tests(files, settings)
    counts = {status: sum(o.status == status for o in outcomes) for status in ("pass", "fail")}
    if args.json:
        print_json(
            {
                "tests": [_outcome_json(outcome) for outcome in outcomes],
                "summary": {"passed": counts["pass"], "failed": counts["fail"]},
                "untested": untested,
            }
        )
    else:
        for outcome in outcomes:
            _write_outcome(outcome)
        if untested:
            sys.stdout.write(f"no tests: {', '.join(untested)}\n")
        sys.stdout.write(f"{counts['pass']} passed, {counts['fail']} failed\n")
    return EXIT_STEP_FAILED if counts["fail"] else EXIT_OK


def _outcome_json(outcome: TestOutcome) -> dict[str, Any]:
    return {
        "playbook_id": outcome.playbook_id,
        "name": outcome.name,
        "location": str(outcome.location),
        "status": outcome.status,
        "failures": [
            {
                "target": failure.target,
                "location": str(failure.location),
                "message": failure.mismatch.message,
                "missing": failure.mismatch.missing,
                "unexpected": failure.mismatch.unexpected,
            }
            for failure in outcome.failures
        ],
    }


def _write_outcome(outcome: TestOutcome) -> None:
    out = sys.stdout
    out.write(f"{outcome.status.upper():<4}  {outcome.playbook_id}: {outcome.name}\n")
    for failure in outcome.failures:
        out.write(f"      {failure.location}: {failure.target}: {failure.mismatch.message}\n")
        # "-" expected, not in the result; "+" in the result, not expected (as in a diff).
        for sign, rows in (("-", failure.mismatch.missing), ("+", failure.mismatch.unexpected)):
            for row in rows[:_SHOWN_ROWS]:
                out.write(f"        {sign} {show_row(row)}\n")
            if len(rows) > _SHOWN_ROWS:
                out.write(f"        {sign} ... {len(rows) - _SHOWN_ROWS} more (see --json)\n")
