"""The component builds what the code location builds: the same assets, checks, schedules,
sensors and jobs for the same playbooks and config; ``translation`` changes only what it
names."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from playbook_assets.core.errors import ConfigError
from playbook_assets.dagster_adapter.code_location import build_code_location
from playbook_assets.dagster_adapter.component import PlaybookCollectionComponent
from tests.conftest import Project

SCHEDULED = """
playbook:
  id: scheduled
  name: Scheduled
  steps:
    - id: accounts
      type: query
      config:
        template: "SELECT account_id, arr FROM analytics.accounts WHERE arr >= {{min_arr}}"
        parameters: {min_arr: "${parameters.min_arr}"}
      checks:
        - {type: not_null, columns: [account_id]}
  parameters:
    - {name: min_arr, type: number, default: 1000}
    - {name: source_file, type: string, default: ""}
  outputs:
    - name: total
      type: aggregate
      source: "${steps.accounts}"
      metrics: [{name: arr, expression: SUM(arr)}]
  schedule: {cron: "0 6 * * 1-5"}
  triggers:
    - {type: file, path: "incoming/*.csv", parameter: source_file}
"""


def _shape(defs: dg.Definitions) -> tuple[set[str], set[str], set[str], set[str], set[str]]:
    graph = defs.resolve_asset_graph()
    return (
        {key.to_user_string() for key in graph.get_all_asset_keys()},
        {key.to_user_string() for key in graph.asset_check_keys},
        {schedule.name for schedule in defs.schedules or []},
        {sensor.name for sensor in defs.sensors or []},
        {job.name for job in defs.jobs or [] if isinstance(job, dg.JobDefinition)},
    )


def test_the_component_builds_what_the_code_location_builds(project: Project) -> None:
    project.add_playbook("scheduled.yaml", SCHEDULED)
    (project.playbooks_dir / "incoming").mkdir()
    location = build_code_location([], config_path=str(project.config_path))
    component = PlaybookCollectionComponent(
        playbooks=["config/playbooks/*.yaml"], config="config/playbook-executor.yaml"
    ).build_collection(project.root)
    assert _shape(component) == _shape(location)
    assets, checks, schedules, sensors, jobs = _shape(component)
    assert assets == {"scheduled/accounts", "scheduled/total", "scheduled/run_report"}
    assert checks == {"scheduled/accounts:not_null_account_id"}
    assert "scheduled_schedule" in schedules
    assert any("scheduled" in name for name in sensors - {"playbook_run_records"})
    assert "artifacts_prune" in jobs


def test_translation_prefixes_groups_and_tags_every_asset(project: Project) -> None:
    project.add_playbook("scheduled.yaml", SCHEDULED)
    (project.playbooks_dir / "incoming").mkdir()
    component = PlaybookCollectionComponent.from_attributes_dict(
        attributes={
            "playbooks": ["config/playbooks/*.yaml"],
            "config": "config/playbook-executor.yaml",
            "translation": {
                "key_prefix": ["bi"],
                "group_name": "bi",
                "owners": ["team:revops"],
                "tags": {"domain": "sales"},
            },
        }
    )
    assert isinstance(component, PlaybookCollectionComponent)
    defs = component.build_collection(project.root)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {"bi/scheduled/accounts", "bi/scheduled/total", "bi/scheduled/run_report"}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name == "bi"
        assert node.owners == ["team:revops"]
        assert node.tags["domain"] == "sales"


def test_inline_settings_errors_name_the_line_of_defs_yaml(project: Project) -> None:
    folder = project.root / "defs"
    folder.mkdir()
    (folder / "defs.yaml").write_text(
        "type: playbook_assets.PlaybookCollectionComponent\n"
        "attributes:\n"
        "  settings:\n"
        "    execution:\n"
        "      max_paralel_steps: 4\n",
        encoding="utf-8",
    )
    component = PlaybookCollectionComponent(settings={"execution": {"max_paralel_steps": 4}})
    with pytest.raises(ConfigError) as raised:
        component.build_collection(folder)
    message = str(raised.value)
    assert message.startswith(f"{folder / 'defs.yaml'}:5: ")
    assert "unknown key 'max_paralel_steps'" in message
    assert "did you mean 'max_parallel_steps'?" in message


def test_a_glob_that_matches_no_playbook_is_an_error(tmp_path: Path) -> None:
    component = PlaybookCollectionComponent(playbooks=["playbok/*.yaml"])
    with pytest.raises(ConfigError, match=r"no file matches playbooks pattern 'playbok/\*\.yaml'"):
        component.build_collection(tmp_path)
