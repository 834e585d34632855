"""The demo warehouse loaded into a throwaway PostgreSQL server, and the config files that
run the built-in templates on it (compared with DuckDB's results by the tests)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import duckdb
import yaml
from psycopg import sql

from playbook_assets.connections.warehouses.postgres_wire import PostgresWireWarehouse
from playbook_assets.core.catalog import playbook_files
from playbook_defs import TEMPLATES_DIR
from standins.postgres_server import PASSWORD_USER, PostgresServer
from tests.conftest import DemoFiles, connection_config_text

DEMO_DATABASE = "demo"
TEMPLATE_IDS = sorted(path.stem for path in playbook_files([TEMPLATES_DIR]))


# ---------------------------------------------------------------------------------------------
# Demo data


def load_demo_database(
    server: PostgresServer,
    demo: DemoFiles,
    warehouse: PostgresWireWarehouse,
    database: str,
    settings: dict[str, str] | None = None,
) -> None:
    """Create ``database`` (with server ``settings`` for its sessions) and load every demo
    warehouse table into it with ``warehouse``, readable by the password user too."""
    with server.connect() as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        for key, value in (settings or {}).items():
            connection.execute(
                sql.SQL("ALTER DATABASE {} SET {} TO {}").format(
                    sql.Identifier(database), sql.Identifier(key), sql.Literal(value)
                )
            )
    with duckdb.connect(str(demo.warehouse), read_only=True) as source:
        names = source.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
        ).fetchall()
        for (name,) in names:
            warehouse.load_table(name, source.sql(f"FROM {name}").to_arrow_table())
    grants = "GRANT USAGE ON SCHEMA {s} TO {u}; GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {u}"
    with server.connect(database) as connection:
        for schema in sorted({name.split(".")[0] for (name,) in names}):
            connection.execute(
                sql.SQL(grants).format(s=sql.Identifier(schema), u=sql.Identifier(PASSWORD_USER))
            )


# ---------------------------------------------------------------------------------------------
# Built-in templates on another warehouse, compared with DuckDB


def write_warehouse_config(
    root: Path, demo: DemoFiles, connection_name: str, connection: str
) -> Path:
    """A config file whose default data warehouse is ``connection`` (a YAML block)."""
    config_dir = root / connection_name / "config"
    (config_dir / "playbooks").mkdir(parents=True, exist_ok=True)
    settings = yaml.safe_load(textwrap.dedent(connection))
    path = config_dir / "playbook-executor.yaml"
    path.write_text(
        connection_config_text(demo, connection_name, settings, role="data_warehouse"),
        encoding="utf-8",
    )
    return path
