"""Files a playbook may read: only under the playbooks folder and the folders the
configuration declares (``files.allowed_directories``), whether the path comes from a run-time
value, SQL written in the playbook, or a file step; links and ``..`` cannot lead out."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import duckdb
import pytest

from playbook_assets.app.cli import EXIT_OK, EXIT_STEP_FAILED
from tests.conftest import DemoFiles, Project, write_config
from tests.integration.reliability.run_support import run_json, step_of

MARKER = "outside-the-allowed-folders-7f3a"

READ_PARAMETER = """
playbook:
  id: read_param
  name: Read a file named at run time
  parameters:
    - {name: source_file, type: string, required: true}
  steps:
    - id: rows
      type: query
      config:
        template: "SELECT * FROM read_csv({{source_file}})"
"""


FILE_STEP = """
playbook:
  id: read_files
  name: Read files
  steps:
    - id: rows
      type: read
      config: {CONFIG}
"""


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("name,value\n" + "".join(f"{a},{b}\n" for a, b in rows), encoding="utf-8")


def _everything_written(project: Project, out: str) -> str:
    """The report and the text of every file under the artifacts folder."""
    files = [path for path in project.artifacts_dir.rglob("*") if path.is_file()]
    return "\n".join([out, *(path.read_bytes().decode("utf-8", "replace") for path in files)])


@pytest.fixture
def outside(project: Project) -> Path:
    """A CSV file outside every allowed folder, holding ``MARKER``."""
    path = project.root / "outside" / "secret.csv"
    _write_csv(path, [("secret", MARKER)])
    return path


@pytest.mark.parametrize("how", ["absolute", "system_file", "dot_dot", "link"])
def test_a_run_time_value_cannot_name_a_file_outside_the_allowed_folders(
    project: Project, capsys: pytest.CaptureFixture[str], outside: Path, how: str
) -> None:
    project.add_playbook("read_param.yaml", READ_PARAMETER)
    incoming = project.playbooks_dir / "incoming"
    incoming.mkdir()
    link = incoming / "innocent.csv"
    link.symlink_to(outside)
    value = {
        "absolute": str(outside),
        "system_file": "/etc/passwd",
        "dot_dot": str(incoming / ".." / ".." / ".." / "outside" / "secret.csv"),
        "link": str(link),
    }[how]
    code, report, _ = run_json(project, capsys, "read_param", f"source_file={value}")
    assert code == EXIT_STEP_FAILED
    step = step_of(report, "rows")
    assert step["status"] == "error" and step["row_count"] is None
    assert "Permission Error: Cannot access file" in step["error"]
    assert step["error"].endswith("allow its folder in files.allowed_directories in the config")
    written = _everything_written(project, json.dumps(report))
    assert MARKER not in written
    assert "root:x:0:0" not in written  # the first line of /etc/passwd


def test_files_under_the_playbooks_folder_and_declared_folders_are_read(
    project: Project, demo_files: DemoFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(project.root, demo_files, "  files:\n    allowed_directories: [../landing]\n")
    project.add_playbook("read_param.yaml", READ_PARAMETER)
    beside = project.playbooks_dir / "incoming" / "a.csv"
    _write_csv(beside, [("a", "1"), ("b", "2"), ("c", "3")])
    declared = project.root / "landing" / "b.csv"
    _write_csv(declared, [("d", "4"), ("e", "5")])
    # A folder whose name merely starts like a declared one is not declared.
    sibling = project.root / "landing2" / "c.csv"
    _write_csv(sibling, [("secret", MARKER)])

    for path, rows in ((beside, 3), (declared, 2)):
        code, report, _ = run_json(project, capsys, "read_param", f"source_file={path}")
        assert code == EXIT_OK, report
        assert step_of(report, "rows")["row_count"] == rows

    code, report, _ = run_json(project, capsys, "read_param", f"source_file={sibling}")
    assert code == EXIT_STEP_FAILED
    assert "Permission Error" in step_of(report, "rows")["error"]

    # A file step's glob inside the playbooks folder reads every match.
    _write_csv(project.playbooks_dir / "incoming" / "d.csv", [("f", "6")])
    project.add_playbook(
        "read_files.yaml", FILE_STEP.replace("{CONFIG}", '{path: "incoming/*.csv"}')
    )
    code, report, _ = run_json(project, capsys, "read_files")
    assert code == EXIT_OK, report
    assert step_of(report, "rows")["row_count"] == 4


def test_sql_written_in_a_playbook_cannot_reach_files_nor_lift_the_limit(
    project: Project, demo_files: DemoFiles, capsys: pytest.CaptureFixture[str], outside: Path
) -> None:
    # A warehouse that takes any statement (allow_writes), on a file of this test's own.
    scratch = project.root / "scratch.duckdb"
    with duckdb.connect(str(scratch)) as connection:
        connection.execute("CREATE TABLE t AS SELECT 1 AS one")
    other = outside.parent / "other.duckdb"
    with duckdb.connect(str(other)) as connection:
        connection.execute("CREATE TABLE hidden AS SELECT 'x' AS secret")
    exported = outside.parent / "exported.csv"
    extra = f"    scratch: {{type: duckdb, database: {scratch}, allow_writes: true}}\n"
    config = write_config(project.root, demo_files).read_text()
    config = config.replace("  artifacts:\n", extra + "  artifacts:\n", 1)
    project.config_path.write_text(config, encoding="utf-8")
    statements = {
        "read_text": "SELECT * FROM read_text('/etc/passwd')",
        "read_csv": f"SELECT * FROM read_csv('{outside}')",
        "glob": f"SELECT * FROM glob('{outside.parent}/*')",
        "attach": f"ATTACH '{other}' AS other (READ_ONLY)",
        "copy_to": f"COPY (SELECT 42 AS answer) TO '{exported}'",
        "unlock": "SET enable_external_access = true",
        "widen": "SET allowed_directories = ['/']",
        "unlock_then_read": (
            f"SET enable_external_access = true; SELECT * FROM read_csv('{outside}')"
        ),
    }
    steps = "".join(
        f"    - id: {name}\n      type: query\n      connection: scratch\n"
        f"      config: {{template: {json.dumps(sql)}}}\n"
        for name, sql in statements.items()
    )
    project.add_playbook(
        "escape.yaml", f"playbook:\n  id: escape\n  name: Escape\n  steps:\n{steps}"
    )
    code, report, _ = run_json(project, capsys, "escape")
    assert code == EXIT_STEP_FAILED
    errors = {step["step_id"]: step.get("error", "") for step in report["steps"]}
    assert {name: step_of(report, name)["status"] for name in statements} == dict.fromkeys(
        statements, "error"
    )
    for name in ("read_text", "read_csv", "glob", "attach", "copy_to"):
        assert "Permission Error: Cannot access file" in errors[name], errors[name]
    for name in ("unlock", "widen", "unlock_then_read"):
        assert "the configuration has been locked" in errors[name], errors[name]
    assert not exported.exists()
    assert MARKER not in _everything_written(project, json.dumps(report))


@pytest.mark.parametrize("how", ["system_file", "dot_dot", "link_in_glob"])
def test_a_file_step_reads_only_inside_the_allowed_folders(
    project: Project, capsys: pytest.CaptureFixture[str], outside: Path, how: str
) -> None:
    incoming = project.playbooks_dir / "incoming"
    _write_csv(incoming / "good.csv", [("a", "1")])
    (incoming / "zz_link.csv").symlink_to(outside)
    config, shown = {
        "system_file": ('{path: /etc/passwd, format: csv, delimiter: ":"}', "/etc/passwd"),
        "dot_dot": ('{path: "../../outside/secret.csv"}', "../../outside/secret.csv"),
        "link_in_glob": (
            '{path: "incoming/*.csv"}',
            f"zz_link.csv (a link to {outside.resolve()})",
        ),
    }[how]
    project.add_playbook("read_files.yaml", FILE_STEP.replace("{CONFIG}", config))
    code, report, _ = run_json(project, capsys, "read_files")
    assert code == EXIT_STEP_FAILED
    error = step_of(report, "rows")["error"]
    assert f"{shown} is outside the folders playbooks may read ({project.playbooks_dir})" in error
    assert error.endswith("allow its folder in files.allowed_directories in the config")
    assert MARKER not in _everything_written(project, json.dumps(report))


def test_a_confined_session_opens_no_file_and_cannot_be_unlocked(tmp_path: Path) -> None:
    """The sessions of transforms, checks and the demo CRM: registered tables only."""
    from playbook_assets.core.file_access import confined_connection

    readable = tmp_path / "data.csv"
    readable.write_text(textwrap.dedent("a\n1\n"), encoding="utf-8")
    with confined_connection() as connection:
        with pytest.raises(duckdb.PermissionException):
            connection.sql(f"SELECT * FROM read_csv('{readable}')").fetchall()
        with pytest.raises(duckdb.InvalidInputException, match="locked"):
            connection.execute("SET enable_external_access = true")
    with confined_connection(allowed_directories=[tmp_path]) as connection:
        assert connection.sql(f"SELECT * FROM read_csv('{readable}')").fetchall() == [(1,)]
