"""The JSON schemas editors read: the shipped files are the ones the models generate, every
template (and its tests file) validates, broken files fail, with the key at fault."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from playbook_assets.app.cli import main
from playbook_assets.core.schema import (
    CONFIG_SCHEMA_FILE,
    PLAYBOOK_SCHEMA_FILE,
    SCHEMAS_DIR,
    TESTS_SCHEMA_FILE,
    config_schema,
    playbook_schema,
    schema_text,
)
from playbook_assets.core.schema import (
    tests_schema as playbook_tests_schema,
)
from playbook_defs import TEMPLATES_DIR

REPOSITORY = Path(__file__).resolve().parents[2]


class EditorLoader(yaml.SafeLoader):
    """YAML as an editor's language server reads it (YAML 1.2 core schema): dates and
    times are text, only true/false are booleans."""


EditorLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regex)
        for tag, regex in resolvers
        if tag not in {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool"}
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
EditorLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def editor_data(text: str) -> Any:
    return yaml.load(text, Loader=EditorLoader)


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors_of(schema: dict[str, Any], text: str) -> list[str]:
    """Every error's message, with those of the alternatives of a oneOf (a step's types)."""
    pending = list(validator(schema).iter_errors(editor_data(text)))
    messages: list[str] = []
    while pending:
        error = pending.pop()
        messages.append(error.message)
        pending.extend(error.context or [])
    return messages


@pytest.mark.parametrize(
    ("name", "generate"),
    [
        (PLAYBOOK_SCHEMA_FILE, playbook_schema),
        (CONFIG_SCHEMA_FILE, config_schema),
        (TESTS_SCHEMA_FILE, playbook_tests_schema),
    ],
)
def test_the_shipped_schemas_are_the_generated_ones(name: str, generate: Any) -> None:
    shipped = (SCHEMAS_DIR / name).read_text(encoding="utf-8")
    assert shipped == schema_text(generate()), (
        f"regenerate it: playbook schema [--config|--tests] --output {SCHEMAS_DIR / name}"
    )


def test_playbook_schema_prints_what_is_shipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == playbook_schema()
    target = tmp_path / "config.schema.json"
    assert main(["schema", "--config", "--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == (SCHEMAS_DIR / CONFIG_SCHEMA_FILE).read_text()


def templates() -> list[Path]:
    return sorted(p for p in TEMPLATES_DIR.glob("*.yaml") if not p.name.endswith(".tests.yaml"))


@pytest.mark.parametrize("path", templates(), ids=lambda p: p.stem)
def test_every_template_validates_and_names_its_schema(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    first = text.splitlines()[0]
    assert (
        first
        == "# yaml-language-server: $schema=../../playbook_assets/schemas/playbook.schema.json"
    )
    # The reference resolves from the template's folder, as the editor resolves it.
    assert (path.parent / first.split("=", 1)[1]).resolve() == SCHEMAS_DIR / PLAYBOOK_SCHEMA_FILE
    assert errors_of(playbook_schema(), text) == []


@pytest.mark.parametrize("path", sorted(TEMPLATES_DIR.glob("*.tests.yaml")), ids=lambda p: p.stem)
def test_every_template_tests_file_validates(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith(
        "# yaml-language-server: $schema=../../playbook_assets/schemas/playbook-tests.schema.json\n"
    )
    assert errors_of(playbook_tests_schema(), text) == []


def test_the_templates_all_have_tests() -> None:
    tested = {p.name.removesuffix(".tests.yaml") for p in TEMPLATES_DIR.glob("*.tests.yaml")}
    assert tested == {p.stem for p in templates()}
    assert len(tested) == 6


MINIMAL = """
playbook:
  id: minimal
  name: Minimal
  steps:
    - id: accounts
      type: query
      config: {template: "SELECT 1 AS n"}
"""


def test_a_minimal_playbook_validates() -> None:
    assert errors_of(playbook_schema(), MINIMAL) == []


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (
            MINIMAL.replace("  name: Minimal\n", "  name: Minimal\n  nmae: typo\n"),
            "'nmae' was unexpected",
        ),
        (MINIMAL.replace("  id: minimal\n", ""), "'id' is a required property"),
        (MINIMAL.replace("type: query", "type: qurey"), "qurey"),
        (MINIMAL.replace('config: {template: "SELECT 1 AS n"}', "config: {sql: x}"), "sql"),
        (MINIMAL.replace("id: accounts", "id: 1accounts"), "does not match"),
        (MINIMAL + "  outputs:\n    - {name: o, type: table}\n", "'table'"),
        (MINIMAL + "  parameters:\n    - {name: p, type: float}\n", "'float'"),
        (
            MINIMAL.replace(
                'config: {template: "SELECT 1 AS n"}',
                "config: {object: deals, filters: [{property: a, operator: LIKE, value: x}]}",
            ).replace("type: query", "type: search"),
            "'LIKE'",
        ),
        ("steps: []\n", "'playbook' is a required property"),
    ],
    ids=[
        "unknown-key",
        "missing-id",
        "unknown-step-type",
        "unknown-config-key",
        "bad-step-id",
        "bad-output-type",
        "bad-parameter-type",
        "bad-operator",
        "no-root",
    ],
)
def test_broken_playbooks_fail_the_schema(broken: str, expected: str) -> None:
    messages = errors_of(playbook_schema(), broken)
    assert messages, broken
    assert any(expected in message for message in messages), messages


def test_the_config_schema_checks_the_config_file() -> None:
    good = (REPOSITORY / "config" / "playbook-executor.yaml").read_text(encoding="utf-8")
    assert errors_of(config_schema(), good) == []
    assert errors_of(config_schema(), "playbook_executor:\n") == []
    typo = "playbook_executor:\n  execution: {max_paralel_steps: 2}\n"
    assert any("max_paralel_steps" in m for m in errors_of(config_schema(), typo))
    wrong = "playbook_executor:\n  artifacts: {retention_days: 0}\n"
    assert any("minimum of 1" in m for m in errors_of(config_schema(), wrong))
    outside = "playbook_executor: {}\nconnections: {}\n"
    assert any("'connections' was unexpected" in m for m in errors_of(config_schema(), outside))


def test_broken_tests_files_fail_the_schema() -> None:
    good = "playbook: p\ntests:\n  - name: t\n    expect: {s: {row_count: 1}}\n"
    assert errors_of(playbook_tests_schema(), good) == []
    assert errors_of(playbook_tests_schema(), good.replace("expect", "expcet"))
    assert errors_of(playbook_tests_schema(), good.replace("row_count: 1", "row_count: -1"))
    assert errors_of(playbook_tests_schema(), good.replace("row_count", "rowcount"))
