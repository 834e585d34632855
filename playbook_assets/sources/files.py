"""File sources (steps with ``source: file``): CSV and Parquet files or globs, read by DuckDB.

Paths come only from the playbook YAML and are resolved against the playbook file's folder;
no run-time value ever reaches a path.
"""

from __future__ import annotations

import glob
from pathlib import Path

import duckdb
import pyarrow as pa

from playbook_assets.errors import TerminalStepError
from playbook_assets.spec import FileConfig


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


def read_files(config: FileConfig, playbook_dir: Path) -> pa.Table:
    """Read every file the path or glob matches into one Arrow table."""
    pattern = resolve_file_path(config, playbook_dir)
    matches = sorted(glob.glob(pattern))
    if not matches:
        raise TerminalStepError(
            f"no file matches {pattern}", hint="check config.path", field="config.path"
        )
    kind = file_format(config)
    with duckdb.connect() as connection:
        try:
            if kind == "csv":
                relation = connection.read_csv(
                    pattern,
                    header=config.header,
                    sep=config.delimiter,
                    filename=config.include_filename,
                )
            else:
                relation = connection.read_parquet(pattern, filename=config.include_filename)
            return relation.to_arrow_table()
        except duckdb.Error as e:
            raise TerminalStepError(f"cannot read {pattern} as {kind}: {e}") from e
