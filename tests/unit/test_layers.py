"""The core runs without Dagster: importing any of its modules, and validating playbooks from
the command line, loads no Dagster module (the import contracts check the code; this checks
what a real interpreter loads, lazily imported modules included)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from playbook_defs import TEMPLATES_DIR
from tests.conftest import Project

_LOADED_DAGSTER = """
import json, sys
loaded = sorted(name for name in sys.modules if name == "dagster" or name.startswith("dagster."))
print(json.dumps(loaded[:5]))
"""


def _dagster_modules_after(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code + _LOADED_DAGSTER],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_core_module_imports_without_dagster() -> None:
    code = """
import importlib, pkgutil
import playbook_assets.core as core
for module in pkgutil.walk_packages(core.__path__, "playbook_assets.core."):
    importlib.import_module(module.name)
"""
    assert _dagster_modules_after(code) == []


def test_validating_playbooks_from_the_command_line_loads_no_dagster(project: Project) -> None:
    for template in sorted(Path(TEMPLATES_DIR).glob("*_analysis.yaml"))[:2]:
        project.add_playbook(template.name, template.read_text())
    code = f"""
from playbook_assets.app.cli.main import main
code = main(["--config", {str(project.config_path)!r}, "validate"])
assert code == 0, code
"""
    assert _dagster_modules_after(code) == []
