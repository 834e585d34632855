"""Connection settings that hold ``${VAR}`` templates, resolved only inside a run.

A connection's text settings keep ``${VAR}``, ``${VAR:-default}`` or a longer text such as
``Bearer ${TOKEN}`` as written, in the code location and so in Dagster's snapshots, run
records and UI. The resource resolves them from the environment of the process that opens
the connection, on a copy handed to the run, and remembers each value it put in as a secret
to redact (``playbook_assets.core.redaction``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import dagster as dg
from pydantic import PrivateAttr

from playbook_assets.core.config import env_values, has_env_reference, resolve_env
from playbook_assets.core.errors import ConfigError
from playbook_assets.core.redaction import remember_secret


class EnvResolvedResource(dg.ConfigurableResource):
    """A resource whose text settings may be ``${VAR}`` templates, resolved when a run (or
    ``process_config_and_initialize``) opens it."""

    # Why the templates could not be resolved (a variable is not set): the steps that use
    # the connection fail with it, and the run's other steps still run.
    _unresolved: ConfigError | None = PrivateAttr(default=None)

    def create_resource(self, context: dg.InitResourceContext) -> Any:
        """The object a run uses: this resource with its templates resolved."""
        try:
            return self.with_env_resolved()
        except ConfigError as e:
            unresolved = self.model_copy()
            unresolved._unresolved = e
            return unresolved

    def with_env_resolved(self, environ: Mapping[str, str] | None = None) -> Self:
        """A copy with every ``${VAR}`` template resolved from the environment."""
        updates: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if not has_env_reference(value):
                continue
            for secret in env_values(value, environ):
                remember_secret(secret)
            try:
                updates[name] = resolve_env(value, environ)
            except ConfigError as e:
                raise ConfigError(f"setting '{name}': {e.message}", hint=e.hint) from None
        return self.model_copy(update=updates) if updates else self

    def raise_if_unresolved(self, connection: str) -> None:
        """Raise, naming the connection, when a template of this resource could not be
        resolved in the run."""
        if self._unresolved is not None:
            error = self._unresolved
            raise ConfigError(f"connection '{connection}', {error.message}", hint=error.hint)
