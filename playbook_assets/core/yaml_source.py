"""Loading YAML while keeping the line of every key, so errors can say file:line."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from playbook_assets.core.errors import PlaybookValidationError, SourceLocation

PathKey = tuple[str | int, ...]

# Past this size the pure-Python parser, used only to word a syntax error better, would take
# seconds (about 6 s a MiB); libyaml's message is used instead.
_DIAGNOSE_MAX_BYTES = 256 * 1024
_RAISE_HINT = (
    "if the file is meant to be this way, raise limits.{name} under playbook_executor: in "
    "playbook-executor.yaml"
)


@dataclass(frozen=True)
class YamlLimits:
    """Bounds on one YAML file (``limits:`` in the configuration)."""

    max_file_bytes: int = 1024 * 1024
    max_depth: int = 64
    max_aliases: int = 10_000


DEFAULT_LIMITS = YamlLimits()


class YamlLimitError(PlaybookValidationError):
    """A file breaks one of the ``YamlLimits``; the message names the limit, not the text."""


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


def load_yaml(text: str, path: str, limits: YamlLimits = DEFAULT_LIMITS) -> YamlDocument:
    """Parse YAML with the safe loader; duplicate keys and syntax errors name file:line.

    ``limits`` bound the text's size, its nesting depth and what its aliases expand to, so a
    hostile or broken file fails with its own error instead of exhausting the stack, the
    memory or the time of everything that loads it.
    """
    size = len(text.encode("utf-8"))
    if size > limits.max_file_bytes:
        raise _file_too_large(path, size, limits.max_file_bytes)
    loader = PlaybookYamlLoader(text)
    try:
        # One parse: the node tree gives the lines, then the data is built from it.
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(path=path, data=None)
        lines = _collect_lines(node, path, limits)
        data = loader.construct_document(node)
    except yaml.YAMLError as fast_error:
        e = (_diagnose(text) if size <= _DIAGNOSE_MAX_BYTES else None) or fast_error
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


def load_yaml_file(
    path: Path, display_path: str | None = None, limits: YamlLimits = DEFAULT_LIMITS
) -> YamlDocument:
    """Read and parse a YAML file; a missing, unreadable or oversized file is a validation
    error (the size is checked before the file is read)."""
    shown = display_path or str(path)
    raw = read_bounded(path, shown, limits.max_file_bytes)
    return load_yaml(decoded_text(raw, shown), shown, limits)


def decoded_text(raw: bytes, shown: str) -> str:
    """A YAML file's bytes as text; bytes that are not UTF-8 are a validation error naming
    the file."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PlaybookValidationError(
            "the file is not UTF-8 text", location=SourceLocation(shown)
        ) from e


def read_bounded(path: Path, shown: str, max_bytes: int) -> bytes:
    """A regular file's bytes, refusing one larger than ``max_bytes`` without reading it all
    (a FIFO or device named like a playbook is refused rather than read for ever)."""
    try:
        # Non-blocking, so that opening a FIFO does not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PlaybookValidationError("not a regular file", location=SourceLocation(shown))
            raw = handle.read(max_bytes + 1)
    except OSError as e:
        raise PlaybookValidationError(
            f"cannot read file: {e.strerror}", location=SourceLocation(shown)
        ) from e
    if len(raw) > max_bytes:
        raise _file_too_large(shown, os.stat(path).st_size, max_bytes)
    return raw


def _file_too_large(shown: str, size: int, limit: int) -> YamlLimitError:
    return YamlLimitError(
        f"the file is {size:,} bytes, over the limit of {limit:,} (limits.max_file_bytes)",
        location=SourceLocation(shown),
        hint=_RAISE_HINT.format(name="max_file_bytes"),
    )


def _collect_lines(root: yaml.Node, file: str, limits: YamlLimits) -> dict[PathKey, int]:
    """The line of every key and item, with duplicate and non-scalar keys rejected, nesting
    and alias expansion bounded.

    Iterative, so depth costs no stack. An alias is the very node it names, met again: each
    meeting adds that node's subtree once more, which is what a reader of the data (and the
    line table) walks, so the nodes met again are counted against ``max_aliases``.
    """
    lines: dict[PathKey, int] = {}
    seen: set[int] = set()
    expanded = 0
    stack: list[tuple[yaml.Node, PathKey]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if len(path) > limits.max_depth:
            raise YamlLimitError(
                f"the document nests deeper than {limits.max_depth} levels (limits.max_depth)",
                location=SourceLocation(file, node.start_mark.line + 1),
                hint=_RAISE_HINT.format(name="max_depth"),
            )
        if id(node) in seen:
            expanded += 1
            if expanded > limits.max_aliases:
                raise YamlLimitError(
                    f"aliases (*name) expand to more than {limits.max_aliases:,} nodes "
                    "(limits.max_aliases)",
                    location=SourceLocation(file, node.start_mark.line + 1),
                    hint=_RAISE_HINT.format(name="max_aliases"),
                )
        else:
            seen.add(id(node))
        lines.setdefault(path, node.start_mark.line + 1)
        children: list[tuple[yaml.Node, PathKey]] = []
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    raise PlaybookValidationError(
                        "a mapping key must be a plain name, not a list or mapping",
                        location=SourceLocation(file, line),
                    )
                key = key_node.value
                if key in first_line:
                    raise PlaybookValidationError(
                        f"duplicate key '{key}' (first defined on line {first_line[key]})",
                        location=SourceLocation(file, line),
                        hint="remove one of them",
                    )
                first_line[key] = line
                lines[(*path, key)] = line
                children.append((value_node, (*path, key)))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines[(*path, index)] = item.start_mark.line + 1
                children.append((item, (*path, index)))
        stack.extend(reversed(children))
    return lines
