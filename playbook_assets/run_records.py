"""Run records: what each run produced, so every figure in a report can be traced to stored,
verifiable data, and a run can be reproduced.

A run writes ``<run_id>.json`` (the run report), ``<run_id>.manifest.json`` (every artifact
with its path, sha256, rows and bytes; the playbook id, version and file hash; the resolved
parameters and the connections used) and ``<run_id>.playbook.yaml`` (the playbook as it ran).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from playbook_assets.artifacts import (
    BYTES_METADATA_KEY,
    PATH_METADATA_KEY,
    SHA256_METADATA_KEY,
    atomic_write_bytes,
    file_sha256,
    latest_materialization_metadata,
)
from playbook_assets.catalog import LoadedPlaybook
from playbook_assets.errors import PlaybookValidationError

MANIFEST_SUFFIX = ".manifest.json"
PLAYBOOK_SUFFIX = ".playbook.yaml"
RUN_ID_PATTERN = re.compile(r"run_\d{8}_\d{6}_[0-9a-f]{6}")


def report_file(artifacts_dir: Path, run_id: str) -> Path:
    """The run report of a run."""
    return artifacts_dir / f"{run_id}.json"


def manifest_file(artifacts_dir: Path, run_id: str) -> Path:
    """The manifest of a run."""
    return artifacts_dir / f"{run_id}{MANIFEST_SUFFIX}"


def playbook_file(artifacts_dir: Path, run_id: str) -> Path:
    """The copy of the playbook as it ran."""
    return artifacts_dir / f"{run_id}{PLAYBOOK_SUFFIX}"


def html_report_file(artifacts_dir: Path, run_id: str) -> Path:
    """The run report as a standalone HTML page."""
    return artifacts_dir / f"{run_id}.html"


def json_bytes(data: Any) -> bytes:
    """Stable, readable JSON."""
    from playbook_assets.report import json_default

    return (json.dumps(data, indent=2, default=json_default) + "\n").encode()


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


def write_run_record(
    report: dict[str, Any],
    loaded: LoadedPlaybook,
    artifacts: list[dict[str, Any]],
    artifacts_dir: Path,
    *,
    html: str | None = None,
) -> Path:
    """Write the playbook copy, the report (and its ``html`` page, when given) and the
    manifest of a run; return the report path.

    The manifest is written last and records the report's hash, so a run with a manifest is
    complete, and ``verify`` notices a changed report too.
    """
    run_id = report["run_id"]
    atomic_write_bytes(playbook_file(artifacts_dir, run_id), loaded.text.encode())
    path = report_file(artifacts_dir, run_id)
    atomic_write_bytes(path, json_bytes(report))
    html_path = html_report_file(artifacts_dir, run_id)
    if html is not None:
        atomic_write_bytes(html_path, html.encode())
    manifest = {
        "run_id": run_id,
        "dagster_run_id": report["dagster_run_id"],
        "executed_at": report["executed_at"],
        "status": report["status"],
        "playbook": {
            "id": loaded.id,
            "version": loaded.spec.version,
            "file": loaded.display_path,
            "sha256": loaded.sha256,
            "copy": playbook_file(artifacts_dir, run_id).name,
        },
        "parameters": report["metadata"]["parameters_used"],
        "partition": report.get("partition"),
        "connections": {
            "data_warehouse": report["metadata"]["data_warehouse"],
            "crm": report["metadata"]["crm"],
        },
        "report": {"path": path.name, "sha256": file_sha256(path)},
        "artifacts": artifacts,
    }
    if html is not None:
        manifest["report_html"] = {"path": html_path.name, "sha256": file_sha256(html_path)}
    atomic_write_bytes(manifest_file(artifacts_dir, run_id), json_bytes(manifest))
    return path


@dataclass(frozen=True)
class RunRecord:
    """One stored run, read from its manifest."""

    run_id: str
    manifest: dict[str, Any]
    directory: Path

    @property
    def playbook_id(self) -> str:
        """The playbook that ran."""
        return str(self.manifest["playbook"]["id"])

    @property
    def executed_at(self) -> dt.datetime:
        """When the run started (UTC)."""
        return dt.datetime.fromisoformat(str(self.manifest["executed_at"]).replace("Z", "+00:00"))

    def files(self) -> list[Path]:
        """The run's own files: report, manifest, playbook copy and artifacts it produced."""
        own = [
            report_file(self.directory, self.run_id),
            manifest_file(self.directory, self.run_id),
            playbook_file(self.directory, self.run_id),
        ]
        own += [
            Path(artifact["path"])
            for artifact in self.manifest["artifacts"]
            if "cached_from" not in artifact
        ]
        return own


