"""Fails when a function of the library is above cyclomatic complexity 20 (radon) or a module
above 400 lines, unless scripts/complexity-allowlist.txt lists it at its current size.

The allowlist holds what was over the limits when the check was introduced; it may only
shrink. An entry whose function or module grew past its recorded value fails, a new offender
fails, and so does an entry that no longer matches anything (the function was split, the module
moved): delete that line. ``--list`` prints today's offenders in the allowlist's format.

Usage: .venv/bin/python scripts/complexity.py [--list]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from radon.visitors import Class, ComplexityVisitor, Function

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "playbook_assets"
ALLOWLIST = ROOT / "scripts" / "complexity-allowlist.txt"
MAX_COMPLEXITY = 20
MAX_LINES = 400


@dataclass(frozen=True)
class Measure:
    """One function's complexity (``kind`` "cc") or one module's length (``kind`` "lines")."""

    key: str
    kind: str
    value: int

    @property
    def limit(self) -> int:
        return MAX_COMPLEXITY if self.kind == "cc" else MAX_LINES

    def line(self) -> str:
        """The measure as an allowlist line."""
        return f"{self.key} {self.kind} {self.value}"


def _functions(blocks: Iterable[Function | Class], prefix: str = "") -> Iterator[Function]:
    """Every function, method and closure, with its name qualified by what contains it."""
    for block in blocks:
        if isinstance(block, Class):
            yield from _functions(block.methods, f"{prefix}{block.name}.")
            yield from _functions(block.inner_classes, f"{prefix}{block.name}.")
        else:
            yield block._replace(name=f"{prefix}{block.name}", classname=None)
            yield from _functions(block.closures, f"{prefix}{block.name}.")


def measure(package: Path = PACKAGE) -> list[Measure]:
    """Each module's length and each function's complexity, for every module of ``package``."""
    found: dict[tuple[str, str], int] = {}
    for path in sorted(package.rglob("*.py")):
        module = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        found[(module, "lines")] = len(text.splitlines())
        visitor = ComplexityVisitor.from_code(text)
        for function in _functions([*visitor.functions, *visitor.classes]):
            key = (f"{module}:{function.name}", "cc")
            # Same-named definitions (overloads, a property's setter) count as the largest.
            found[key] = max(found.get(key, 0), function.complexity)
    return [Measure(key, kind, value) for (key, kind), value in found.items()]


def read_allowlist(path: Path = ALLOWLIST) -> dict[tuple[str, str], int]:
    """``{(key, kind): allowed value}``; each line is ``KEY KIND VALUE``, ``#`` starts a comment."""
    allowed: dict[tuple[str, str], int] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = raw.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 3 or fields[1] not in ("cc", "lines") or not fields[2].isdigit():
            raise SystemExit(f"{path.name}:{number}: expected 'KEY cc|lines NUMBER', got {raw!r}")
        allowed[(fields[0], fields[1])] = int(fields[2])
    return allowed


def problems(measures: list[Measure], allowed: dict[tuple[str, str], int]) -> list[str]:
    """What fails the check: new offenders, allowlisted ones that grew, and stale entries."""
    found: list[str] = []
    over = {(m.key, m.kind): m for m in measures if m.value > m.limit}
    what = {"cc": "cyclomatic complexity", "lines": "lines"}
    for (key, kind), entry in sorted(over.items()):
        if (key, kind) not in allowed:
            found.append(
                f"{key}: {what[kind]} {entry.value}, above {entry.limit}; split it "
                "(the allowlist is for what was over the limit before the check, not new code)"
            )
        elif entry.value > allowed[(key, kind)]:
            found.append(
                f"{key}: {what[kind]} {entry.value}, up from {allowed[(key, kind)]} in "
                f"{ALLOWLIST.name}; an allowlisted offender may shrink, not grow"
            )
    for key, kind in sorted(set(allowed) - set(over)):
        found.append(
            f"{ALLOWLIST.name}: '{key} {kind}' is no longer over the limit (or no longer "
            "exists): delete its line"
        )
    return found


def main(argv: list[str] | None = None) -> int:
    """Check the library against the limits and the allowlist; 1 when something fails."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--list", action="store_true", help="print today's offenders and exit")
    args = parser.parse_args(argv)
    measures = measure()
    if args.list:
        for entry in sorted(measures, key=lambda m: (m.kind, m.key)):
            if entry.value > entry.limit:
                sys.stdout.write(entry.line() + "\n")
        return 0
    found = problems(measures, read_allowlist())
    for problem in found:
        sys.stderr.write(problem + "\n")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
