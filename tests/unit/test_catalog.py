"""Playbook validation: every error names file:line, the step and field, and a fix."""

from __future__ import annotations

import textwrap

import pytest

from playbook_assets.core.catalog import load_catalog, load_playbook_file, playbook_files
from playbook_assets.core.config import load_config_file
from playbook_assets.core.errors import PlaybookNotFoundError, PlaybookValidationError
from playbook_assets.core.graph import step_dependencies
from playbook_defs import TEMPLATES_DIR
from tests.conftest import Project

GOOD = """
playbook:
  id: good
  name: Good
  parameters:
    - name: min_arr
      type: number
      default: 1000
  steps:
    - id: accounts
      type: query
      config:
        template: "SELECT * FROM analytics.accounts WHERE arr >= {{min_arr}}"
        parameters:
          min_arr: "${parameters.min_arr}"
    - id: big
      type: filter
      config:
        input: "${steps.accounts}"
        condition: "arr > 5000"
  outputs:
    - name: result
      source: "${steps.big}"
"""


def load(project: Project, text: str, name: str = "x.yaml"):
    path = project.add_playbook(name, text)
    return load_playbook_file(path, load_config_file(project.config_path))


def error_of(project: Project, text: str) -> str:
    with pytest.raises(PlaybookValidationError) as info:
        load(project, text)
    return str(info.value)


def test_valid_playbook_loads_with_dependencies(project: Project) -> None:
    loaded = load(project, GOOD)
    assert loaded.spec.step_ids == ["accounts", "big"]
    assert step_dependencies(loaded.spec) == {"accounts": [], "big": ["accounts"]}
    assert loaded.step_location("big").line == 15
    assert len(loaded.sha256) == 64


def test_unknown_key_names_line_and_suggests(project: Project) -> None:
    text = GOOD.replace("        condition:", "        conditon:")
    message = error_of(project, text)
    assert message.startswith("config/playbooks/x.yaml:19: step 'big'")
    assert "unknown key 'conditon'" in message
    assert "did you mean 'condition'?" in message


def test_unknown_step_reference_suggests_closest(project: Project) -> None:
    text = GOOD.replace("${steps.accounts}", "${steps.acounts}")
    message = error_of(project, text)
    assert message == (
        "config/playbooks/x.yaml:18: step 'big': unknown step 'acounts' in ${steps.acounts}; "
        "did you mean 'accounts'?"
    )


def test_unknown_parameter_reference_suggests(project: Project) -> None:
    text = GOOD.replace("${parameters.min_arr}", "${parameters.min_ar}")
    message = error_of(project, text)
    assert "x.yaml:14: step 'accounts'" in message
    assert "unknown parameter 'min_ar'" in message
    assert "did you mean 'min_arr'?" in message


def test_cycle_is_named(project: Project) -> None:
    text = """
    playbook:
      id: cyclic
      name: Cyclic
      steps:
        - id: a
          type: filter
          config: {input: "${steps.b}", condition: "x > 1"}
        - id: b
          type: filter
          config: {input: "${steps.a}", condition: "x > 1"}
    """
    message = error_of(project, textwrap.dedent(text))
    assert "dependency cycle: a -> b -> a" in message or "dependency cycle: b -> a -> b" in message


def test_cycle_through_depends_on(project: Project) -> None:
    text = """
    playbook:
      id: cyclic
      name: Cyclic
      steps:
        - id: a
          type: query
          depends_on: [c]
          config: {template: "SELECT 1 AS x"}
        - id: b
          type: filter
          config: {input: "${steps.a}", condition: "x > 1"}
        - id: c
          type: filter
          config: {input: "${steps.b}", condition: "x > 1"}
    """
    message = error_of(project, textwrap.dedent(text))
    assert "dependency cycle:" in message
    cycle = message.split("dependency cycle: ")[1].split(";")[0].split(" -> ")
    assert set(cycle) == {"a", "b", "c"} and cycle[0] == cycle[-1]


