"""Hostile or broken playbook files: each fails with its own error, bounded in stack, memory
and time, and never takes the other playbooks down (command line and code location)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playbook_assets.app.cli import main
from playbook_assets.core.catalog import load_catalog
from playbook_assets.core.config import load_config_file
from playbook_assets.core.errors import PlaybookValidationError
from playbook_assets.core.yaml_source import YamlLimits, load_yaml
from playbook_assets.dagster_adapter.code_location import build_code_location
from tests.conftest import Project

GOOD = """
playbook:
  id: good
  name: Good
  steps:
    - id: accounts
      type: query
      config:
        template: "SELECT account_id FROM analytics.accounts LIMIT 5"
"""


def deep_playbook(depth: int) -> str:
    """A playbook whose description is ``depth`` nested lists (about 2 bytes a level)."""
    return f"playbook:\n  id: deep\n  name: Deep\n  description: {'[' * depth}{']' * depth}\n"


def alias_bomb(levels: int, fanout: int) -> str:
    """The "billion laughs": each level is a list of ``fanout`` aliases of the level before."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * fanout)}]"]
    for level in range(1, levels):
        items = ", ".join([f"*l{level - 1}"] * fanout)
        lines.append(f"l{level}: &l{level} [{items}]")
    return "playbook:\n  id: bomb\n  name: Bomb\n  x:\n" + "".join(f"    {x}\n" for x in lines)


def alias_expansion(levels: int, fanout: int) -> int:
    """Nodes the aliases of ``alias_bomb`` add once expanded: the lists' expanded sizes minus
    the nodes written in the file (each level's list node, plus level 0's scalars)."""
    size = 1 + fanout  # level 0: the list and its scalars
    expanded = size
    for _ in range(1, levels):
        size = 1 + fanout * size
        expanded += size
    written = (1 + fanout) + (levels - 1)
    return expanded - written


def broken_ids(project: Project) -> dict[str, str]:
    config = load_config_file(project.config_path)
    catalog = load_catalog(config, [])
    assert sorted(catalog.playbooks) == ["good"]
    return {broken.display_path: str(broken.error) for broken in catalog.broken}


def test_deep_nesting_is_refused_with_the_limit_and_the_others_load(project: Project) -> None:
    project.add_playbook("good.yaml", GOOD)
    text = deep_playbook(10_000)
    assert len(text) > 20_000
    project.add_playbook("deep.yaml", text)
    errors = broken_ids(project)
    assert errors == {
        "config/playbooks/deep.yaml": "config/playbooks/deep.yaml:4: the document nests deeper "
        "than 64 levels (limits.max_depth); if the file is meant to be this way, raise "
        "limits.max_depth under playbook_executor: in playbook-executor.yaml"
    }


