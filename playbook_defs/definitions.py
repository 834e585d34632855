"""The code location: every playbook in the catalog as Dagster definitions, built when Dagster
loads the location (nothing is read when this module is imported).

``PLAYBOOK_CONFIG`` picks the config file (default ``./config/playbook-executor.yaml``);
``PLAYBOOK_STRICT=1`` makes one broken playbook fail the whole load (for CI).
"""

import os

import dagster as dg

from playbook_assets.dagster_adapter.code_location import build_code_location
from playbook_defs import TEMPLATES_DIR


@dg.definitions
def defs() -> dg.Definitions:
    """The built-in templates and the deployment's own playbooks."""
    return build_code_location(
        [TEMPLATES_DIR],
        config_path=os.environ.get("PLAYBOOK_CONFIG") or None,
        strict=os.environ.get("PLAYBOOK_STRICT", "") not in {"", "0", "false"},
    )