def test_bad_expression_is_rejected_at_validation(project: Project) -> None:
    text = GOOD.replace('"arr > 5000"', "\"arr > (SELECT MAX(arr) FROM read_csv('x'))\"")
    message = error_of(project, text)
    assert "x.yaml:19: step 'big': field 'config.condition'" in message


def test_bad_parameter_default(project: Project) -> None:
    text = GOOD.replace("default: 1000", "default: lots")
    message = error_of(project, text)
    assert "x.yaml:7:" in message
    assert "parameter 'min_arr' expects a number" in message


@pytest.mark.parametrize(
    ("parameter", "hint"),
    [
        ("{name: zip, type: string, default: 00123}", 'quote it in the YAML, e.g. "123"'),
        ("{name: n, type: number, default: '50000'}", "for example n=50000"),
        ("{name: n, type: integer, default: 2.5}", "for example n=100"),
        ("{name: b, type: boolean, default: 'yes'}", "for example b=true"),
        ("{name: a, type: array, default: 'a,b'}", "for example a="),
        ("{name: a, type: array, items: integer, default: [1, x]}", "for example a="),
    ],
)
def test_a_default_that_does_not_have_its_declared_type_is_refused(
    project: Project, parameter: str, hint: str
) -> None:
    text = GOOD.replace(
        "    - name: min_arr\n      type: number\n      default: 1000\n",
        f"    - name: min_arr\n      type: number\n      default: 1000\n    - {parameter}\n",
    )
    message = error_of(project, text)
    assert "x.yaml:8:" in message and "expects" in message
    assert hint in message


def test_unknown_step_type(project: Project) -> None:
    text = GOOD.replace("type: filter", "type: filtre")
    message = error_of(project, text)
    assert "x.yaml:16: step 'big': field 'type': unknown step type 'filtre'" in message
    assert "did you mean 'filter'?" in message


def test_placeholder_without_value(project: Project) -> None:
    text = GOOD.replace("arr >= {{min_arr}}", "arr >= {{min_ar}} AND arr >= {{min_arr}}")
    text = text.replace("parameters:\n    - name", "parameters:\n    - name", 1)
    message = error_of(project, text)
    assert "placeholder '{{min_ar}}' has no value" in message
    assert "did you mean 'min_arr'?" in message


def test_unused_sql_parameter(project: Project) -> None:
    text = GOOD.replace(
        'min_arr: "${parameters.min_arr}"', 'min_arr: "${parameters.min_arr}"\n          lmit: 10'
    )
    message = error_of(project, text)
    assert "x.yaml:15: step 'accounts': field 'config.parameters.lmit'" in message
    assert "not used by the template" in message


def test_duplicate_yaml_key(project: Project) -> None:
    text = GOOD.replace("  name: Good\n", "  name: Good\n  name: Again\n")
    message = error_of(project, text)
    assert message.startswith("config/playbooks/x.yaml:4: duplicate key 'name'")


def test_yaml_syntax_error_has_line(project: Project) -> None:
    message = error_of(project, "playbook:\n  id: x\n  steps: [\n")
    assert message.startswith("config/playbooks/x.yaml:4: invalid YAML")


def test_search_filter_value_shape(project: Project) -> None:
    text = """
    playbook:
      id: s
      name: S
      steps:
        - id: deals
          type: search
          config:
            object: deals
            filters:
              - {property: dealstage, operator: IN, value: closedwon}
    """
    message = error_of(project, textwrap.dedent(text))
    assert "x.yaml:10: step 'deals': field 'config.filters'" in message
    assert "operator IN needs 'values'" in message


def test_wrong_connection_category(project: Project) -> None:
    text = GOOD.replace("      type: query\n", "      type: query\n      connection: demo\n")
    message = error_of(project, text)
    assert "step 'accounts': field 'connection': connection 'demo' is a crm" in message


