"""Loading YAML with line numbers: the line map, duplicate keys, YAML 1.2 booleans, errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from playbook_assets.core.catalog import load_playbook_file
from playbook_assets.core.config import embedded_config
from playbook_assets.core.errors import PlaybookValidationError, SourceLocation
from playbook_assets.core.spec import PlaybookFile
from playbook_assets.core.yaml_source import YamlDocument, load_yaml, load_yaml_file


def _yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


NESTED = _yaml(
    """
    a: 1
    b:
      c: 2
      d: [1, 2]
      e:
        - f: 3
          g: 4
        - 5
    """
)


# --------------------------------------------------------------------------- line map


def test_line_map_of_nested_mappings_and_lists() -> None:
    document = load_yaml(NESTED, "x.yaml")
    assert document.path == "x.yaml"
    assert document.data == {"a": 1, "b": {"c": 2, "d": [1, 2], "e": [{"f": 3, "g": 4}, 5]}}
    assert document.lines == {
        (): 1,
        ("a",): 1,
        ("b",): 2,
        ("b", "c"): 3,
        ("b", "d"): 4,
        ("b", "d", 0): 4,
        ("b", "d", 1): 4,
        ("b", "e"): 5,
        ("b", "e", 0): 6,
        ("b", "e", 0, "f"): 6,
        ("b", "e", 0, "g"): 7,
        ("b", "e", 1): 8,
    }


def test_location_falls_back_to_the_deepest_known_prefix() -> None:
    document = load_yaml(NESTED, "x.yaml")
    assert document.location(("b", "e", 0, "g")) == SourceLocation("x.yaml", 7)
    # A key that is not in the file (a missing field) points at its parent.
    assert document.location(("b", "e", 0, "missing")) == SourceLocation("x.yaml", 6)
    assert document.location(("b", "e", 7)) == SourceLocation("x.yaml", 5)
    assert document.location(("nope", "deeper")) == SourceLocation("x.yaml", 1)
    assert document.location() == SourceLocation("x.yaml", 1)
    assert str(document.location(("b", "c"))) == "x.yaml:3"


def test_empty_document_has_no_data_and_points_at_line_one() -> None:
    document = load_yaml("", "empty.yaml")
    assert document.data is None
    assert document.lines == {}
    assert str(document.location(("anything",))) == "empty.yaml:1"


def test_comments_and_blank_lines_count_in_line_numbers() -> None:
    text = "# header\n\nplaybook:\n  # comment\n\n  id: p\n"
    document = load_yaml(text, "x.yaml")
    assert document.data == {"playbook": {"id": "p"}}
    assert document.lines[("playbook",)] == 3
    assert document.lines[("playbook", "id")] == 6


# --------------------------------------------------------------------------- duplicate keys


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "a: 1\nb: 2\na: 3\n",
            "x.yaml:3: duplicate key 'a' (first defined on line 1); remove one of them",
            id="top-level",
        ),
        pytest.param(
            _yaml(
                """
                playbook:
                  id: p
                  name: P
                  id: q
                """
            ),
            "x.yaml:4: duplicate key 'id' (first defined on line 2); remove one of them",
            id="nested-mapping",
        ),
        pytest.param(
            _yaml(
                """
                steps:
                  - id: a
                    type: query
                  - id: b
                    config:
                      template: select 1
                      parameters: {}
                      template: select 2
                """
            ),
            "x.yaml:8: duplicate key 'template' (first defined on line 6); remove one of them",
            id="mapping-in-list",
        ),
        pytest.param(
            "a: {x: 1, y: 2, x: 3}\n",
            "x.yaml:1: duplicate key 'x' (first defined on line 1); remove one of them",
            id="flow-mapping",
        ),
    ],
)
def test_duplicate_keys_are_rejected_with_both_lines(text: str, message: str) -> None:
    with pytest.raises(PlaybookValidationError) as info:
        load_yaml(text, "x.yaml")
    assert str(info.value) == message
    assert info.value.location == SourceLocation("x.yaml", int(message.split(":")[1]))


def test_same_key_in_sibling_mappings_is_not_a_duplicate() -> None:
    text = _yaml(
        """
        steps:
          - id: a
            type: query
          - id: b
            type: query
        """
    )
    document = load_yaml(text, "x.yaml")
    assert document.data == {"steps": [{"id": "a", "type": "query"}, {"id": "b", "type": "query"}]}
    assert document.lines[("steps", 1, "id")] == 4


def test_a_non_scalar_key_is_a_validation_error_with_its_line() -> None:
    # A sequence used as a mapping key cannot become a Python dict key; the user must get a
    # PlaybookValidationError naming the line, not a bare TypeError from the loader.
    with pytest.raises(PlaybookValidationError) as info:
        load_yaml("? [a, b]\n: 1\n", "x.yaml")
    assert info.value.location == SourceLocation("x.yaml", 1)
    assert str(info.value) == "x.yaml:1: a mapping key must be a plain name, not a list or mapping"


# --------------------------------------------------------------------------- booleans


def test_yaml_11_boolean_words_stay_strings_and_true_false_are_booleans() -> None:
    text = _yaml(
        """
        on: yes
        off: no
        yes: on
        no: off
        y: n
        a: true
        b: False
        c: TRUE
        d: 'true'
        """
    )
    document = load_yaml(text, "x.yaml")
    assert document.data == {
        "on": "yes",
        "off": "no",
        "yes": "on",
        "no": "off",
        "y": "n",
        "a": True,
        "b": False,
        "c": True,
        "d": "true",
    }
    assert all(isinstance(key, str) for key in document.data)
    assert document.lines[("on",)] == 1
    assert document.lines[("no",)] == 4


def test_other_scalars_keep_their_yaml_types() -> None:
    document = load_yaml("i: 3\nf: 1.5\nn: null\ns: '3'\nd: 2026-01-31\n", "x.yaml")
    assert document.data["i"] == 3
    assert document.data["f"] == 1.5
    assert document.data["n"] is None
    assert document.data["s"] == "3"
    assert str(document.data["d"]) == "2026-01-31"


def test_numbers_are_read_as_yaml_1_2_reads_them() -> None:
    # YAML 1.1 (PyYAML's default) reads 00123 as octal 83 and 12:30 as the sexagesimal 750.
    document = load_yaml(
        "zip: 00123\nat: 12:30\nsci: 1e3\nhex: 0x1F\noct: 0o17\nneg: -007\nword: NO\n",
        "x.yaml",
    )
    assert document.data == {
        "zip": 123,
        "at": "12:30",
        "sci": 1000.0,
        "hex": 31,
        "oct": 15,
        "neg": -7,
        "word": "NO",
    }
    assert yaml.safe_load("zip: 00123\nat: 12:30") == {"zip": 83, "at": 750}


def test_loader_does_not_change_pyyaml_safe_loader() -> None:
    assert yaml.safe_load("on: yes") == {True: True}


# --------------------------------------------------------------------------- syntax errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "a: [1, 2\nb: 3\n",
            "x.yaml:2: invalid YAML: expected ',' or ']', but got ':'; "
            "check indentation and quoting",
            id="unclosed-list",
        ),
        pytest.param(
            "a: 1\n  b: 2\n",
            "x.yaml:2: invalid YAML: mapping values are not allowed here; "
            "check indentation and quoting",
            id="bad-indentation",
        ),
    ],
)
def test_syntax_error_names_the_line(text: str, message: str) -> None:
    with pytest.raises(PlaybookValidationError) as info:
        load_yaml(text, "x.yaml")
    assert str(info.value) == message
    assert info.value.__cause__ is not None


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        pytest.param(
            "a: !!python/object/apply:os.system ['true']\n",
            "tag:yaml.org,2002:python/object/apply:os.system",
            id="python-object",
        ),
        pytest.param("a: 1\nb: !Ref a\n", "!Ref", id="custom-tag"),
    ],
)
def test_unknown_tags_are_a_validation_error_with_the_line(text: str, tag: str) -> None:
    # The safe loader refuses these tags; the refusal must reach the user as a validation
    # error with file:line like any other YAML error, not as a bare yaml.ConstructorError.
    line = text.count("\n", 0, text.index("!")) + 1
    with pytest.raises(PlaybookValidationError) as info:
        load_yaml(text, "x.yaml")
    assert str(info.value).startswith(
        f"x.yaml:{line}: invalid YAML: could not determine a constructor for the tag '{tag}'"
    )


# --------------------------------------------------------------------------- files


def test_load_yaml_file_uses_the_display_path(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("a:\n  b: 1\n  b: 2\n", encoding="utf-8")
    with pytest.raises(PlaybookValidationError) as info:
        load_yaml_file(path, display_path="config/playbooks/p.yaml")
    assert str(info.value) == (
        "config/playbooks/p.yaml:3: duplicate key 'b' (first defined on line 2); remove one of them"
    )


def test_load_yaml_file_reads_utf8(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: Über\n", encoding="utf-8")
    document = load_yaml_file(path)
    assert document.path == str(path)
    assert document.data == {"name": "Über"}


def test_missing_file_is_a_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(PlaybookValidationError) as info:
        load_yaml_file(path)
    assert str(info.value) == f"{path}: cannot read file: No such file or directory"
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_bytes_that_are_not_utf8_are_a_validation_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("playbook:\n  name: Caf\u00e9\n".encode("latin-1"))
    with pytest.raises(PlaybookValidationError) as info:
        load_yaml_file(path)
    assert str(info.value) == f"{path}: the file is not UTF-8 text"
    config = embedded_config(tmp_path)
    with pytest.raises(PlaybookValidationError) as info:
        load_playbook_file(path, config, "custom")
    assert str(info.value).endswith(": the file is not UTF-8 text")
    assert "latin1.yaml" in str(info.value)


# --------------------------------------------------------------------------- pydantic locs

PLAYBOOK = _yaml(
    """
    playbook:
      id: p
      name: P
      steps:
        - id: a
          type: filter
          config:
            input: ${steps.b}
            condition: x > 1
        - id: b
          type: query
          config:
            templat: select 1
    """
)


def test_location_of_loc_skips_union_tags() -> None:
    document = load_yaml(PLAYBOOK, "pb.yaml")
    # 'query' is the discriminator tag pydantic inserts; it is not a key of the file.
    loc = ("playbook", "steps", 1, "query", "config", "templat")
    assert document.location_of_loc(loc) == SourceLocation("pb.yaml", 13)
    # A missing field points at the mapping that should hold it.
    missing = ("playbook", "steps", 1, "query", "config", "template")
    assert document.location_of_loc(missing) == SourceLocation("pb.yaml", 12)
    assert document.location_of_loc(("playbook", "steps", 0, "filter", "config", "condition")) == (
        SourceLocation("pb.yaml", 9)
    )
    # An index past the end of a list is skipped like a tag.
    assert document.location_of_loc(("playbook", "steps", 5, "id")) == SourceLocation("pb.yaml", 4)


def test_location_of_loc_with_real_pydantic_errors() -> None:
    document = load_yaml(PLAYBOOK, "pb.yaml")
    with pytest.raises(ValidationError) as info:
        PlaybookFile.model_validate(document.data)
    located = {
        (error["type"], str(document.location_of_loc(error["loc"])))
        for error in info.value.errors()
    }
    assert located == {("missing", "pb.yaml:12"), ("extra_forbidden", "pb.yaml:13")}


def test_location_of_loc_on_a_document_built_by_hand() -> None:
    document = YamlDocument(path="h.yaml", data={"a": [{"b": 1}]}, lines={("a",): 2})
    assert document.location_of_loc(("a", 0, "b")) == SourceLocation("h.yaml", 2)
    assert document.location_of_loc(("z",)) == SourceLocation("h.yaml", 1)
