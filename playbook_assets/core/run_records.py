"""Run records: what each run produced, so every figure in a report can be traced to stored,
verifiable data, and a run can be reproduced.

A run writes ``<run_id>.json`` (the run report), ``<run_id>.manifest.json`` (every artifact
with its path, sha256, rows and bytes; the playbook id, version, file hash and the hash of its
copy; the resolved parameters and the connections used) and ``<run_id>.playbook.yaml`` (the
playbook as it ran). The manifest is written last: a report without one is an incomplete
record, which ``verify_store`` reports. Pruning old runs asks the Dagster instance which files
are still the latest materializations (``dagster_adapter.retention``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playbook_assets.core.artifacts import atomic_write_bytes, file_sha256
from playbook_assets.core.catalog import LoadedPlaybook
from playbook_assets.core.errors import (
    ArtifactChecksumError,
    ArtifactWriteError,
    PlaybookValidationError,
)

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
    from playbook_assets.core.report import json_default

    return (json.dumps(data, indent=2, default=json_default) + "\n").encode()


class RunRecordNotStoredError(ArtifactWriteError):
    """A run's record (report, manifest, playbook copy) could not be written. Carries the
    report, so that it can still be shown; nothing of the record is left behind."""

    def __init__(self, report: dict[str, Any], cause: ArtifactWriteError) -> None:
        self.report = report
        super().__init__(
            f"the record of {report['run_id']} was not stored: {cause.message}", hint=cause.hint
        )


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

    The manifest is written last and records the report's and the copy's hashes, so a run
    with a manifest is complete, and ``verify`` notices a changed report or copy too. When a
    file cannot be written, the ones written before it are removed again and
    ``RunRecordNotStoredError`` (with the report) is raised.
    """
    run_id = report["run_id"]
    written: list[Path] = []
    try:
        copy = playbook_file(artifacts_dir, run_id)
        copy_bytes = loaded.text.encode()
        atomic_write_bytes(copy, copy_bytes)
        written.append(copy)
        path = report_file(artifacts_dir, run_id)
        atomic_write_bytes(path, json_bytes(report))
        written.append(path)
        if html is not None:
            html_path = html_report_file(artifacts_dir, run_id)
            atomic_write_bytes(html_path, html.encode())
            written.append(html_path)
        manifest = _manifest(report, loaded, artifacts, artifacts_dir, copy_bytes)
        atomic_write_bytes(manifest_file(artifacts_dir, run_id), json_bytes(manifest))
    except ArtifactWriteError as e:
        for done in written:
            done.unlink(missing_ok=True)
        raise RunRecordNotStoredError(report, e) from e
    return path


def _manifest(
    report: dict[str, Any],
    loaded: LoadedPlaybook,
    artifacts: list[dict[str, Any]],
    artifacts_dir: Path,
    copy_bytes: bytes,
) -> dict[str, Any]:
    run_id = report["run_id"]
    path = report_file(artifacts_dir, run_id)
    html_path = html_report_file(artifacts_dir, run_id)
    manifest: dict[str, Any] = {
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
            "copy_sha256": hashlib.sha256(copy_bytes).hexdigest(),
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
    if html_path.exists():
        manifest["report_html"] = {"path": html_path.name, "sha256": file_sha256(html_path)}
    return manifest


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
        """The run's own files: report (and its page), manifest, playbook copy and the
        artifacts it produced."""
        own = [
            report_file(self.directory, self.run_id),
            manifest_file(self.directory, self.run_id),
            playbook_file(self.directory, self.run_id),
        ]
        if "report_html" in self.manifest:
            own.append(html_report_file(self.directory, self.run_id))
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


def copy_sha256(record: RunRecord) -> str:
    """The recorded sha256 of a run's playbook copy (older manifests have only the file's,
    which the copy matches byte for byte)."""
    playbook = record.manifest["playbook"]
    return str(playbook.get("copy_sha256") or playbook["sha256"])


def verify_run(record: RunRecord) -> list[Problem]:
    """Recompute every checksum of a run (report and its page, playbook copy, artifacts); each
    missing or changed file is a problem."""
    problems: list[Problem] = []
    checks = [
        (str(report_file(record.directory, record.run_id)), record.manifest["report"]["sha256"]),
        (str(playbook_file(record.directory, record.run_id)), copy_sha256(record)),
    ]
    page = record.manifest.get("report_html")
    if page is not None:
        checks.append((str(record.directory / page["path"]), page["sha256"]))
    checks += [(a["path"], a["sha256"]) for a in record.manifest["artifacts"]]
    for path_text, expected in checks:
        path = Path(path_text)
        if not path.exists():
            problems.append(Problem(record.run_id, path_text, "missing"))
        elif expected is not None and file_sha256(path) != expected:
            problems.append(Problem(record.run_id, path_text, "changed (sha256 differs)"))
    return problems


@dataclass(frozen=True)
class Verification:
    """The outcome of verifying one stored run."""

    run_id: str
    checked_files: int
    problems: list[Problem]


def verify_store(artifacts_dir: Path, run_id: str | None = None) -> list[Verification]:
    """Verify one stored run, or every one (``run_id`` None), reports without a manifest
    included: such a record is incomplete, and nothing vouches for its figures."""
    if run_id is not None and not manifest_file(artifacts_dir, run_id).exists():
        if RUN_ID_PATTERN.fullmatch(run_id) and report_file(artifacts_dir, run_id).exists():
            return [_missing_manifest(artifacts_dir, run_id)]
    records = [load_run(artifacts_dir, run_id)] if run_id else list(iter_runs(artifacts_dir))
    results = [
        Verification(record.run_id, _checked_files(record), verify_run(record))
        for record in records
    ]
    if run_id is None:
        results += [_missing_manifest(artifacts_dir, orphan) for orphan in _orphans(artifacts_dir)]
    return results


def _checked_files(record: RunRecord) -> int:
    """How many files ``verify_run`` checks: the report, the playbook copy, the page if any,
    and the artifacts."""
    return 2 + ("report_html" in record.manifest) + len(record.manifest["artifacts"])


def _orphans(artifacts_dir: Path) -> list[str]:
    """Run ids whose report has no manifest."""
    run_ids = (path.name.removesuffix(".json") for path in artifacts_dir.glob("run_*.json"))
    return sorted(
        run_id
        for run_id in run_ids
        if RUN_ID_PATTERN.fullmatch(run_id) and not manifest_file(artifacts_dir, run_id).exists()
    )


def _missing_manifest(artifacts_dir: Path, run_id: str) -> Verification:
    issue = "missing: the run has a report but no manifest (an incomplete or altered record)"
    return Verification(
        run_id, 0, [Problem(run_id, str(manifest_file(artifacts_dir, run_id)), issue)]
    )


def checked_playbook_copy(record: RunRecord) -> Path:
    """The run's stored playbook copy, refused unless it matches the manifest's sha256."""
    copy = playbook_file(record.directory, record.run_id)
    if not copy.exists():
        raise ArtifactChecksumError(
            f"the stored copy of the playbook of {record.run_id} is missing: {copy}",
            hint="the run cannot be repeated as it ran",
        )
    if file_sha256(copy) != copy_sha256(record):
        raise ArtifactChecksumError(
            f"the stored copy of the playbook of {record.run_id} ({copy}) does not match the "
            "sha256 in its manifest: it was changed since the run and is not used",
            hint=f"`playbook artifacts verify {record.run_id}` shows the run's files",
        )
    return copy


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
