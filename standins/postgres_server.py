"""A throwaway PostgreSQL cluster on loopback, for the tests.

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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

SUPERUSER = "postgres"
PASSWORD_USER = "scram_user"
PASSWORD = "s3cret-Pa55word-do-not-print"
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
