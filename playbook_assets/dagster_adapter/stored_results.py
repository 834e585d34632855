"""Stored results a run reads from Dagster's instance: a step's latest result (for a step
whose upstream is not in the run) and, for the cached fallback, the latest result made by the
same request."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg

from playbook_assets.core.artifacts import (
    PATH_METADATA_KEY,
    SHA256_METADATA_KEY,
    read_verified_table,
)
from playbook_assets.core.errors import TerminalStepError
from playbook_assets.core.report import (
    CACHED_AT_KEY,
    CACHED_DAGSTER_RUN_KEY,
    CACHED_RUN_KEY,
    RUN_ID_METADATA_KEY,
    report_run_id,
)
from playbook_assets.core.step_execution import REQUEST_SHA256_KEY, CachedResult, RunLog

# How many earlier materializations the cached fallback looks through for the same request.
CACHE_SEARCH_LIMIT = 100


def find_cached_result(
    instance: dg.DagsterInstance,
    key: dg.AssetKey,
    fingerprint: str,
    partition: str | None,
    log: RunLog,
) -> CachedResult | None:
    """The latest stored result of an asset and partition made by the same request, its
    bytes checked against their recorded sha256."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=key, asset_partitions=[partition] if partition is not None else None
        ),
        limit=CACHE_SEARCH_LIMIT,
    ).records
    for record in records:
        materialization = record.asset_materialization
        if materialization is None:
            continue
        metadata = {name: value.value for name, value in materialization.metadata.items()}
        if metadata.get(REQUEST_SHA256_KEY) != fingerprint or PATH_METADATA_KEY not in metadata:
            continue
        path = Path(str(metadata[PATH_METADATA_KEY]))
        recorded = metadata.get(SHA256_METADATA_KEY)
        expected = str(recorded) if recorded else None
        try:
            table = read_verified_table(path, expected, key.to_user_string())
        except TerminalStepError as e:  # missing, unreadable or changed
            log.warning(f"{e}; looking for an earlier result of the same request")
            continue
        source_run = str(metadata.get(CACHED_DAGSTER_RUN_KEY) or record.run_id)
        return CachedResult(
            table=table,
            metadata={
                CACHED_RUN_KEY: str(
                    metadata.get(CACHED_RUN_KEY)
                    or metadata.get(RUN_ID_METADATA_KEY)
                    or _product_run_id(instance, source_run, key.path[0])
                ),
                CACHED_DAGSTER_RUN_KEY: source_run,
                CACHED_AT_KEY: str(metadata.get(CACHED_AT_KEY) or _iso(record.timestamp)),
            },
        )
    return None


def _product_run_id(instance: dg.DagsterInstance, dagster_run_id: str, playbook_id: str) -> str:
    """The run id of a result stored before results carried it: from the run's start."""
    record = instance.get_run_record_by_id(dagster_run_id)
    if record is None:
        return ""
    timestamp = record.start_time or record.create_timestamp.timestamp()
    started = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return report_run_id(dagster_run_id, playbook_id, started)


def _iso(timestamp: float) -> str:
    moment = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return moment.isoformat().replace("+00:00", "Z")
