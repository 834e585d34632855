"""The artifact store as a Dagster I/O manager, and what the instance knows of stored results.

Results travel as Arrow inside a run. An asset of the user's own that takes a playbook's result
gets it as its parameter's annotation asks: a ``pandas.DataFrame`` for ``pd.DataFrame``, else
the Arrow table.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
from pydantic import Field

from playbook_assets.core.artifacts import (
    BYTES_METADATA_KEY,
    PATH_METADATA_KEY,
    SHA256_METADATA_KEY,
    EncodedTable,
    PartitionedResult,
    artifact_file,
    encode_table,
    read_verified_table,
    store_encoded,
)
from playbook_assets.core.errors import TerminalStepError


def _encoded(obj: EncodedTable | pa.Table, key: dg.AssetKey) -> EncodedTable:
    if isinstance(obj, EncodedTable):
        return obj
    if not isinstance(obj, pa.Table):
        raise TerminalStepError(
            f"{key.to_user_string()} returned {type(obj).__name__}, not an Arrow table"
        )
    return encode_table(obj)


class ArtifactIOManager(dg.ConfigurableIOManager):
    """Stores each step and output result as zstd Parquet under ``<base_dir>/data/``.

    One immutable file per asset, partition and run
    (``data/<playbook>/<asset>/[<partition>/]<dagster run id>.parquet``), with its path,
    sha256, byte size and row count in the materialization metadata. A run over a range of
    partitions stores one file per partition (``PartitionedResult``). A step that runs
    without its upstream in the same run reads the upstream's latest materialization of the
    same partition. An input annotated ``pd.DataFrame`` gets a pandas DataFrame; any other
    gets the Arrow table.
    """

    base_dir: str = Field(description="Root folder of the artifact store.")

    def artifact_path(self, asset_key: dg.AssetKey, run_id: str, partition: str | None) -> Path:
        """Where a run's result of an asset (and partition) is stored."""
        return artifact_file(self.base_dir, asset_key.path, run_id, partition)

    def handle_output(
        self, context: dg.OutputContext, obj: EncodedTable | pa.Table | PartitionedResult
    ) -> None:
        """Store a result and record where it is and what it hashes to."""
        key = context.asset_key
        if isinstance(obj, PartitionedResult):
            expected = set(context.asset_partition_keys)
            if set(obj.parts) != expected:
                raise TerminalStepError(
                    f"{key.to_user_string()}: results for partitions {sorted(obj.parts)} "
                    f"where the run covers {sorted(expected)}"
                )
            for partition, part in obj.parts.items():
                store_encoded(
                    _encoded(part, key), self.artifact_path(key, context.run_id, partition)
                )
            return
        encoded = _encoded(obj, key)
        partition = _partition_of(context) if context.has_asset_partitions else None
        path = self.artifact_path(key, context.run_id, partition)
        store_encoded(encoded, path)
        context.add_output_metadata(
            {
                PATH_METADATA_KEY: dg.MetadataValue.path(str(path)),
                SHA256_METADATA_KEY: dg.MetadataValue.text(encoded.sha256),
                BYTES_METADATA_KEY: dg.MetadataValue.int(encoded.size),
            }
        )

    def load_input(self, context: dg.InputContext) -> Any:
        """Read a stored result: the upstream run's, else the latest materialization's
        (what ``Definitions.load_asset_value`` returns), after checking its sha256; over a
        range of partitions, every partition's rows. A pandas DataFrame when the input is
        annotated ``pd.DataFrame``, else the Arrow table."""
        return _as_requested(_stored_table(context), context.dagster_type)


def _stored_table(context: dg.InputContext) -> pa.Table:
    key = context.asset_key
    if context.has_asset_partitions and len(context.asset_partition_keys) > 1:
        return pa.concat_tables(
            [
                read_latest_result(context.instance, key, partition)
                for partition in context.asset_partition_keys
            ]
        )
    partition = _partition_of(context) if context.has_asset_partitions else None
    upstream = context.upstream_output
    run_id = upstream.run_id if upstream is not None else None
    metadata = (
        run_materialization_metadata(context.instance, run_id, key, partition) if run_id else None
    )
    if metadata is not None and PATH_METADATA_KEY in metadata:
        return read_verified_table(
            Path(str(metadata[PATH_METADATA_KEY])),
            metadata.get(SHA256_METADATA_KEY),
            key.to_user_string(),
        )
    return read_latest_result(context.instance, key, partition)