def iter_runs(artifacts_dir: Path) -> Iterator[RunRecord]:
    """Every run with a manifest, oldest first."""
    records: list[RunRecord] = []
    for path in artifacts_dir.glob(f"run_*{MANIFEST_SUFFIX}"):
        run_id = path.name.removesuffix(MANIFEST_SUFFIX)
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        records.append(RunRecord(run_id, manifest, artifacts_dir))
    yield from sorted(records, key=lambda record: (record.manifest["executed_at"], record.run_id))


def load_run(artifacts_dir: Path, run_id: str) -> RunRecord:
    """One stored run; an unknown id lists the closest ones."""
    path = manifest_file(artifacts_dir, run_id)
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise PlaybookValidationError(
            f"'{run_id}' is not a run id", hint="run ids look like run_20260128_143000_abc123"
        )
    if not path.exists():
        known = [record.run_id for record in iter_runs(artifacts_dir)]
        hint = f"the latest runs: {', '.join(known[-5:])}" if known else "no run is stored"
        raise PlaybookValidationError(f"no stored run '{run_id}' in {artifacts_dir}", hint=hint)
    return RunRecord(run_id, json.loads(path.read_text(encoding="utf-8")), artifacts_dir)


@dataclass(frozen=True)
class Problem:
    """A stored file that is missing or no longer matches its recorded hash."""

    run_id: str
    path: str
    issue: str

    def __str__(self) -> str:
        return f"{self.run_id}: {self.path}: {self.issue}"


def verify_run(record: RunRecord) -> list[Problem]:
    """Recompute every checksum of a run; each missing or changed file is a problem."""
    problems: list[Problem] = []
    checks = [
        (str(report_file(record.directory, record.run_id)), record.manifest["report"]["sha256"])
    ]
    checks += [(a["path"], a["sha256"]) for a in record.manifest["artifacts"]]
    for path_text, expected in checks:
        path = Path(path_text)
        if not path.exists():
            problems.append(Problem(record.run_id, path_text, "missing"))
        elif expected is not None and file_sha256(path) != expected:
            problems.append(Problem(record.run_id, path_text, "changed (sha256 differs)"))
    return problems


@dataclass
class PruneResult:
    """What a prune removed (or would remove) and what it kept for the cached fallback."""

    removed_runs: list[str] = field(default_factory=list)
    removed_files: list[Path] = field(default_factory=list)
    kept_latest: list[Path] = field(default_factory=list)


def prune_runs(
    artifacts_dir: Path,
    retention_days: int,
    instance: dg.DagsterInstance,
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """Remove runs older than ``retention_days``, keeping every file that is still the
    latest materialization of its asset and partition (the cached fallback reads them)."""
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
    return result


def summary_row(record: RunRecord) -> Mapping[str, Any]:
    """One line of ``playbook artifacts list``."""
    artifacts = record.manifest["artifacts"]
    return {
        "run_id": record.run_id,
        "playbook_id": record.playbook_id,
        "executed_at": record.manifest["executed_at"],
        "status": record.manifest["status"],
        "artifacts": len(artifacts),
        "bytes": sum(int(a.get("bytes") or 0) for a in artifacts),
    }
