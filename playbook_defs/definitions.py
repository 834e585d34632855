"""The code location: every playbook in the catalog as Dagster definitions, built when Dagster
loads the location (nothing is read when this module is imported) by the same component a
``dg`` project declares in its ``defs.yaml`` (``PlaybookCollectionComponent``).

``PLAYBOOK_CONFIG`` picks the config file (default ``./config/playbook-executor.yaml``);
``PLAYBOOK_STRICT=1`` makes one broken playbook fail the whole load (for CI).
"""

import os
from pathlib import Path

import dagster as dg

from playbook_assets.core.config import find_config_path
from playbook_assets.dagster_adapter.component import PlaybookCollectionComponent
from playbook_defs import TEMPLATES_DIR


@dg.definitions
def defs() -> dg.Definitions:
    """The built-in templates and the deployment's own playbooks (``playbooks/`` beside the
    config file), which replace a template of the same id."""
    config_path = find_config_path()
    component = PlaybookCollectionComponent(
        templates=[str(TEMPLATES_DIR / "*.yaml")],
        config=str(config_path) if config_path is not None else None,
        strict=os.environ.get("PLAYBOOK_STRICT", "") not in {"", "0", "false"},
    )
    return component.build_collection(Path.cwd())
