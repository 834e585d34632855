"""Which files a playbook may read, and DuckDB sessions held to them.

Playbook SQL, file steps and values that arrive at run time (a file trigger's path, a
parameter in ``read_csv({{source_file}})``) may only reach files under the folders the
configuration allows (``ExecutorConfig.allowed_directories``). The enforcement is DuckDB's
own: every session that runs SQL from a playbook is opened with ``enable_external_access``
off, ``allowed_directories`` set to those folders and ``lock_configuration`` on, so no
statement can read, attach, copy or list a file elsewhere, nor turn the settings back.
DuckDB resolves symbolic links before it checks a path; its database file, write-ahead log
and temporary folder stay usable.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from playbook_assets.core.errors import TerminalStepError

ALLOWED_HINT = "allow its folder in files.allowed_directories in the config"


def confined_connection(
    database: str = ":memory:",
    *,
    read_only: bool = False,
    allowed_directories: Sequence[str | Path] = (),
    config: dict[str, Any] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that can open no file outside ``allowed_directories`` (besides
    its own database), with its configuration locked.

    DuckDB shares one database instance, and its settings, among the connections of a
    process to the same file: a connection to an instance that is already locked checks
    that it is confined to the same folders instead of setting them again.
    """
    folders = directory_prefixes(allowed_directories)
    with _configuring:
        connection = duckdb.connect(database, read_only=read_only, config=config or {})
        try:
            if _setting(connection, "lock_configuration"):
                _check_confined(connection, database, folders)
            else:
                if folders:
                    # Only while external access is on; each is a prefix, hence the '/'.
                    connection.execute("SET allowed_directories = $folders", {"folders": folders})
                connection.execute("SET enable_external_access = false")
                connection.execute("SET lock_configuration = true")
        except BaseException:
            connection.close()
            raise
    return connection


_configuring = threading.Lock()

# The settings of the scratch database (DuckDB's default, said here: filters rely on it).
_SCRATCH_CONFIG = {"preserve_insertion_order": True}


@functools.cache
def _scratch_database() -> duckdb.DuckDBPyConnection:
    database = duckdb.connect(":memory:", config=dict(_SCRATCH_CONFIG))
    database.execute("SET enable_external_access = false")
    database.execute("SET lock_configuration = true")
    return database


def scratch_connection() -> duckdb.DuckDBPyConnection:
    """A connection to this process's scratch database: in memory, no file access at all,
    configuration locked; for SQL over registered Arrow tables (transforms, checks,
    statistics).

    Opening a DuckDB database costs about 16 ms, a connection to an open one about 1 ms, and
    a run computes on many small tables. Each connection has its own registered tables and
    temporary objects (they go when it is closed), so concurrent steps never see each other's;
    nothing in this database is ever created outside a connection's temporary schema.
    """
    with _configuring:
        return _scratch_database().cursor()


def _setting(connection: duckdb.DuckDBPyConnection, name: str) -> Any:
    rows = connection.execute("SELECT current_setting($name)", {"name": name}).fetchall()
    return rows[0][0] if rows else None


def _check_confined(
    connection: duckdb.DuckDBPyConnection, database: str, folders: list[str]
) -> None:
    allowed = set(_setting(connection, "allowed_directories") or [])
    if _setting(connection, "enable_external_access") or not set(folders) <= allowed:
        raise TerminalStepError(
            f"the DuckDB database {database} is already open in this process with other "
            "file access settings",
            hint="give each connection of the config its own database file",
        )


def directory_prefixes(folders: Sequence[str | Path]) -> list[str]:
    """Each folder as given and as its real path, ending with a separator (DuckDB matches
    allowed directories as path prefixes: ``/data`` would also allow ``/data2``)."""
    forms = [
        form for folder in folders for form in (os.path.abspath(folder), os.path.realpath(folder))
    ]
    return list(dict.fromkeys(form.rstrip(os.sep) + os.sep for form in forms))


def is_file_access_error(error: BaseException) -> bool:
    """Whether DuckDB refused to open a file because of the confinement."""
    return isinstance(error, duckdb.PermissionException)


def check_allowed_file(path: str, allowed_directories: Sequence[str | Path]) -> str:
    """``path``, when it lies under an allowed folder once symbolic links are resolved;
    otherwise a ``TerminalStepError`` naming where it leads."""
    real = os.path.realpath(path)
    if not any(real.startswith(prefix) for prefix in directory_prefixes(allowed_directories)):
        shown = path if real == os.path.abspath(path) else f"{path} (a link to {real})"
        raise TerminalStepError(
            f"{shown} is outside the folders playbooks may read "
            f"({', '.join(str(folder) for folder in allowed_directories)})",
            hint=ALLOWED_HINT,
            field="config.path",
        )
    return path