def test_deep_nesting_keeps_the_code_location_and_the_command_line_up(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook("good.yaml", GOOD)
    project.add_playbook("deep.yaml", deep_playbook(10_000))
    defs = build_code_location([], config_path=str(project.config_path))
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"good/accounts", "deep/invalid_playbook"} <= keys
    assert main(["list", "--json", "--config", str(project.config_path)]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert "good" in [row["id"] for row in listing["playbooks"]]
    assert [row["id"] for row in listing["invalid"]] == ["deep"]
    assert "limits.max_depth" in listing["invalid"][0]["error"]


def test_alias_bomb_is_refused_in_bounded_memory(project: Project) -> None:
    """600 bytes that expand to 9**9 (387 million) items: loaded in a child process whose
    address space is capped, so an unbounded expansion fails the test instead of the
    machine."""
    bomb = alias_bomb(levels=9, fanout=9)
    assert len(bomb) < 700
    project.add_playbook("bomb.yaml", bomb)
    project.add_playbook("good.yaml", GOOD)
    script = textwrap.dedent(
        f"""
        import json, resource
        from pathlib import Path
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
        from playbook_assets.core.catalog import load_catalog
        from playbook_assets.core.config import load_config_file
        catalog = load_catalog(load_config_file(Path({str(project.config_path)!r})), [])
        print(json.dumps({{"valid": sorted(catalog.playbooks),
                           "broken": [str(b.error) for b in catalog.broken]}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=project.root,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["valid"] == ["good"]
    (error,) = result["broken"]
    assert error.startswith("config/playbooks/bomb.yaml:")
    assert "aliases (*name) expand to more than 10,000 nodes (limits.max_aliases)" in error


def test_a_huge_file_is_refused_before_it_is_parsed(project: Project) -> None:
    """20 MB with a syntax error at its end: refused for its size, without being parsed (the
    pure-Python parser took two minutes to find the error)."""
    path = project.playbooks_dir / "huge.yaml"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("playbook:\n  id: huge\n  name: Huge\n  description: |\n")
        line = "    " + "x" * 95 + "\n"
        handle.write(line * (20 * 1024 * 1024 // len(line)))
        handle.write("  bad: [unclosed\n")
    size = path.stat().st_size
    assert size > 20_000_000
    project.add_playbook("good.yaml", GOOD)
    errors = broken_ids(project)
    assert errors == {
        "config/playbooks/huge.yaml": f"config/playbooks/huge.yaml: the file is {size:,} bytes, "
        "over the limit of 1,048,576 (limits.max_file_bytes); if the file is meant to be this "
        "way, raise limits.max_file_bytes under playbook_executor: in playbook-executor.yaml"
    }


def test_limits_are_configurable(project: Project) -> None:
    project.config_path.write_text(
        project.config_path.read_text()
        + "  limits:\n    max_depth: 300\n    max_file_bytes: 4096\n    max_aliases: 50\n",
        encoding="utf-8",
    )
    project.add_playbook("good.yaml", GOOD)
    project.add_playbook("deep.yaml", deep_playbook(200))  # under 300 levels: loads its YAML
    project.add_playbook("big.yaml", GOOD.replace("Good", "x" * 5000).replace("good", "big"))
    project.add_playbook("aliases.yaml", alias_bomb(levels=2, fanout=8))  # 64 nodes > 50
    config = load_config_file(project.config_path)
    assert config.limits.max_depth == 300
    catalog = load_catalog(config, [])
    errors = {broken.path.stem: str(broken.error) for broken in catalog.broken}
    assert sorted(errors) == ["aliases", "big", "deep"]
    # The deep file passes the YAML bounds and fails later, on the schema (a list where text
    # is expected): its error is not the depth limit.
    assert "limits.max_depth" not in errors["deep"]
    assert "over the limit of 4,096 (limits.max_file_bytes)" in errors["big"]
    assert "more than 50 nodes (limits.max_aliases)" in errors["aliases"]


def test_an_unknown_limit_gets_a_did_you_mean(project: Project) -> None:
    project.config_path.write_text(
        project.config_path.read_text() + "  limits:\n    max_dept: 10\n", encoding="utf-8"
    )
    with pytest.raises(PlaybookValidationError, match=r"unknown key 'max_dept'.*'max_depth'"):
        load_config_file(project.config_path)


def test_broken_playbooks_with_the_same_id_never_collide(project: Project) -> None:
    project.add_playbook("good.yaml", GOOD)
    broken = "playbook:\n  id: twin\n  name: Twin\n  steps:\n    - id: a\n      type: nope\n"
    project.add_playbook("twin_a.yaml", broken)
    project.add_playbook("twin_b.yaml", broken)
    project.add_playbook("twin_c.yaml", broken.replace("type: nope", "type: filter"))
    # Two more with the id of the valid playbook: a duplicate, and a broken one.
    project.add_playbook("good_again.yaml", GOOD)
    project.add_playbook("good_broken.yaml", GOOD.replace("type: query", "type: nope"))
    defs = build_code_location([], config_path=str(project.config_path))
    invalid = {
        spec.key.to_user_string(): str(spec.metadata["playbook/file"])
        for spec in defs.resolve_all_asset_specs()
        if spec.tags.get("playbook/status") == "invalid"
    }
    assert invalid == {
        "good/invalid_playbook": "config/playbooks/good_again.yaml",
        "good/invalid_playbook_2": "config/playbooks/good_broken.yaml",
        "twin/invalid_playbook": "config/playbooks/twin_a.yaml",
        "twin/invalid_playbook_2": "config/playbooks/twin_b.yaml",
        "twin/invalid_playbook_3": "config/playbooks/twin_c.yaml",
    }
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "good/accounts" in keys


def test_a_fifo_named_like_a_playbook_does_not_hang_the_catalog(project: Project) -> None:
    project.add_playbook("good.yaml", GOOD)
    os.mkfifo(project.playbooks_dir / "pipe.yaml")
    errors = broken_ids(project)
    assert errors == {
        "config/playbooks/pipe.yaml": "config/playbooks/pipe.yaml: not a regular file"
    }


# Generated inputs --------------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    # Control characters and line separators do not survive PyYAML's own dump and load.
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=12),
)
_keys = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=6)
_documents = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=40,
)


def deepest_path(value: Any, length: int) -> int:
    """The longest path of keys and indexes from the document's root to a value, ``value``
    being at a path of ``length``: what ``max_depth`` bounds."""
    children = (
        value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    )
    return max((deepest_path(child, length + 1) for child in children), default=length)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents, st.integers(min_value=1, max_value=6))
def test_generated_documents_load_unchanged_or_fail_on_depth(value: Any, max_depth: int) -> None:
    text = yaml.safe_dump({"root": value}, allow_unicode=True)
    limits = YamlLimits(max_depth=max_depth)
    deepest = deepest_path(value, 1)
    try:
        document = load_yaml(text, "gen.yaml", limits)
    except PlaybookValidationError as e:
        assert "limits.max_depth" in str(e)
        assert deepest > max_depth
        return
    assert document.data == {"root": value}


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=6), st.integers(min_value=1, max_value=6))
def test_generated_alias_chains_fail_exactly_past_the_expansion_limit(
    levels: int, fanout: int
) -> None:
    limits = YamlLimits(max_aliases=500)
    expected = alias_expansion(levels, fanout)
    try:
        document = load_yaml(alias_bomb(levels, fanout), "gen.yaml", limits)
    except PlaybookValidationError as e:
        assert "limits.max_aliases" in str(e)
        assert expected > 500
        return
    assert expected <= 500
    assert document.data["playbook"]["x"]["l0"] == ["lol"] * fanout
    assert len(document.data["playbook"]["x"][f"l{levels - 1}"]) == fanout


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_either_loads_or_fails_with_a_validation_error(text: str) -> None:
    try:
        load_yaml(text, "gen.yaml")
    except PlaybookValidationError as e:
        assert str(e).startswith("gen.yaml")


def test_generated_broken_files_never_hide_the_valid_playbook(
    project: Project,
) -> None:
    """Many kinds of broken file at once, some with the same ids: the valid playbook loads and
    every broken one gets an asset of its own."""
    project.add_playbook("good.yaml", GOOD)
    samples = [
        deep_playbook(500),
        alias_bomb(7, 7),
        "playbook: [unclosed\n",
        "\t\x00 binary",
        "playbook:\n  id: same\n  steps: 3\n",
        "playbook:\n  id: same\n  name: x\n  x: 1\n",
        "playbook:\n  id: 'not an id'\n  name: x\n",
        "- just\n- a list\n",
        "",
    ]
    for index, text in enumerate(samples):
        (project.playbooks_dir / f"broken_{index}.yaml").write_text(text, encoding="utf-8")
    defs = build_code_location([], config_path=str(project.config_path))
    specs = [
        spec
        for spec in defs.resolve_all_asset_specs()
        if spec.tags.get("playbook/status") == "invalid"
    ]
    assert len(specs) == len(samples)
    assert len({spec.key for spec in specs}) == len(samples)
    assert dg.AssetKey(["good", "accounts"]) in {s.key for s in defs.resolve_all_asset_specs()}
