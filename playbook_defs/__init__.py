"""The code location: the built-in playbook templates and ``definitions.defs``."""

from pathlib import Path

TEMPLATES_DIR = Path(__file__).parent / "templates"
