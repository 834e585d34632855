"""File sources (steps with ``source: file``): CSV and Parquet files or globs, read by DuckDB.

Paths come only from the playbook YAML and are resolved against the playbook file's folder;
no run-time value ever reaches a path. Every file a path or glob matches must lie under a
folder the configuration allows, once links are resolved (see ``playbook_assets.core.file_access``),
and the read is interrupted at the step's time limit (a FIFO nobody writes to is left behind
there: see ``execution.call_within_limit``).
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from playbook_assets.connections.kit.deadline import interrupt_after, limit_text, step_timeout
from playbook_assets.connections.kit.errors import ErrorMapping, mapped_errors
from playbook_assets.core.errors import TerminalStepError
from playbook_assets.core.file_access import (
    ALLOWED_HINT,
    check_allowed_file,
    confined_connection,
    is_file_access_error,
)
from playbook_assets.core.spec import FileConfig


def resolve_file_path(config: FileConfig, playbook_dir: Path) -> str:
    """The path or glob, absolute (relative ones are relative to the playbook's folder)."""
    path = Path(config.path).expanduser()
    return str(path if path.is_absolute() else playbook_dir / path)


def file_format(config: FileConfig) -> str:
    """csv or parquet, from the config or the extension."""
    if config.format is not None:
        return config.format
    suffix = config.path.lower().rsplit(".", 1)[-1]
    if suffix in {"csv", "tsv", "txt"}:
        return "csv"
    if suffix in {"parquet", "pq"}:
        return "parquet"
    raise TerminalStepError(
        f"cannot tell the format of '{config.path}' from its extension",
        hint="add 'format: csv' or 'format: parquet'",
        field="config.format",
    )


def read_files(
    config: FileConfig,
    playbook_dir: Path,
    *,
    allowed_directories: Sequence[str | Path],
    timeout_seconds: float | None = None,
) -> pa.Table:
    """Read every file the path or glob matches into one Arrow table."""
    pattern = resolve_file_path(config, playbook_dir)
    matches = sorted(glob.glob(pattern))
    if not matches:
        raise TerminalStepError(
            f"no file matches {pattern}", hint="check config.path", field="config.path"
        )
    files = [check_allowed_file(match, allowed_directories) for match in matches]
    kind = file_format(config)
    with (
        confined_connection(allowed_directories=allowed_directories) as connection,
        interrupt_after(connection, timeout_seconds) as timed_out,
    ):
        with mapped_errors(_read_errors(pattern, kind, timeout_seconds, timed_out.is_set)):
            if kind == "csv":
                relation = connection.read_csv(
                    files,  # pyright: ignore[reportArgumentType]  (a list works; the stub is narrow)
                    header=config.header,
                    sep=config.delimiter,
                    filename=config.include_filename,
                )
            else:
                relation = connection.read_parquet(files, filename=config.include_filename)
            return relation.to_arrow_table()


def _read_errors(
    pattern: str, kind: str, timeout_seconds: float | None, interrupted: Callable[[], bool]
) -> ErrorMapping:
    """DuckDB's errors of a read: past the time limit (the interrupt fired), or the read's."""

    def mapping(error: Exception) -> Exception:
        if not isinstance(error, duckdb.Error):
            return error
        if interrupted():
            return step_timeout(
                f"reading {pattern} took longer than {limit_text(timeout_seconds)} and was stopped"
            )
        hint = ALLOWED_HINT if is_file_access_error(error) else None
        return TerminalStepError(f"cannot read {pattern} as {kind}: {error}", hint=hint)

    return mapping
