"""What every command of the ``playbook`` command line shares: exit codes, the global
options, loading the config and the catalog, printing JSON."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from playbook_assets.core.catalog import PlaybookCatalog, load_catalog
from playbook_assets.core.config import ExecutorConfig, load_config

EXIT_OK = 0
EXIT_STEP_FAILED = 1
EXIT_INVALID = 2
# The subcommands of a parser, as ``add_subparsers`` returns them.
Commands = Any


def templates_dir() -> Path:
    """The built-in playbook templates shipped with the code location."""
    from playbook_defs import TEMPLATES_DIR

    return TEMPLATES_DIR


def global_options(default: Any) -> argparse.ArgumentParser:
    """The options every command takes, before or after the command's name."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="config file (default: $PLAYBOOK_CONFIG, else ./config/playbook-executor.yaml)",
    )
    return options


def load(args: argparse.Namespace) -> tuple[ExecutorConfig, PlaybookCatalog]:
    config = load_config(args.config)
    return config, load_catalog(config, [templates_dir()])


def print_json(data: Any) -> None:
    from playbook_assets.core.report import json_default

    sys.stdout.write(json.dumps(data, indent=2, default=json_default) + "\n")


def quiet_warnings() -> None:
    """Dagster's beta/preview notices are for library authors, not for command-line users."""
    import dagster as dg

    for category in (dg.BetaWarning, dg.PreviewWarning, dg.SupersessionWarning):
        warnings.filterwarnings("ignore", category=category)
