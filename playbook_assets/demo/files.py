"""Demo files: each DuckDB file built whole under a temporary name and moved into place,
under a lock, with the record of how it was generated."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from playbook_assets.core.errors import (
    SourceUnreachableError,
    TerminalStepError,
)

DATASET_TABLE = "playbook_demo_dataset"


@dataclass(frozen=True)
class DemoFileInfo:
    """How a demo file was generated, as recorded in it."""

    kind: str  # WAREHOUSE or CRM
    seed: int
    scale: float
    version: int
    # Every file generated with it, as (kind, absolute path): the data set it belongs to.
    members: tuple[tuple[str, str], ...]

    @property
    def generation(self) -> tuple[int, float, int]:
        """What makes two files' data agree: same seed, scale and generator version."""
        return (self.seed, self.scale, self.version)

    def describe(self) -> str:
        """The generation in words."""
        return f"scale {self.scale:g}, seed {self.seed}, generator version {self.version}"


def read_demo_info(path: Path) -> DemoFileInfo | None:
    """How a demo file was generated; None for a file that does not record it."""
    try:
        # Attached to a connection of its own rather than opened: DuckDB refuses a second
        # connection to a file that this process has open with other settings (a step may be
        # querying it with its connection's `threads`).
        with duckdb.connect(":memory:") as con:
            con.execute("ATTACH ? AS demo_file (READ_ONLY)", [str(path)])
            found = con.sql(
                "SELECT count(*) FROM information_schema.tables WHERE table_catalog = "
                f"'demo_file' AND table_schema = 'main' AND table_name = '{DATASET_TABLE}'"
            ).fetchall()
            if not found or not found[0][0]:
                return None
            rows = con.sql(
                f"SELECT kind, seed, scale, version, members FROM demo_file.main.{DATASET_TABLE}"
            ).fetchall()
    except duckdb.IOException as e:
        raise SourceUnreachableError(f"cannot open the demo file {path}: {e}") from e
    except duckdb.Error as e:
        raise TerminalStepError(f"cannot read the demo file {path}: {e}") from e
    if len(rows) != 1:
        return None
    kind, seed, scale, version, members = rows[0]
    # Stored relative to the file's folder, so a data folder moved as a whole stays a set.
    folder = absolute_path(path).parent
    pairs = tuple((str(k), str(absolute_path(folder / p))) for k, p in json.loads(members))
    return DemoFileInfo(str(kind), int(seed), float(scale), int(version), pairs)


def absolute_path(path: Path) -> Path:
    """``path`` made absolute and normalized (how a data set names its files)."""
    return Path(os.path.normpath(Path(path).absolute()))


def ensure_file(path: Path, write: Callable[[Path], object]) -> bool:
    """Create ``path`` with ``write`` unless it exists, under its lock; whether it was created."""
    if path.exists():  # the file only ever appears complete (os.replace), so this is safe
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(lock_file(path)):
        if path.exists():
            return False
        write(path)
        return True


def lock_file(path: Path) -> Path:
    """The lock file beside a demo file."""
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created if missing)."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def temporary_file(path: Path) -> Path:
    """Where a file is built before it is moved to ``path`` (the same folder, so the move is
    an atomic rename); a leftover of an earlier build is removed."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_suffix(f".tmp-{os.getpid()}")
    discard(tmp)
    return tmp


def discard(tmp: Path) -> None:
    """Remove a temporary build and its DuckDB write-ahead log."""
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)


def build_file(
    target: Path,
    schema: str | None,
    layouts: dict[str, tuple[tuple[str, str], ...]],
    tables: dict[str, pa.Table],
    info: DemoFileInfo,
) -> None:
    """Build a complete, closed DuckDB file at ``target`` with the tables and the record of
    how they were generated."""
    folder = absolute_path(target).parent
    relative = [(kind, os.path.relpath(member, folder)) for kind, member in info.members]
    with duckdb.connect(str(target)) as con:
        if schema is not None:
            con.execute(f'CREATE SCHEMA "{schema}"')
        for name, table in tables.items():
            qualified = f'"{schema}"."{name}"' if schema else f'"{name}"'
            columns = ", ".join(f'"{col}" {sql_type}' for col, sql_type in layouts[name])
            # Names and types are the constants above, never user input.
            con.execute(f"CREATE TABLE {qualified} ({columns})")
            con.register("_demo_source", table)
            try:
                con.execute(f"INSERT INTO {qualified} SELECT * FROM _demo_source")
            finally:
                con.unregister("_demo_source")
        con.execute(
            f"CREATE TABLE main.{DATASET_TABLE} (kind VARCHAR, seed BIGINT, scale DOUBLE, "
            "version INTEGER, members VARCHAR)"
        )
        con.execute(
            f"INSERT INTO main.{DATASET_TABLE} VALUES (?, ?, ?, ?, ?)",
            [info.kind, info.seed, info.scale, info.version, json.dumps(relative)],
        )
        con.execute("CHECKPOINT")
