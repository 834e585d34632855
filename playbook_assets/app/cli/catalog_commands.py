"""``playbook list``, ``show`` and ``validate``: the playbooks, one playbook, checking them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playbook_assets.app.catalog_listing import invalid_rows, playbook_rows
from playbook_assets.app.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    Commands,
    load,
    print_json,
    templates_dir,
)
from playbook_assets.core.catalog import load_catalog, load_playbook_file
from playbook_assets.core.config import load_config
from playbook_assets.core.errors import PlaybookError


def add_commands(commands: Commands, common: argparse.ArgumentParser) -> None:
    """Add this group's commands to the parser."""
    listing = commands.add_parser("list", parents=[common], help="list playbooks")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_cmd_list)

    show = commands.add_parser("show", parents=[common], help="show one playbook")
    show.add_argument("playbook_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=_cmd_show)

    validate = commands.add_parser(
        "validate", parents=[common], help="validate playbooks (all, or the given files)"
    )
    validate.add_argument("paths", nargs="*", metavar="PATH")
    validate.add_argument(
        "--strict", action="store_true", help="also fail on warnings (e.g. a replaced built-in)"
    )
    validate.set_defaults(handler=_cmd_validate)


def _cmd_list(args: argparse.Namespace) -> int:
    _, catalog = load(args)
    rows = playbook_rows(catalog)
    invalid = invalid_rows(catalog)
    if args.json:
        print_json({"playbooks": rows, "invalid": invalid})
        return EXIT_OK
    width = max((len(row["id"]) for row in rows), default=2)
    for row in rows:
        sources = "+".join(_short_source(s) for s in row["data_sources"]) or "-"
        sys.stdout.write(
            f"{row['id']:<{width}}  {row['steps']} steps  {sources:<7}  {row['name']}"
            f"{'  (custom)' if row['origin'] == 'custom' else ''}\n"
        )
    for broken in invalid:
        sys.stdout.write(f"INVALID {broken['file']}: {broken['error']}\n")
    return EXIT_OK


def _short_source(kind: str) -> str:
    return {"data_warehouse": "DW", "crm": "CRM", "api": "API", "file": "FILE"}.get(kind, kind)


def _cmd_show(args: argparse.Namespace) -> int:
    _, catalog = load(args)
    loaded = catalog.get(args.playbook_id)
    spec = loaded.spec
    if args.json:
        print_json(
            {"file": loaded.display_path, "origin": loaded.origin, **spec.model_dump(mode="json")}
        )
        return EXIT_OK
    out = sys.stdout
    out.write(f"{spec.id}: {spec.name} (version {spec.version})\n")
    out.write(f"file: {loaded.display_path} ({loaded.origin})\n")
    if spec.description:
        out.write(f"\n{spec.description.strip()}\n")
    if spec.parameters:
        out.write("\nparameters:\n")
        for parameter in spec.parameters:
            default = "" if parameter.default is None else f" = {parameter.default!r}"
            text = f" - {parameter.description}" if parameter.description else ""
            out.write(f"  {parameter.name} ({parameter.type}){default}{text}\n")
    out.write("\nsteps:\n")
    for step in spec.steps:
        after = f" after {', '.join(step.depends_on)}" if step.depends_on else ""
        out.write(f"  {step.id}: {step.title} [{step.source}/{step.type}]{after}\n")
    if spec.outputs:
        out.write("\noutputs:\n")
        for output in spec.outputs:
            out.write(f"  {output.name} ({output.type}) from {output.source or '(default)'}\n")
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.paths:
        failures = 0
        for raw in args.paths:
            path = Path(raw)
            try:
                loaded = load_playbook_file(path, config)
            except PlaybookError as e:
                failures += 1
                sys.stderr.write(f"error: {e}\n")
                continue
            sys.stdout.write(f"ok {loaded.id} ({loaded.display_path})\n")
        return EXIT_INVALID if failures else EXIT_OK
    catalog = load_catalog(config, [templates_dir()])
    for loaded in sorted(catalog.playbooks.values(), key=lambda p: p.id):
        sys.stdout.write(f"ok {loaded.id} ({loaded.display_path})\n")
    warnings_found = 0
    for playbook_id, builtin in sorted(catalog.replaced.items()):
        warnings_found += 1
        replacement = catalog.playbooks[playbook_id].display_path
        sys.stderr.write(
            f"warning: {replacement}: playbook '{playbook_id}' "
            f"replaces the built-in {builtin.name}\n"
        )
    for broken in catalog.broken:
        sys.stderr.write(f"error: {broken.error}\n")
    if catalog.broken or (args.strict and warnings_found):
        return EXIT_INVALID
    return EXIT_OK