def test_unknown_connection_suggests(project: Project) -> None:
    text = GOOD.replace("      type: query\n", "      type: query\n      connection: duckbd\n")
    message = error_of(project, text)
    assert "unknown connection 'duckbd'; did you mean 'duckdb'?" in message


def test_output_name_clash_with_step(project: Project) -> None:
    text = GOOD.replace("    - name: result\n", "    - name: big\n")
    assert "output name 'big' is already used" in error_of(project, text)


def test_unknown_column_when_columns_are_known(project: Project) -> None:
    text = """
    playbook:
      id: s
      name: S
      steps:
        - id: deals
          type: search
          config: {object: deals, properties: [dealname, amount]}
        - id: big
          type: filter
          config: {input: "${steps.deals}", condition: "amuont > 10"}
    """
    message = error_of(project, textwrap.dedent(text))
    assert "step 'big': field 'config.condition'" in message
    assert "'amuont'" in message and "did you mean 'amount'?" in message


def test_broken_playbook_does_not_hide_others(project: Project) -> None:
    project.add_playbook("good.yaml", GOOD)
    project.add_playbook(
        "broken.yaml", GOOD.replace("id: good", "id: broken").replace("acc", "x", 1)
    )
    project.add_playbook("garbage.yaml", "playbook: [1, 2\n")
    catalog = load_catalog(load_config_file(project.config_path), [TEMPLATES_DIR])
    assert "good" in catalog.playbooks
    assert "presales_analysis" in catalog.playbooks
    broken = {b.playbook_id: str(b.error) for b in catalog.broken}
    assert set(broken) == {"broken", "garbage"}
    assert "config/playbooks/garbage.yaml:2: invalid YAML" in broken["garbage"]
    with pytest.raises(PlaybookValidationError, match="unknown step"):
        catalog.get("broken")


def test_custom_playbook_replaces_builtin(project: Project) -> None:
    project.add_playbook("mine.yaml", GOOD.replace("id: good", "id: churn_risk"))
    catalog = load_catalog(load_config_file(project.config_path), [TEMPLATES_DIR])
    assert catalog.get("churn_risk").origin == "custom"
    assert catalog.get("churn_risk").spec.name == "Good"
    assert catalog.replaced["churn_risk"] == TEMPLATES_DIR / "churn_risk.yaml"


def test_unknown_playbook_lists_valid_ids(project: Project) -> None:
    catalog = load_catalog(load_config_file(project.config_path), [TEMPLATES_DIR])
    with pytest.raises(PlaybookNotFoundError) as info:
        catalog.get("presales_analysys")
    message = str(info.value)
    assert "unknown playbook 'presales_analysys'; did you mean 'presales_analysis'?" in message
    assert "valid ids: at_risk_renewals, churn_risk, expansion_candidates" in message


def test_builtin_templates_match_the_product_list(project: Project) -> None:
    catalog = load_catalog(load_config_file(project.config_path), [TEMPLATES_DIR])
    shape = {
        pid: (len(p.spec.steps), sorted(s.type for s in p.spec.data_sources))
        for pid, p in catalog.playbooks.items()
    }
    assert shape == {
        "presales_analysis": (3, ["crm", "data_warehouse"]),
        "at_risk_renewals": (3, ["crm", "data_warehouse"]),
        "expansion_candidates": (2, ["data_warehouse"]),
        "churn_risk": (2, ["crm", "data_warehouse"]),
        "health_dashboard": (4, ["data_warehouse"]),
        "segment_analysis": (3, ["crm", "data_warehouse"]),
    }
    segment = catalog.get("segment_analysis").spec
    assert [p.name for p in segment.parameters] == ["segment", "min_arr", "health_threshold"]
    assert not catalog.broken


def test_template_files_are_named_after_their_ids() -> None:
    templates = playbook_files([TEMPLATES_DIR])
    for path in templates:
        assert f"id: {path.stem}\n" in path.read_text(encoding="utf-8"), path
    assert len(templates) == 6