def _as_requested(table: pa.Table, dagster_type: dg.DagsterType) -> Any:
    """The table in the form the input's annotation asks for."""
    # An annotation of pd.DataFrame means pandas is imported already; the product itself
    # never imports it (a second copy of every result in memory, and 0.5 s of import).
    pandas = sys.modules.get("pandas")
    wanted = dagster_type.typing_type
    if pandas is not None and isinstance(wanted, type) and issubclass(wanted, pandas.DataFrame):
        return table.to_pandas()
    return table


def read_latest_result(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None
) -> pa.Table:
    """The table of an asset's latest stored materialization (of a partition), refused
    unless its bytes match the sha256 recorded in that materialization."""
    metadata = latest_materialization_metadata(instance, key, partition)
    if metadata is None or PATH_METADATA_KEY not in metadata:
        where = f" (partition {partition})" if partition else ""
        raise TerminalStepError(
            f"no stored result of {key.to_user_string()}{where}",
            hint="materialize the upstream step first (or run the whole playbook)",
        )
    return read_verified_table(
        Path(str(metadata[PATH_METADATA_KEY])),
        metadata.get(SHA256_METADATA_KEY),
        key.to_user_string(),
    )


def _partition_of(context: dg.OutputContext | dg.InputContext) -> str:
    """The one partition of a result: a range is stored one partition at a time."""
    key_range = context.asset_partition_key_range
    if key_range.start != key_range.end:
        raise TerminalStepError(
            f"{context.asset_key.to_user_string()}: one result for the partitions "
            f"{key_range.start} to {key_range.end}; a range is stored one table per partition",
            hint="return a PartitionedResult with each partition's table",
        )
    return key_range.start


def latest_materialization_metadata(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None
) -> dict[str, Any] | None:
    """Metadata values of the latest materialization of an asset (and partition)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=key, asset_partitions=[partition] if partition is not None else None
        ),
        limit=1,
    ).records
    if not records:
        return None
    materialization = records[0].asset_materialization
    if materialization is None:
        return None
    return {name: value.value for name, value in materialization.metadata.items()}


def run_materialization_metadata(
    instance: dg.DagsterInstance, run_id: str, key: dg.AssetKey, partition: str | None
) -> dict[str, Any] | None:
    """Metadata values of an asset's materialization (of a partition) in one run."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=100_000
    ).records
    for record in reversed(records):
        event = record.event_log_entry.dagster_event
        if event is None or event.asset_key != key:
            continue
        materialization = event.step_materialization_data.materialization
        if partition is None or materialization.partition == partition:
            return {name: value.value for name, value in materialization.metadata.items()}
    return None


def run_artifacts(
    instance: dg.DagsterInstance, dagster_run_id: str, playbook_id: str
) -> list[dict[str, Any]]:
    """Every artifact a run stored for a playbook, from its materializations."""
    records = instance.get_records_for_run(
        dagster_run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=100_000
    ).records
    artifacts: list[dict[str, Any]] = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None or event.asset_key is None or event.asset_key.path[0] != playbook_id:
            continue
        materialization = event.step_materialization_data.materialization
        metadata = {name: value.value for name, value in materialization.metadata.items()}
        if PATH_METADATA_KEY not in metadata:
            continue
        entry: dict[str, Any] = {
            "asset": event.asset_key.to_user_string(),
            "partition": materialization.partition,
            "path": str(metadata[PATH_METADATA_KEY]),
            "sha256": metadata.get(SHA256_METADATA_KEY),
            "rows": metadata.get("dagster/row_count"),
            "bytes": metadata.get(BYTES_METADATA_KEY),
        }
        if "cached_from_run_id" in metadata:
            entry["cached_from"] = metadata["cached_from_run_id"]
        artifacts.append(entry)
    return artifacts
