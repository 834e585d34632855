"""Running a playbook's tests: offline, in the engine a real run uses (``core.local_run``).

The steps a test gives do not run: the steps that read them get the given table, as a run of
part of a playbook reads a stored result. Only what the expected results depend on runs; a
source step among it that the test does not give is an error before anything runs, and the
run's connections refuse every use, so a test never reaches a warehouse, CRM, API or file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from playbook_assets.core.catalog import (
    TESTS_SUFFIXES,
    LoadedPlaybook,
    PlaybookCatalog,
    display_path,
)
from playbook_assets.core.config import ExecutorConfig
from playbook_assets.core.errors import (
    PlaybookError,
    PlaybookValidationError,
    SourceLocation,
    TerminalStepError,
    unknown_name_hint,
)
from playbook_assets.core.local_run import run_locally
from playbook_assets.core.parameters import resolve_parameters
from playbook_assets.core.plan import PlaybookPlan
from playbook_assets.core.playbook_tests.compare import Mismatch, compare
from playbook_assets.core.playbook_tests.spec import (
    GivenRows,
    PlaybookTest,
    PlaybookTestFile,
    load_test_file,
)
from playbook_assets.core.step_execution import ExecutionSettings
from playbook_assets.core.steps.registry import step_type

if TYPE_CHECKING:
    from playbook_assets.core.steps.base import Crm, Sources, Warehouse
    from playbook_assets.core.yaml_source import YamlDocument

_PYARROW_TYPES = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}


@dataclass(frozen=True)
class TestFile:
    """A loaded test file and the playbook it tests."""

    path: Path
    document: YamlDocument
    spec: PlaybookTestFile
    loaded: LoadedPlaybook

    def location(self, *path: str | int) -> SourceLocation:
        """The line of a key of the file."""
        return self.document.location(path)


@dataclass
class Failure:
    """An expected result that the run did not give."""

    target: str
    location: SourceLocation
    mismatch: Mismatch


@dataclass
class TestOutcome:
    """What one test gave: passed, or failed with each failure."""

    playbook_id: str
    name: str
    location: SourceLocation
    failures: list[Failure] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``pass`` or ``fail``."""
        return "fail" if self.failures else "pass"


def find_test_files(catalog: PlaybookCatalog, config: ExecutorConfig) -> list[Path]:
    """Every test file: ``<playbook>.tests.yaml`` next to each playbook, then the YAML files
    of ``tests/`` beside the config file."""
    files: list[Path] = []
    for loaded in sorted(catalog.playbooks.values(), key=lambda item: item.id):
        stem = loaded.path.name.rsplit(".", 1)[0]
        files.extend(
            candidate
            for suffix in TESTS_SUFFIXES
            if (candidate := loaded.path.with_name(stem + suffix)).is_file()
        )
    folder = config.base_dir / "tests"
    if folder.is_dir():
        files.extend(sorted(p for p in folder.iterdir() if p.suffix in {".yaml", ".yml"}))
    return list(dict.fromkeys(files))


def load_tests(path: Path, catalog: PlaybookCatalog, config: ExecutorConfig) -> TestFile:
    """Load a test file and check it against its playbook: the steps given and expected
    exist, every source step an expected result depends on is given, the given rows load."""
    spec, document = load_test_file(path, display_path(path), config.limits.yaml_limits())
    playbook_id = spec.playbook or _stem(path)
    if playbook_id not in catalog.playbooks:
        raise PlaybookValidationError(
            f"the tests are of unknown playbook '{playbook_id}'",
            location=document.location(("playbook",) if spec.playbook else ()),
            hint=unknown_name_hint(playbook_id, catalog.playbooks, "playbook"),
        )
    tests = TestFile(path, document, spec, catalog.playbooks[playbook_id])
    for index, test in enumerate(spec.tests):
        _check_test(tests, index, test)
    return tests


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (*TESTS_SUFFIXES, ".yaml", ".yml"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _check_test(tests: TestFile, index: int, test: PlaybookTest) -> None:
    loaded = tests.loaded
    spec = loaded.spec
    outputs = {output.name: output for output in spec.outputs}
    for step_id in test.given:
        if step_id not in spec.step_ids:
            raise PlaybookValidationError(
                f"given names unknown step '{step_id}' of playbook '{loaded.id}'",
                location=tests.location("tests", index, "given", step_id),
                hint=unknown_name_hint(step_id, spec.step_ids, "step"),
            )
    for target in test.expect:
        where = tests.location("tests", index, "expect", target)
        if target not in spec.step_ids and target not in outputs:
            raise PlaybookValidationError(
                f"expect names unknown step or output '{target}' of playbook '{loaded.id}'",
                location=where,
                hint=unknown_name_hint(target, [*spec.step_ids, *outputs], "step or output"),
            )
        if target in test.given:
            raise PlaybookValidationError(
                f"'{target}' is given, so it does not run: expect a step that reads it",
                location=where,
            )
    plan = PlaybookPlan.build(loaded, "test", "test")
    for step_id in sorted(_needed_steps(plan, test)):
        step = spec.step(step_id)
        if step_id not in test.given and not step_type(step).transform:
            raise PlaybookValidationError(
                f"step '{step_id}' reads a source ({step.source}, {step.type}) and a test runs "
                f"offline: give its rows under given: {step_id}: rows: [...]",
                location=tests.location("tests", index),
                field="given",
            )
    for step_id, given in test.given.items():
        given_table(tests, index, step_id, given)
    try:
        resolve_parameters(spec, test.parameters)
    except PlaybookError as e:
        raise e.at(location=tests.location("tests", index, "parameters"))


def _needed_steps(plan: PlaybookPlan, test: PlaybookTest) -> set[str]:
    """The steps the expected results depend on (given ones are not run, nor what only
    they read)."""
    loaded = plan.loaded
    outputs = {output.name: output for output in loaded.spec.outputs}
    pending = [
        loaded.output_source(outputs[target]) if target in outputs else target
        for target in test.expect
    ]
    needed: set[str] = set()
    while pending:
        step_id = pending.pop()
        if step_id in needed:
            continue
        needed.add(step_id)
        if step_id not in test.given:
            pending.extend(plan.upstream[step_id])
    return needed


def given_table(tests: TestFile, index: int, step_id: str, given: GivenRows) -> pa.Table:
    """The table a given step returns: its rows, or its CSV or Parquet file."""
    where = tests.location("tests", index, "given", step_id)
    try:
        table = _read_given(tests.path.parent, given)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise PlaybookValidationError(
            f"the rows given for step '{step_id}' cannot be read: {e}",
            location=where,
            hint="give each column values of one type, or declare it under columns:",
        ) from e
    for name, type_name in (given.columns or {}).items():
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, _PYARROW_TYPES[type_name]))
    return table


