"""A stored run's report, rendered from its run record alone: the report JSON, the copy of
the playbook as it ran, and the result files its manifest lists, each checked against its
recorded sha256 before it is read (a figure is never drawn from a file that changed)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pyarrow.parquet as pq

from playbook_assets.core.artifacts import file_sha256
from playbook_assets.core.catalog import display_path
from playbook_assets.core.errors import PlaybookValidationError
from playbook_assets.core.playbook_parsing import parse_playbook
from playbook_assets.core.report_render.content import report_view
from playbook_assets.core.report_render.data import ReportTables
from playbook_assets.core.report_render.html import html_report
from playbook_assets.core.report_render.markdown import markdown_report
from playbook_assets.core.run_records import (
    RunRecord,
    load_run,
    playbook_file,
    report_file,
)
from playbook_assets.core.spec import PlaybookSpec
from playbook_assets.core.yaml_source import load_yaml

ReportFormat = Literal["html", "md", "json"]


def stored_report(artifacts_dir: Path, run_id: str, report_format: ReportFormat) -> str:
    """A stored run's report as HTML (the file the run wrote, else rendered from the record),
    Markdown or JSON (the report as stored)."""
    record = load_run(artifacts_dir, run_id)
    path = report_file(artifacts_dir, run_id)
    text = _checked_text(path, record.manifest["report"]["sha256"], record)
    if report_format == "json":
        return text
    stored_html = record.manifest.get("report_html")
    if report_format == "html" and stored_html is not None:
        return _checked_text(artifacts_dir / stored_html["path"], stored_html["sha256"], record)
    report = json.loads(text)
    spec = stored_playbook(record)
    view = report_view(report, spec, stored_tables(spec, record.manifest).data(report))
    if report_format == "md":
        return markdown_report(view)
    return html_report(view, run_id)


def stored_playbook(record: RunRecord) -> PlaybookSpec:
    """The playbook as the run ran it, from the copy in its record."""
    copy = playbook_file(record.directory, record.run_id)
    text = _checked_text(copy, record.manifest["playbook"]["sha256"], record)
    return parse_playbook(load_yaml(text, display_path(copy)))


def stored_tables(spec: PlaybookSpec, manifest: Mapping[str, Any]) -> ReportTables:
    """What the report shows of the run's stored results (its partition's only)."""
    tables = ReportTables(spec)
    prefix = f"{spec.id}/"
    for artifact in manifest["artifacts"]:
        asset = str(artifact["asset"])
        name = asset.removeprefix(prefix)
        if (
            not asset.startswith(prefix)
            or name not in tables.steps
            or artifact.get("partition") != manifest.get("partition")
        ):
            continue
        path = Path(artifact["path"])
        _check(path, artifact.get("sha256"), manifest["run_id"])
        tables.add(name, pq.read_table(path))
    return tables


def _checked_text(path: Path, sha256: str | None, record: RunRecord) -> str:
    _check(path, sha256, record.run_id)
    return path.read_text(encoding="utf-8")


def _check(path: Path, sha256: str | None, run_id: str) -> None:
    hint = f"playbook artifacts verify {run_id} lists what is wrong"
    if not path.exists():
        raise PlaybookValidationError(f"{run_id}: {path} is missing", hint=hint)
    if sha256 is not None and file_sha256(path) != sha256:
        raise PlaybookValidationError(
            f"{run_id}: {path} changed since the run (its sha256 differs from the manifest's)",
            hint=hint,
        )
