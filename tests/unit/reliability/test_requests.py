"""The run request folder under hostile input: each file is handled on its own, bounded in
size and depth; links are refused, never followed; files still being written are not read;
and no rejection repeats what a file holds."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playbook_assets.core.catalog import load_catalog
from playbook_assets.core.config import load_config_file
from playbook_assets.dagster_adapter.factory import build_definitions
from tests.conftest import Project

PLAYBOOK = """
playbook:
  id: seg
  name: Segment
  parameters:
    - {name: segment, type: string, default: smb}
  steps:
    - id: accounts
      type: query
      config:
        template: "SELECT account_id FROM analytics.accounts WHERE segment = {{segment}}"
        parameters: {segment: "${parameters.segment}"}
"""
VALID = json.dumps({"playbook_id": "seg", "parameters": {"segment": "enterprise"}})
SECRET = "AKIAEXAMPLESECRET9f3b"


@pytest.fixture
def folder(project: Project) -> Path:
    requests = project.root / "requests"
    requests.mkdir()
    project.config_path.write_text(
        project.config_path.read_text() + "  requests:\n    directory: ../requests\n",
        encoding="utf-8",
    )
    project.add_playbook("seg.yaml", PLAYBOOK)
    return requests


def tick(project: Project) -> list[dg.RunRequest]:
    """One evaluation of the request sensor; it must not raise, whatever the folder holds."""
    config = load_config_file(project.config_path)
    definitions = build_definitions(load_catalog(config, []), config)
    sensor = definitions.resolve_sensor_def("playbook_requests")
    result = sensor.evaluate_tick(dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()))
    return list(result.run_requests or [])


def requested(runs: list[dg.RunRequest]) -> list[str]:
    return [run.tags["playbook/request"] for run in runs]


def reasons(folder: Path) -> dict[str, str]:
    rejected = folder / "rejected"
    if not rejected.is_dir():
        return {}
    return {
        path.name.removesuffix(".error.txt"): path.read_text(encoding="utf-8").strip()
        for path in rejected.glob("*.error.txt")
    }


def test_a_deep_request_is_rejected_and_the_valid_one_still_runs(
    project: Project, folder: Path
) -> None:
    (folder / "a_deep.yaml").write_text(
        "playbook_id: seg\nparameters: {x: " + "[" * 5000 + "]" * 5000 + "}\n"
    )
    (folder / "b_valid.json").write_text(VALID)
    runs = tick(project)
    assert requested(runs) == ["b_valid.json"]
    assert runs[0].run_config["ops"]["seg"]["config"]["segment"] == "enterprise"
    assert reasons(folder) == {
        "a_deep.yaml": "the request breaks a limit at line 2: the document nests deeper than "
        "64 levels (limits.max_depth)"
    }
    assert sorted(os.listdir(folder / "accepted")) == ["b_valid.json"]


def test_an_alias_bomb_request_is_rejected(project: Project, folder: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    (folder / "bomb.yaml").write_text(
        "playbook_id: seg\nparameters:\n" + "".join(f"  {line}\n" for line in levels)
    )
    (folder / "valid.json").write_text(VALID)
    assert requested(tick(project)) == ["valid.json"]
    assert "(limits.max_aliases)" in reasons(folder)["bomb.yaml"]


def test_a_50_mb_request_is_refused_without_being_read(project: Project, folder: Path) -> None:
    path = folder / "huge.json"
    with path.open("w", encoding="utf-8") as handle:
        handle.write('{"playbook_id": "seg", "parameters": {"x": [')
        handle.write("1, " * (50 * 1024 * 1024 // 3))
        handle.write("1]}}")
    size = path.stat().st_size
    (folder / "valid.json").write_text(VALID)
    assert requested(tick(project)) == ["valid.json"]
    assert reasons(folder) == {
        "huge.json": f"the request is {size:,} bytes, over the limit of 1,048,576 "
        "(limits.max_file_bytes)"
    }


def test_a_link_out_of_the_folder_is_refused_and_its_target_never_read(
    project: Project, folder: Path
) -> None:
    credentials = project.root / "credentials"
    credentials.write_text(f"[default]\naws_secret_access_key = {SECRET}\n", encoding="utf-8")
    outside_request = project.root / "outside.json"
    outside_request.write_text(VALID, encoding="utf-8")
    (folder / "creds.yaml").symlink_to(credentials)
    (folder / "outside.json").symlink_to(outside_request)
    assert tick(project) == []
    refused = "the request is a symbolic link, which is refused; write the request itself into "
    refused += "the folder (to a dot-file, then rename it)"
    assert reasons(folder) == {"creds.yaml": refused, "outside.json": refused}
    # The links were moved, not what they point to.
    assert (folder / "rejected" / "creds.yaml").is_symlink()
    assert credentials.read_text(encoding="utf-8").endswith(f"{SECRET}\n")
    assert outside_request.exists()


def test_a_rejection_never_repeats_the_file(project: Project, folder: Path) -> None:
    (folder / "syntax.yaml").write_text(f"playbook_id: seg\ntoken: {SECRET}\n  bad: [\n")
    (folder / "ini.yaml").write_text(f"[default]\naws_secret_access_key = {SECRET}\n")
    (folder / "key.json").write_text(json.dumps({"playbook_id": "seg", f"x {SECRET}": 1}))
    (folder / "flat.yaml").write_text(f"{SECRET}\n")
    (folder / "dup.yaml").write_text(f"playbook_id: seg\n{SECRET}: 1\n{SECRET}: 2\n")
    assert tick(project) == []
    found = reasons(folder)
    assert sorted(found) == ["dup.yaml", "flat.yaml", "ini.yaml", "key.json", "syntax.yaml"]
    for name, reason in found.items():
        # Not even the start of a line of the file (a parser's error used to quote one).
        assert SECRET[:8] not in reason and "aws_secret" not in reason, name
    assert found["syntax.yaml"] == (
        "the request is not valid JSON or YAML (line 3); check it with a JSON or YAML parser"
    )
    assert found["key.json"].startswith("unknown key (not a plain name) in the request")
    assert found["flat.yaml"].startswith("a request is a mapping with playbook_id")


def test_files_being_written_are_left_alone_until_renamed(project: Project, folder: Path) -> None:
    half = VALID[: len(VALID) // 2]
    (folder / ".incoming.json").write_text(half)
    (folder / "incoming.json.tmp").write_text(half)
    (folder / "notes.txt").write_text("not a request")
    assert tick(project) == []
    assert sorted(os.listdir(folder)) == [".incoming.json", "incoming.json.tmp", "notes.txt"]
    # The writer completes the file, then renames it into place.
    (folder / ".incoming.json").write_text(VALID)
    os.replace(folder / ".incoming.json", folder / "incoming.json")
    assert requested(tick(project)) == ["incoming.json"]
    assert sorted(os.listdir(folder)) == ["accepted", "incoming.json.tmp", "notes.txt"]


def test_a_fifo_named_like_a_request_does_not_block_the_sensor(
    project: Project, folder: Path
) -> None:
    os.mkfifo(folder / "pipe.json")
    (folder / "valid.json").write_text(VALID)
    assert requested(tick(project)) == ["valid.json"]
    assert reasons(folder) == {"pipe.json": "the request is not a regular file"}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=300),
            # Nested lists up to well past Python's recursion limit.
            st.integers(min_value=1, max_value=3000).map(
                lambda depth: (
                    b"playbook_id: seg\nparameters: {x: " + b"[" * depth + b"]" * depth + b"}\n"
                )
            ),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_generated_files_never_stop_the_valid_request(
    project: Project, folder: Path, contents: list[bytes]
) -> None:
    for leftover in folder.rglob("*"):
        if leftover.is_file():
            leftover.unlink()
    for index, content in enumerate(contents):
        (folder / f"gen_{index}.yaml").write_bytes(content)
    (folder / "valid.json").write_text(VALID)
    runs = tick(project)
    assert "valid.json" in requested(runs)
    # Every generated file was either accepted or rejected with a reason, none left behind.
    left = [name for name in os.listdir(folder) if name.startswith("gen_")]
    assert left == []
    rejected = set(reasons(folder))
    accepted = set(requested(runs))
    assert {f"gen_{i}.yaml" for i in range(len(contents))} <= rejected | accepted
