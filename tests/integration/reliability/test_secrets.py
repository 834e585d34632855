"""Secrets in every form (``${VAR}``, ``${VAR:-}``, inside a DSN, an API credential) are
resolved only inside the run, and never reach anything the product writes: Dagster's instance
(run records, event log, run and job snapshots), the artifacts, the report, logs, even when a
service echoes them back in its error bodies."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest
import yaml

from playbook_assets.app.cli import EXIT_STEP_FAILED
from playbook_assets.connections.registry import build_resource
from playbook_assets.core.config import load_config_file
from standins.echo_server import EchoServer
from standins.postgres_server import PASSWORD, PASSWORD_USER, PostgresServer
from tests.conftest import DemoFiles, Project
from tests.integration.reliability.run_support import run_json, step_of
from tests.integration.reliability.secret_scan import find_secrets, texts_under

pytest_plugins = ["tests.conftest_postgres"]

MASK = "***"
# A setting that is no secret and appears only in Dagster's (compressed) run snapshot: proof
# that the scan reads it.
SNAPSHOT_PROBE = "snapshot-probe-5d1c"

PLAYBOOK = """
playbook:
  id: secrets
  name: Secrets
  steps:
    - id: exact_form
      type: query
      connection: pg_exact
      config: {template: "SELECT 1 AS one"}
    - id: dsn_form
      type: query
      connection: pg_dsn
      config: {template: "SELECT 2 AS two"}
    - id: default_form
      type: search
      connection: hub
      config: {object: deals, properties: [dealname]}
    - id: api_credential
      type: request
      config:
        url: "ECHO/v1/items"
        records_path: items
        auth: {bearer_token_env: API_SECRET}
"""


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


def _config(project: Project, demo: DemoFiles, server: PostgresServer, echo: EchoServer) -> None:
    connections = {
        "duckdb": {"database": str(demo.warehouse)},
        "demo": {"database": str(demo.crm)},
        # ${VAR}: the whole setting (a role the server trusts: the value is not checked).
        "pg_exact": {
            "type": "postgres",
            "host": server.host,
            "port": server.port,
            "user": "postgres",
            "database": "postgres",
            "password": "${PG_SECRET_EXACT}",
            "application_name": SNAPSHOT_PROBE,
        },
        # Inside a longer setting: the server checks this password.
        "pg_dsn": {
            "type": "postgres",
            "dsn": f"postgresql://{PASSWORD_USER}:${{PG_SECRET_DSN}}@{server.host}:{server.port}"
            "/postgres",
        },
        # ${VAR:-}: with an empty default.
        "hub": {"type": "hubspot", "access_token": "${HUB_SECRET:-}", "base_url": echo.base_url},
    }
    body = {
        "defaults": {"data_warehouse": "duckdb", "crm": "demo"},
        "connections": connections,
        "artifacts": {"directory": "../artifacts"},
        "execution": {"retry_attempts": 0},
    }
    text = yaml.safe_dump({"playbook_executor": body}, sort_keys=False)
    project.config_path.write_text(text, encoding="utf-8")


def test_no_secret_reaches_anything_a_run_writes(
    project: Project,
    demo_files: DemoFiles,
    postgres_server: PostgresServer,
    echo: EchoServer,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = {
        "PG_SECRET_EXACT": f"exact-{secrets.token_hex(12)}",
        "PG_SECRET_DSN": PASSWORD,
        "HUB_SECRET": f"pat-na1-{secrets.token_hex(12)}",
        "API_SECRET": f"api-{secrets.token_hex(12)}",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    _config(project, demo_files, postgres_server, echo)
    project.add_playbook("secrets.yaml", PLAYBOOK.replace("ECHO", echo.base_url))

    # The code location's resources hold the templates, not the values.
    config = load_config_file(project.config_path)
    for name in ("pg_exact", "pg_dsn", "hub"):
        described = json.dumps(build_resource(config, name).model_dump(), default=str)
        assert not find_secrets(list(values.values()), [(name, described)])

    code, report, err = run_json(project, capfd, "secrets")
    assert code == EXIT_STEP_FAILED
    # The secrets were resolved inside the run: both PostgreSQL logins worked.
    assert step_of(report, "exact_form")["row_count"] == 1
    assert step_of(report, "dsn_form")["row_count"] == 1
    # The services echoed them, and the errors say so with the secret masked.
    hub_error = step_of(report, "default_form")["error"]
    assert "the HubSpot access token was rejected" in hub_error and MASK in hub_error
    api_error = step_of(report, "api_credential")["error"]
    assert api_error.startswith("config/playbooks/secrets.yaml:")
    assert "the API answered 401" in api_error and f"Bearer {MASK}" in api_error

    texts = [
        *texts_under(project.artifacts_dir),
        *texts_under(project.dagster_home),
        ("report", json.dumps(report)),
        ("stderr", err),
    ]
    assert any(SNAPSHOT_PROBE in text for where, text in texts if where.endswith(":snapshots"))
    assert find_secrets(list(values.values()), texts) == []


def test_redaction_masks_each_form_a_service_may_echo() -> None:
    from playbook_assets.core.redaction import redact, remember_secret

    secret = f"p@ss word/{secrets.token_hex(4)}"
    remember_secret(secret)
    remember_secret("abc")  # too short to mask without mangling ordinary text
    echoed = f"raw {secret}, url %s, json %s, abc" % (
        secret.replace("@", "%40").replace(" ", "%20").replace("/", "%2F"),
        json.dumps(secret)[1:-1],
    )
    assert redact(echoed) == f"raw {MASK}, url {MASK}, json {MASK}, abc"


def test_a_missing_secret_fails_the_steps_that_use_the_connection(
    project: Project,
    demo_files: DemoFiles,
    postgres_server: PostgresServer,
    echo: EchoServer,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PG_SECRET_DSN", raising=False)
    monkeypatch.setenv("PG_SECRET_EXACT", "x" * 8)
    _config(project, demo_files, postgres_server, echo)
    project.add_playbook(
        "dsn.yaml",
        "playbook:\n  id: dsn\n  name: Dsn\n  steps:\n    - id: q\n      type: query\n"
        '      connection: pg_dsn\n      config: {template: "SELECT 1 AS one"}\n',
    )
    code, report, _ = run_json(project, capfd, "dsn")
    assert code == EXIT_STEP_FAILED
    assert step_of(report, "q")["error"] == (
        "config/playbooks/dsn.yaml:5: step 'q': connection 'pg_dsn', setting 'dsn': "
        "environment variable PG_SECRET_DSN is not set; "
        "set PG_SECRET_DSN, or write ${PG_SECRET_DSN:-default} in the config"
    )
