"""The ``playbook`` command line (``main``)."""

from playbook_assets.app.cli.common import EXIT_INVALID, EXIT_OK, EXIT_STEP_FAILED
from playbook_assets.app.cli.main import main
from playbook_assets.app.cli.run_commands import print_summary

__all__ = ["EXIT_INVALID", "EXIT_OK", "EXIT_STEP_FAILED", "main", "print_summary"]
