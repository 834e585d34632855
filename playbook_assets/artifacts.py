"""The artifact store: step results as Parquet files, written through a Dagster I/O manager."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from playbook_assets.errors import TerminalStepError

PATH_METADATA_KEY = "artifact_path"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see either nothing or the whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def write_parquet_atomically(table: pa.Table, path: Path) -> None:
    """Write a table as zstd Parquet via a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, temporary, compression="zstd")
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


class ArtifactIOManager(dg.ConfigurableIOManager):
    """Stores each step and output result as Parquet under ``<base_dir>/data/<asset key>/``.

    One file per run (``<dagster run id>.parquet``); a step that runs without its upstream
    in the same run reads the upstream's latest materialization.
    """

    base_dir: str = Field(description="Root folder of the artifact store.")

    def artifact_path(self, asset_key: dg.AssetKey, run_id: str) -> Path:
        """Where a run's result of an asset is stored."""
        return Path(self.base_dir, "data", *asset_key.path, f"{run_id}.parquet")

    def handle_output(self, context: dg.OutputContext, obj: pa.Table) -> None:
        """Store a result table."""
        if not isinstance(obj, pa.Table):
            raise TerminalStepError(
                f"{context.asset_key.to_user_string()} returned {type(obj).__name__}, "
                "not an Arrow table"
            )
        path = self.artifact_path(context.asset_key, context.run_id)
        write_parquet_atomically(obj, path)
        context.add_output_metadata({PATH_METADATA_KEY: dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> pa.Table:
        """Read an upstream result: this run's, else the latest materialization's."""
        key = context.asset_key
        upstream = context.upstream_output
        run_id = upstream.run_id if upstream is not None else None
        path = self.artifact_path(key, run_id) if run_id else None
        if path is None or not path.exists():
            event = context.instance.get_latest_materialization_event(key)
            materialization = event.asset_materialization if event is not None else None
            stored = materialization.metadata.get(PATH_METADATA_KEY) if materialization else None
            if stored is None:
                raise TerminalStepError(
                    f"no stored result of {key.to_user_string()}",
                    hint="materialize the upstream step first (or run the whole playbook)",
                )
            path = Path(str(stored.value))
        if not path.exists():
            raise TerminalStepError(
                f"the stored result of {key.to_user_string()} is missing: {path}",
                hint="materialize the upstream step again",
            )
        return pq.read_table(path)
