"""Loading YAML while keeping the line of every key, so errors can say file:line."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from playbook_assets.errors import PlaybookValidationError, SourceLocation

PathKey = tuple[str | int, ...]


_YAML11_ONLY = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}


def _yaml12_scalars(loader: type[yaml.SafeLoader]) -> None:
    """Booleans, integers and floats as YAML 1.2 reads them, not YAML 1.1: only true/false are
    booleans (``on:``, ``yes`` and ``NO`` stay text), ``00123`` is 123 (not octal 83) and
    ``12:30`` is text (not the sexagesimal 750), ``1e3`` is a float. A value that must stay
    text is quoted; checks by declared type say so."""
    loader.yaml_implicit_resolvers = {
        first: [(tag, regex) for tag, regex in resolvers if tag not in _YAML11_ONLY]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    loader.add_implicit_resolver(
        "tag:yaml.org,2002:int",
        re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
        list("-+0123456789"),
    )
    loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+.0123456789"),
    )
    loader.add_constructor("tag:yaml.org,2002:int", _construct_yaml12_int)


def _construct_yaml12_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """YAML 1.2 integers: a leading zero is a decimal digit (PyYAML would read octal)."""
    text = str(loader.construct_scalar(node))
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if digits.startswith("0x"):
        return sign * int(digits[2:], 16)
    if digits.startswith("0o"):
        return sign * int(digits[2:], 8)
    return sign * int(digits, 10)


# libyaml's parser when PyYAML was built with it: about fifteen times faster on large catalogs.
_FastSafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class PlaybookYamlLoader(_FastSafeLoader):
    """The safe loader with YAML 1.2 scalars: only true/false are booleans, so ``on:`` stays a
    key; no octal or sexagesimal numbers."""


class _DiagnosticYamlLoader(yaml.SafeLoader):
    """The pure-Python parser, whose syntax error messages are more precise than libyaml's."""


_yaml12_scalars(PlaybookYamlLoader)
_yaml12_scalars(_DiagnosticYamlLoader)


@dataclass(frozen=True)
class YamlDocument:
    """Parsed YAML data plus the line of every mapping key and sequence item."""

    path: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def location(self, path: Sequence[str | int] = ()) -> SourceLocation:
        """The location of the deepest known prefix of ``path`` (a pydantic ``loc`` works)."""
        key: PathKey = tuple(path)
        while key and key not in self.lines:
            key = key[:-1]
        return SourceLocation(self.path, self.lines.get(key, 1))

    def matched_path(self, loc: Sequence[Any]) -> list[str | int]:
        """The parts of a pydantic error ``loc`` that exist in the document, skipping the
        tags pydantic adds (e.g. the step type of a union)."""
        node = self.data
        matched: list[str | int] = []
        for part in loc:
            if isinstance(node, dict) and part in node:
                node = node[part]
                matched.append(part)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
                matched.append(part)
        return matched

    def location_of_loc(self, loc: Sequence[Any]) -> SourceLocation:
        """Map a pydantic error ``loc`` onto the document."""
        return self.location(self.matched_path(loc))


def load_yaml(text: str, path: str) -> YamlDocument:
    """Parse YAML with the safe loader; duplicate keys and syntax errors name file:line."""
    loader = PlaybookYamlLoader(text)
    try:
        # One parse: the node tree gives the lines, then the data is built from it.
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(path=path, data=None)
        lines: dict[PathKey, int] = {}
        _collect_lines(node, (), lines, path)
        data = loader.construct_document(node)
    except yaml.YAMLError as fast_error:
        e = _diagnose(text) or fast_error
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e)
        raise PlaybookValidationError(
            f"invalid YAML: {problem}",
            location=SourceLocation(path, line),
            hint="check indentation and quoting",
        ) from fast_error
    finally:
        loader.dispose()
    return YamlDocument(path=path, data=data, lines=lines)


def _diagnose(text: str) -> yaml.YAMLError | None:
    """The pure-Python parser's error for a text libyaml rejected."""
    try:
        yaml.load(text, Loader=_DiagnosticYamlLoader)
    except yaml.YAMLError as e:
        return e
    return None


def load_yaml_file(path: Path, display_path: str | None = None) -> YamlDocument:
    """Read and parse a YAML file; a missing or unreadable file is a validation error."""
    shown = display_path or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PlaybookValidationError(
            f"cannot read file: {e.strerror}", location=SourceLocation(shown)
        ) from e
    return load_yaml(text, shown)


def _collect_lines(node: yaml.Node, path: PathKey, lines: dict[PathKey, int], file: str) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise PlaybookValidationError(
                    "a mapping key must be a plain name, not a list or mapping",
                    location=SourceLocation(file, line),
                )
            key = key_node.value
            if key in seen:
                raise PlaybookValidationError(
                    f"duplicate key '{key}' (first defined on line {seen[key]})",
                    location=SourceLocation(file, line),
                    hint="remove one of them",
                )
            seen[key] = line
            lines[(*path, key)] = line
            _collect_lines(value_node, (*path, key), lines, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _collect_lines(item, (*path, index), lines, file)
