"""Retention of stored runs: pruning old runs and what interrupted runs left behind, keeping
every file the instance still records as the latest materialization of its asset (the cached
fallback reads them)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from playbook_assets.core.artifacts import PATH_METADATA_KEY
from playbook_assets.core.run_records import (
    PLAYBOOK_SUFFIX,
    RUN_ID_PATTERN,
    iter_runs,
    manifest_file,
)
from playbook_assets.dagster_adapter.io_manager import latest_materialization_metadata
from playbook_assets.dagster_adapter.stale_runs import process_running_since

# A run's files that no record lists are left this long after the run ended before they
# count as leftovers: a failed run launched from the UI gets its record from a sensor, a
# little after the run's end.
LEFTOVER_GRACE = dt.timedelta(hours=1)
# ``artifacts.atomic_write_bytes``'s temporary files: ``.<name>.tmp-<pid of the writer>``.
_TEMPORARY_FILE = re.compile(r"\..+\.tmp-(\d+)")


@dataclass
class PruneResult:
    """What a prune removed (or would remove) and what it kept for the cached fallback."""

    removed_runs: list[str] = field(default_factory=list)
    removed_files: list[Path] = field(default_factory=list)
    kept_latest: list[Path] = field(default_factory=list)
    # Left by interrupted runs: temporary files and results no run record lists.
    removed_leftovers: list[Path] = field(default_factory=list)


def prune_runs(
    artifacts_dir: Path,
    retention_days: int,
    instance: dg.DagsterInstance,
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """Remove runs older than ``retention_days``, keeping every file that is still the
    latest materialization of its asset and partition (the cached fallback reads them).

    Also removes what interrupted runs left (``removed_leftovers``): temporary files whose
    writing process has ended, and results and reports of finished runs that no manifest
    lists (``LEFTOVER_GRACE`` after the run's end), never a file of a run still in progress
    nor the latest materialization of an asset. Writers are checked on this host: the
    artifacts folder is meant to be written from one machine.
    """
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=retention_days)
    result = PruneResult()
    latest_cache: dict[tuple[str, str | None], str | None] = {}

    def latest_path(asset: str, partition: str | None) -> str | None:
        key = (asset, partition)
        if key not in latest_cache:
            metadata = latest_materialization_metadata(
                instance, dg.AssetKey.from_user_string(asset), partition
            )
            found = metadata.get(PATH_METADATA_KEY) if metadata else None
            latest_cache[key] = str(found) if found is not None else None
        return latest_cache[key]

    for record in iter_runs(artifacts_dir):
        if record.executed_at >= cutoff:
            continue
        protected = {
            artifact["path"]
            for artifact in record.manifest["artifacts"]
            if latest_path(artifact["asset"], artifact.get("partition")) == artifact["path"]
        }
        result.removed_runs.append(record.run_id)
        for path in record.files():
            if str(path) in protected:
                result.kept_latest.append(path)
                continue
            if path.exists():
                result.removed_files.append(path)
                if not dry_run:
                    path.unlink()
    for path in _leftovers(artifacts_dir, instance, now, latest_path):
        result.removed_leftovers.append(path)
        if not dry_run:
            path.unlink(missing_ok=True)
    return result


def _leftovers(
    artifacts_dir: Path,
    instance: dg.DagsterInstance,
    now: dt.datetime,
    latest_path: Callable[[str, str | None], str | None],
) -> Iterator[Path]:
    """Files of interrupted runs (see ``prune_runs``)."""
    listed: set[Path] = set()
    for record in iter_runs(artifacts_dir):
        listed.update(record.files())
        listed.update(Path(artifact["path"]) for artifact in record.manifest["artifacts"])
    grace_start = (now - LEFTOVER_GRACE).timestamp()
    for path in sorted(artifacts_dir.rglob(".*.tmp-*")):
        match = _TEMPORARY_FILE.fullmatch(path.name)
        if match is None or not path.is_file():
            continue
        if not process_running_since(int(match.group(1)), path.stat().st_mtime):
            yield path
    # A report or playbook copy without its manifest: its record was never completed.
    for path in sorted(artifacts_dir.glob("run_*")):
        run_id = path.name.removesuffix(PLAYBOOK_SUFFIX).removesuffix(".json")
        if (
            path.name in {f"{run_id}.json", f"{run_id}{PLAYBOOK_SUFFIX}"}
            and RUN_ID_PATTERN.fullmatch(run_id)
            and not manifest_file(artifacts_dir, run_id).exists()
            and path.stat().st_mtime < grace_start
        ):
            yield path
    ended: dict[str, bool] = {}
    for path in sorted((artifacts_dir / "data").rglob("*.parquet")):
        if path in listed:
            continue
        dagster_run_id = path.stem
        if dagster_run_id not in ended:
            ended[dagster_run_id] = _ended_before(instance, dagster_run_id, grace_start, path)
        if not ended[dagster_run_id]:
            continue
        if not _is_latest(instance, dagster_run_id, path, latest_path):
            yield path


def _ended_before(
    instance: dg.DagsterInstance, dagster_run_id: str, timestamp: float, path: Path
) -> bool:
    """Whether the run that wrote ``path`` ended before ``timestamp`` (a run this instance
    does not know: whether the file is older than that)."""
    records = instance.get_run_records(filters=dg.RunsFilter(run_ids=[dagster_run_id]), limit=1)
    if not records:
        return path.stat().st_mtime < timestamp
    record = records[0]
    if not record.dagster_run.is_finished:
        return False
    end = record.end_time or record.update_timestamp.timestamp()
    return end < timestamp


def _is_latest(
    instance: dg.DagsterInstance,
    dagster_run_id: str,
    path: Path,
    latest_path: Callable[[str, str | None], str | None],
) -> bool:
    """Whether ``path`` is still the latest materialization of its asset and partition."""
    records = instance.get_records_for_run(
        dagster_run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=100_000
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None or event.asset_key is None:
            continue
        materialization = event.step_materialization_data.materialization
        stored = materialization.metadata.get(PATH_METADATA_KEY)
        if stored is not None and str(stored.value) == str(path):
            asset = event.asset_key.to_user_string()
            return latest_path(asset, materialization.partition) == str(path)
    return False
