"""The component in a fresh ``dg`` project, through the real ``dg`` commands: listed by
``dg list components``, scaffolded by ``dg scaffold defs``, checked by ``dg check defs`` (a
broken playbook named with its line) and listed by ``dg list defs --json``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

DG = Path(sys.executable).parent / "dg"
COMPONENT = "playbook_assets.PlaybookCollectionComponent"


def dg_project(root: Path) -> Path:
    """A dg project as ``create-dagster project`` lays it out: ``[tool.dg]`` in pyproject.toml,
    ``src/<module>/definitions.py`` loading ``src/<module>/defs``."""
    package = root / "src" / "revops"
    (package / "defs").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [project]
            name = "revops"
            version = "0.1.0"
            requires-python = ">=3.11"

            [tool.dg]
            directory_type = "project"

            [tool.dg.project]
            root_module = "revops"
            """
        ),
        encoding="utf-8",
    )
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "defs" / "__init__.py").write_text("", encoding="utf-8")
    (package / "definitions.py").write_text(
        textwrap.dedent(
            """\
            from pathlib import Path

            import dagster as dg


            @dg.definitions
            def defs() -> dg.Definitions:
                return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
            """
        ),
        encoding="utf-8",
    )
    return package / "defs"


def dg(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``dg`` in the project, on this environment (where the package is installed)."""
    env = {
        **os.environ,
        "PATH": f"{DG.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(root / "src"),
        "DAGSTER_HOME": str(root / "dagster_home"),
    }
    env.pop("PLAYBOOK_CONFIG", None)
    return subprocess.run(
        [str(DG), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def listed_keys(root: Path) -> list[str]:
    listed = dg(root, "list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    return sorted(asset["asset_key"] for asset in json.loads(listed.stdout)["assets"])


@pytest.fixture
def project_root(tmp_path: Path) -> Path:
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dg_project(tmp_path)
    return tmp_path


def test_a_dg_project_lists_scaffolds_checks_and_lists_the_playbooks(project_root: Path) -> None:
    components = dg(project_root, "list", "components", "--json")
    assert components.returncode == 0, components.stderr
    assert COMPONENT in [entry["key"] for entry in json.loads(components.stdout)["items"]]

    scaffolded = dg(project_root, "scaffold", "defs", COMPONENT, "playbooks")
    assert scaffolded.returncode == 0, scaffolded.stderr
    folder = project_root / "src" / "revops" / "defs" / "playbooks"
    defs_yaml = (folder / "defs.yaml").read_text()
    assert defs_yaml.startswith("# yaml-language-server: $schema=schemas/component.schema.json\n")
    example = (folder / "playbooks" / "example.yaml").read_text()
    assert example.startswith("# yaml-language-server: $schema=../schemas/playbook.schema.json")
    for name in ("component", "playbook", "playbook-executor", "playbook-tests"):
        assert (folder / "schemas" / f"{name}.schema.json").is_file()

    checked = dg(project_root, "check", "defs")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The example's two steps, its output and its run report; {{min_arr}} in its SQL was
    # not rendered by Dagster's templating (the playbook would not validate without it).
    assert listed_keys(project_root) == [
        "example/accounts",
        "example/by_segment",
        "example/run_report",
        "example/segments",
    ]


def test_translation_and_inline_settings_from_defs_yaml(project_root: Path) -> None:
    folder = project_root / "src" / "revops" / "defs" / "sales"
    (folder / "books").mkdir(parents=True)
    (folder / "books" / "pipeline.yaml").write_text(
        textwrap.dedent(
            """\
            playbook:
              id: pipeline
              name: Pipeline
              parameters:
                - {name: stage, type: string, default: contractsent}
              steps:
                - id: deals
                  type: query
                  config:
                    template: "SELECT * FROM deals WHERE stage = {{stage}}"
                  checks:
                    - {type: row_count, min: 1}
              schedule: {cron: "0 6 * * 1"}
            """
        ),
        encoding="utf-8",
    )
    (folder / "defs.yaml").write_text(
        textwrap.dedent(
            f"""\
            type: {COMPONENT}
            attributes:
              playbooks: ["books/*.yaml"]
              settings:
                artifacts: {{directory: ../../../../artifacts}}
              translation:
                key_prefix: ["{{{{ 'sales' }}}}"]
                group_name: revenue
                owners: ["team:revops"]
                tags: {{domain: sales}}
            """
        ),
        encoding="utf-8",
    )
    listed = dg(project_root, "list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    assets = {asset["asset_key"]: asset for asset in found["assets"]}
    # Dagster rendered {{ 'sales' }} in defs.yaml; the playbook's {{stage}} stayed its own.
    assert sorted(assets) == ["sales/pipeline/deals", "sales/pipeline/run_report"]
    deals = assets["sales/pipeline/deals"]
    assert deals["group_name"] == "revenue"
    assert deals["owners"] == [{"team": "revops"}]
    assert {"key": "domain", "value": "sales"} in deals["tags"]
    assert [check["key"] for check in found["asset_checks"]] == ["sales/pipeline/deals:row_count"]
    assert "pipeline_schedule" in [schedule["name"] for schedule in found["schedules"]]


def test_dg_check_defs_names_the_line_of_a_broken_playbook(project_root: Path) -> None:
    folder = project_root / "src" / "revops" / "defs" / "playbooks"
    (folder / "playbooks").mkdir(parents=True)
    (folder / "defs.yaml").write_text(
        f'type: {COMPONENT}\nattributes:\n  playbooks: ["playbooks/*.yaml"]\n', encoding="utf-8"
    )
    (folder / "playbooks" / "broken.yaml").write_text(
        textwrap.dedent(
            """\
            playbook:
              id: broken
              name: Broken
              steps:
                - id: accounts
                  type: query
                  config:
                    template: SELECT 1 AS n
                - id: big
                  type: filter
                  config:
                    input: "${steps.acounts}"
                    condition: n > 0
            """
        ),
        encoding="utf-8",
    )
    checked = dg(project_root, "check", "defs")
    assert checked.returncode != 0
    output = checked.stdout + checked.stderr
    # Line 12: the reference to the misspelt step.
    assert (
        "src/revops/defs/playbooks/playbooks/broken.yaml:12: step 'big': unknown step "
        "'acounts' in ${steps.acounts}; did you mean 'accounts'?"
    ) in output, output

    (folder / "defs.yaml").write_text(
        f'type: {COMPONENT}\nattributes:\n  playbooks: ["playbok/*.yaml"]\n', encoding="utf-8"
    )
    checked = dg(project_root, "check", "defs")
    assert checked.returncode != 0
    assert "no file matches playbooks pattern 'playbok/*.yaml'" in checked.stdout + checked.stderr
