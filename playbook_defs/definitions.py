"""The code location: every playbook in the catalog as Dagster definitions.

``PLAYBOOK_CONFIG`` picks the config file (default ``./config/playbook-executor.yaml``);
``PLAYBOOK_STRICT=1`` makes one broken playbook fail the whole load (for CI).
"""

import os

from playbook_assets.dagster_adapter.code_location import build_code_location
from playbook_defs import TEMPLATES_DIR

defs = build_code_location(
    [TEMPLATES_DIR],
    config_path=os.environ.get("PLAYBOOK_CONFIG") or None,
    strict=os.environ.get("PLAYBOOK_STRICT", "") not in {"", "0", "false"},
)
