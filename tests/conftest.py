"""Shared fixtures: demo data generated once per session, and a throwaway project folder; and
each test's kind (``unit``, ``integration``, ``e2e``) marked from the folder it lives in."""

from __future__ import annotations

import datetime
import json
import textwrap
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pytest
import yaml

from playbook_assets.demo.generator import write_demo_crm, write_demo_warehouse
from tests.template_results import DuckDBReports

# Small enough to be quick, large enough that every template has non-trivial results.
TEST_SCALE = 0.2

for category in (dg.BetaWarning, dg.PreviewWarning):
    warnings.filterwarnings("ignore", category=category)

TESTS_DIR = Path(__file__).resolve().parent
# A test's kind is the first folder under tests/ (see the markers in pyproject.toml).
KINDS = ("unit", "integration", "e2e")
# Fixtures that start a service: a unit test may not use them, even indirectly.
SERVICE_FIXTURES = frozenset({"postgres_server", "postgres_demo"})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its kind, before ``-m`` selects on it; refuse a test outside the
    kind folders and a unit test that starts a service."""
    problems: list[str] = []
    for item in items:
        path = item.path.resolve()
        kind = path.relative_to(TESTS_DIR).parts[0] if path.is_relative_to(TESTS_DIR) else ""
        if kind not in KINDS:
            problems.append(
                f"{item.nodeid}: put it under tests/unit, tests/integration or tests/e2e"
            )
            continue
        item.add_marker(kind)
        services = SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if kind == "unit" and services:
            problems.append(
                f"{item.nodeid}: a unit test starts no service, yet it uses "
                f"{', '.join(sorted(services))}; move it to tests/integration"
            )
    if problems:
        raise pytest.UsageError("\n".join(problems))


@dataclass(frozen=True)
class DemoFiles:
    """The demo warehouse and CRM files of the test session."""

    warehouse: Path
    crm: Path


@dataclass(frozen=True)
class Project:
    """A throwaway deployment: config file, playbooks folder, artifacts, Dagster home."""

    root: Path
    config_path: Path
    playbooks_dir: Path
    artifacts_dir: Path
    dagster_home: Path

    def add_playbook(self, name: str, text: str) -> Path:
        """Write a playbook file into the deployment's playbooks folder."""
        path = self.playbooks_dir / name
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> DemoFiles:
    """Demo data at the test scale, generated once for the session."""
    folder = tmp_path_factory.mktemp("demo")
    files = DemoFiles(warehouse=folder / "warehouse.duckdb", crm=folder / "demo_crm.duckdb")
    write_demo_warehouse(files.warehouse, scale=TEST_SCALE)
    write_demo_crm(files.crm, scale=TEST_SCALE)
    return files


def write_config(root: Path, demo: DemoFiles, extra: str = "") -> Path:
    """A config file in ``root/config`` using the session's demo files."""
    config_dir = root / "config"
    (config_dir / "playbooks").mkdir(parents=True, exist_ok=True)
    path = config_dir / "playbook-executor.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            playbook_executor:
              defaults:
                data_warehouse: duckdb
                crm: demo
              connections:
                duckdb:
                  database: {demo.warehouse}
                demo:
                  database: {demo.crm}
              artifacts:
                directory: ../artifacts
              execution:
                retry_attempts: 1
            """
        )
        + extra,
        encoding="utf-8",
    )
    return path


def connection_config_text(
    demo: DemoFiles, name: str, settings: Mapping[str, Any], *, role: str
) -> str:
    """Config text with one more connection, ``name``, as the default data warehouse or CRM
    (``role``); the other default stays on the session's demo files."""
    demo_connection = (
        {"duckdb": {"type": "duckdb", "database": str(demo.warehouse)}}
        if role == "crm"
        else {"demo": {"type": "demo", "database": str(demo.crm)}}
    )
    defaults = (
        {"data_warehouse": "duckdb", "crm": name}
        if role == "crm"
        else {"data_warehouse": name, "crm": "demo"}
    )
    body = {
        "defaults": defaults,
        "connections": {name: dict(settings), **demo_connection},
        "artifacts": {"directory": "../artifacts"},
        "execution": {"retry_attempts": 1},
    }
    return yaml.safe_dump({"playbook_executor": body}, sort_keys=False)


@pytest.fixture
def project(
    tmp_path: Path, demo_files: DemoFiles, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    """A deployment in a temporary folder, used as the working directory."""
    config_path = write_config(tmp_path, demo_files)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("PLAYBOOK_CONFIG", raising=False)
    monkeypatch.delenv("PLAYBOOK_STRICT", raising=False)
    yield Project(
        root=tmp_path,
        config_path=config_path,
        playbooks_dir=config_path.parent / "playbooks",
        artifacts_dir=tmp_path / "artifacts",
        dagster_home=home,
    )


@pytest.fixture(scope="session")
def duckdb_reports(
    tmp_path_factory: pytest.TempPathFactory, demo_files: DemoFiles
) -> DuckDBReports:
    """The built-in templates' reports on DuckDB, the baseline other warehouses must match."""
    root = tmp_path_factory.mktemp("duckdb_baseline")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    return DuckDBReports(write_config(root, demo_files), home)


MQL_CONTACTS_PLAYBOOK = """
playbook:
  id: mql_contacts
  name: MQL contacts
  data_sources:
    - type: crm
  steps:
    - id: mqls
      name: MQL contacts
      source: crm
      type: search
      config:
        object: contacts
        filters:
          - {{property: lifecyclestage, operator: EQ, value: marketingqualifiedlead}}
          - {{property: createdate, operator: GTE, value: "{since:%Y-%m-%d}"}}
        properties: [email, createdate]
"""


def check_mql_contacts_playbook(
    project: Project,
    config_path: Path,
    capsys: pytest.CaptureFixture[str],
    since: datetime.datetime,
    expected_rows: Callable[[dict[str, Any]], int],
) -> None:
    """Run a CRM search playbook (MQL contacts created since ``since``) through the command
    line on ``config_path`` and check it finds the rows ``expected_rows(search request)``
    gives (the demo CRM's answer, as the CRM under test shapes it)."""
    from playbook_assets.app.cli import main

    project.add_playbook("mql_contacts.yaml", MQL_CONTACTS_PLAYBOOK.format(since=since))
    code = main(["run", "mql_contacts", "--config", str(config_path), "--json"])
    captured = capsys.readouterr()
    assert captured.out, captured.err
    report = json.loads(captured.out)
    assert code == 0, report
    request = {
        "filters": [
            {"property": "lifecyclestage", "operator": "EQ", "value": "marketingqualifiedlead"},
            {"property": "createdate", "operator": "GTE", "value": since},
        ]
    }
    expected = expected_rows(request)
    (step,) = report["steps"]
    assert expected > 0
    assert step["row_count"] == expected


def demo_contacts_in_whole_seconds(demo_files: DemoFiles, request: dict[str, Any]) -> pa.Table:
    """The demo CRM's contacts for a search, date-times cut to whole seconds (as Marketo and
    Klaviyo send them)."""
    from playbook_assets.connections.crm.demo import DemoCrm
    from playbook_assets.core.spec import SearchConfig

    config = SearchConfig.model_validate({**request, "object": "contacts"})
    table = DemoCrm(database=str(demo_files.crm), scale=TEST_SCALE).search(config)
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            seconds = table.column(index).cast(pa.timestamp("s"), safe=False)
            table = table.set_column(index, field.name, seconds.cast(field.type))
    return table
