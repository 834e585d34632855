"""Building the code location's definitions from a config file and playbook folders."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from playbook_assets.core.catalog import PlaybookCatalog, load_catalog
from playbook_assets.core.config import ExecutorConfig, load_config
from playbook_assets.core.errors import PlaybookValidationError
from playbook_assets.dagster_adapter.factory import build_definitions
from playbook_assets.dagster_adapter.run_worker import (
    LaunchedRun,
    launched_run,
    run_worker_playbooks,
)
from playbook_assets.dagster_adapter.translator import PlaybookTranslator

logger = logging.getLogger(__name__)


def build_code_location(
    template_dirs: Sequence[Path],
    *,
    config_path: str | None = None,
    strict: bool = False,
) -> dg.Definitions:
    """Definitions for every valid playbook; broken ones are logged and shown as assets.

    With ``strict``, any broken playbook makes loading fail instead (for CI).
    """
    config = load_config(config_path)
    catalog = load_catalog(config, template_dirs, use_cache=True)
    return catalog_definitions(catalog, config, strict=strict, launched=launched_run())


def catalog_definitions(
    catalog: PlaybookCatalog,
    config: ExecutorConfig,
    *,
    strict: bool,
    translator: PlaybookTranslator | None = None,
    launched: LaunchedRun | None = None,
) -> dg.Definitions:
    """The definitions of a loaded catalog: broken playbooks are logged and shown as assets,
    or, with ``strict``, make loading fail with every error (file and line). For the run a
    process was ``launched`` to execute (``run_worker.launched_run``), only the playbooks that
    run selected."""
    if catalog.broken:
        if strict:
            errors = "\n".join(f"  {broken.error}" for broken in catalog.broken)
            raise PlaybookValidationError(
                f"{len(catalog.broken)} playbook(s) failed to load (strict mode):\n{errors}"
            )
        for broken in catalog.broken:
            logger.error("playbook not loaded: %s", broken.error)
    translator = translator or PlaybookTranslator()
    only = run_worker_playbooks(launched, sorted(catalog.playbooks), translator.key_prefix)
    return build_definitions(catalog, config, only=only, translator=translator)
