"""A throwaway PostgreSQL cluster on loopback for the tests, the demo warehouse loaded into
it, and the comparison of template runs on it with DuckDB's.

``initdb`` refuses to run as root, so when the tests run as root (CI) the cluster is created
and started as the ``postgres`` OS user, in a temporary folder that user owns. The server
listens on 127.0.0.1 on a free port, with its Unix socket in the same folder, and fsync off.
Authentication: ``trust`` for every user except the role named ``PASSWORD_USER``, which must
give its password (scram-sha-256), so that tests can check what an auth failure says.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg
import yaml
from psycopg import sql
from psycopg.conninfo import make_conninfo

from playbook_assets.connections.warehouses.postgres import PostgresWarehouse
from playbook_defs import TEMPLATES_DIR
from tests.conftest import DemoFiles, connection_config_text

SUPERUSER = "postgres"
PASSWORD_USER = "scram_user"
PASSWORD = "s3cret-Pa55word-do-not-print"
DEMO_DATABASE = "demo"
TEMPLATE_IDS = sorted(path.stem for path in TEMPLATES_DIR.glob("*.yaml"))
INSTALL_HINT = "run scripts/install-test-services (installs the Debian package postgresql)"

_START_ATTEMPTS = 3


class PostgresNotInstalledError(RuntimeError):
    """No PostgreSQL server binaries (``initdb``, ``pg_ctl``) were found."""


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway cluster."""

    host: str
    port: int
    root: Path
    data_dir: Path
    socket_dir: Path
    bin_dir: Path
    run_as: str | None

    def conninfo(self, user: str = SUPERUSER, dbname: str = "postgres", **extra: str) -> str:
        """A libpq connection string for this server."""
        return make_conninfo(host=self.host, port=self.port, user=user, dbname=dbname, **extra)

    @contextlib.contextmanager
    def connect(self, dbname: str = "postgres") -> Iterator[psycopg.Connection]:
        """An autocommit superuser connection, closed on exit."""
        with psycopg.connect(self.conninfo(dbname=dbname), autocommit=True) as connection:
            yield connection


def find_bin_dir() -> Path:
    """The folder of the newest installed PostgreSQL server binaries."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    for candidate in reversed(candidates):
        if (candidate / "pg_ctl").is_file() and (candidate / "initdb").is_file():
            return candidate
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    raise PostgresNotInstalledError(f"PostgreSQL server binaries not found; {INSTALL_HINT}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(command: list[str], run_as: str | None) -> None:
    if run_as is not None:
        command = ["runuser", "-u", run_as, "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )


def start_server() -> PostgresServer:
    """Create and start a cluster in a new temporary folder; stop it with ``stop_server``."""
    bin_dir = find_bin_dir()
    run_as = SUPERUSER if os.geteuid() == 0 else None
    # Not under pytest's tmp_path: that folder is private to root, and the server runs as
    # the postgres user.
    root = Path(tempfile.mkdtemp(prefix="playbook-pg-"))
    if run_as is not None:
        account = pwd.getpwnam(run_as)
        os.chown(root, account.pw_uid, account.pw_gid)
    data_dir = root / "data"
    _run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ],
        run_as,
    )
    hba = data_dir / "pg_hba.conf"
    hba.write_text(
        f"local all all trust\n"
        f"host all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256\n"
        f"host all all 127.0.0.1/32 trust\n",
        encoding="utf-8",
    )
    last_error: Exception | None = None
    for _ in range(_START_ATTEMPTS):
        port = free_port()
        server = PostgresServer(
            host="127.0.0.1",
            port=port,
            root=root,
            data_dir=data_dir,
            socket_dir=root,
            bin_dir=bin_dir,
            run_as=run_as,
        )
        options = f"-h 127.0.0.1 -p {port} -k {root} -F -c max_connections=40"
        try:
            _run(
                [
                    str(bin_dir / "pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    "30",
                    "-D",
                    str(data_dir),
                    "-l",
                    str(root / "server.log"),
                    "-o",
                    options,
                ],
                run_as,
            )
        except RuntimeError as e:  # most likely the port was taken in between: try another
            last_error = e
            continue
        with server.connect() as connection:
            connection.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(PASSWORD_USER), sql.Literal(PASSWORD)
                )
            )
        return server
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"could not start PostgreSQL: {last_error}")


def stop_server(server: PostgresServer) -> None:
    """Stop the cluster at once and delete its folder."""
    try:
        _run(
            [str(server.bin_dir / "pg_ctl"), "stop", "-m", "immediate", "-D", str(server.data_dir)],
            server.run_as,
        )
    finally:
        shutil.rmtree(server.root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Demo data


def load_demo_database(
    server: PostgresServer,
    demo: DemoFiles,
    warehouse: PostgresWarehouse,
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
