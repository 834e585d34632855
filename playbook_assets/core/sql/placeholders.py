"""``{{name}}`` placeholders: finding them in a template, with line and column for errors."""

from __future__ import annotations

import re
from dataclasses import dataclass

from playbook_assets.core.sql.dialects import SqlTemplateError

_PLACEHOLDER_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Placeholder:
    """One ``{{name}}`` in a template and where it stands (``start``/``end`` offsets)."""

    name: str
    start: int
    end: int


def _line_col(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {col}"


def scan(template: str) -> list[Placeholder]:
    """Every placeholder of a template in order; SqlTemplateError for a malformed or
    unclosed one."""
    found: list[Placeholder] = []
    position = 0
    for match in _PLACEHOLDER_RE.finditer(template):
        stray = template.find("{{", position, match.start())
        if stray != -1:
            raise _unbalanced(template, stray)
        name = match.group(1).strip()
        if not _NAME_RE.fullmatch(name):
            shown = match.group(0) if len(match.group(0)) <= 60 else match.group(0)[:57] + "..."
            raise SqlTemplateError(
                f"malformed placeholder {shown} at {_line_col(template, match.start())} of the "
                "SQL template",
                hint="a placeholder is {{name}} where name is letters, digits and underscores "
                "and does not start with a digit",
            )
        found.append(Placeholder(name, match.start(), match.end()))
        position = match.end()
    stray = template.find("{{", position)
    if stray != -1:
        raise _unbalanced(template, stray)
    return found


def _unbalanced(template: str, offset: int) -> SqlTemplateError:
    return SqlTemplateError(
        f"unbalanced '{{{{' at {_line_col(template, offset)} of the SQL template",
        hint="close the placeholder with '}}', as in {{name}}",
    )


def placeholders(template: str) -> list[str]:
    """The distinct ``{{ name }}`` placeholder names of a template, in order of first use.

    Whitespace inside the braces is allowed. A malformed placeholder (``{{ }}``, ``{{a-b}}``,
    an unclosed ``{{``) raises SqlTemplateError with its line and column. A lone ``}}`` is
    ordinary SQL text (DuckDB struct literals end with it).
    """
    return list(dict.fromkeys(p.name for p in scan(template)))


_IN_BEFORE_RE = re.compile(r"\bIN\s*\(\s*\Z", re.IGNORECASE)
_IN_AFTER_RE = re.compile(r"\A\s*\)")


def in_list(placeholder: Placeholder, template: str) -> bool:
    """Whether the placeholder is written as ``IN ({{name}})``."""
    return bool(
        _IN_BEFORE_RE.search(template, 0, placeholder.start)
        and _IN_AFTER_RE.match(template[placeholder.end :])
    )