def _read_given(folder: Path, given: GivenRows) -> pa.Table:
    columns = given.columns or {}
    if given.file is not None:
        path = folder / given.file
        if not path.is_file():
            raise ValueError(f"no file {path}")
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        elif path.suffix == ".csv":
            import pyarrow.csv as pacsv

            types = {name: _PYARROW_TYPES[kind] for name, kind in columns.items()}
            return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
        else:
            raise ValueError(f"{path.name} is neither .csv nor .parquet")
    else:
        rows = given.rows or []
        names = list(dict.fromkeys([*(name for row in rows for name in row), *columns]))
        fields = [
            pa.field(name, _PYARROW_TYPES[columns[name]]) if name in columns else None
            for name in names
        ]
        if all(item is not None for item in fields):
            return pa.Table.from_pylist(rows, schema=pa.schema([f for f in fields if f]))
        table = pa.Table.from_pylist(rows)
    for name, kind in columns.items():
        if name in table.column_names:
            position = table.column_names.index(name)
            table = table.set_column(position, name, table[name].cast(_PYARROW_TYPES[kind]))
    return table


def run_test(tests: TestFile, index: int, settings: ExecutionSettings) -> TestOutcome:
    """Run one test of a checked file."""
    test = tests.spec.tests[index]
    loaded = tests.loaded
    outcome = TestOutcome(loaded.id, test.name, tests.location("tests", index))
    plan = PlaybookPlan.build(loaded, "test", "test")
    needed = _needed_steps(plan, test)
    outputs = {output.name for output in loaded.spec.outputs}
    given = {
        step_id: given_table(tests, index, step_id, rows) for step_id, rows in test.given.items()
    }
    run = run_locally(
        loaded,
        OfflineServices(),
        parameters=resolve_parameters(loaded.spec, test.parameters),
        data_warehouse="test",
        crm="test",
        settings=settings,
        log=_QuietLog(),
        only=needed | {target for target in test.expect if target in outputs},
        given=given,
    )
    problems = _run_problems(run.report)
    for target, expectation in test.expect.items():
        where = tests.location("tests", index, "expect", target)
        if target in problems:
            outcome.failures.append(Failure(target, where, Mismatch(problems[target])))
            continue
        table = run.table(target)
        outcome.failures.extend(
            Failure(target, where, mismatch) for mismatch in compare(expectation, table)
        )
    return outcome


def _run_problems(report: Mapping[str, Any]) -> dict[str, str]:
    """Each step and output of the run that gave no result, with why."""
    problems: dict[str, str] = {}
    for step in report["steps"]:
        if step["status"] == "error":
            problems[step["step_id"]] = f"the step failed: {step.get('error')}"
        elif step["status"] == "skipped":
            problems[step["step_id"]] = f"the step was skipped: {step.get('reason')}"
    for name, output in report["outputs"].items():
        if output["status"] == "error":
            problems[name] = f"the output failed: {output.get('error')}"
        elif output["status"] == "skipped":
            problems[name] = f"the output was skipped: {output.get('reason')}"
    return problems


def run_tests(files: Iterable[TestFile], settings: ExecutionSettings) -> list[TestOutcome]:
    """Run every test of the files, in order."""
    return [
        run_test(tests, index, settings)
        for tests in files
        for index in range(len(tests.spec.tests))
    ]


class _QuietLog:
    """A test run's log: what fails is in the test's outcome, not in the log."""

    def info(self, message: str, /) -> None:
        del message

    def warning(self, message: str, /) -> None:
        del message

    def error(self, message: str, /) -> None:
        del message


class OfflineServices:
    """The connections of a test run: none. Every use is an error (validation makes each
    source step a given one, so this is a guard, not a path a test takes)."""

    retry_attempts = 0
    allowed_directories: Sequence[str] = ()

    @property
    def sources(self) -> Sources:
        raise _offline("an API or file source")

    def warehouse(self, name: str) -> Warehouse:
        raise _offline(f"warehouse '{name}'")

    def crm(self, name: str) -> Crm:
        raise _offline(f"CRM '{name}'")


def _offline(what: str) -> TerminalStepError:
    return TerminalStepError(
        f"a playbook test runs offline and cannot reach {what}",
        hint="give the step's rows under given:",
    )
