"""The executor configuration: ``config/playbook-executor.yaml``.

Found by ``--config``, else ``$PLAYBOOK_CONFIG``, else ``./config/playbook-executor.yaml``;
with none of these, the embedded defaults (DuckDB warehouse and demo CRM under ``./data``)
apply. Relative paths are relative to the config file's folder. ``${VAR}`` and
``${VAR:-default}`` are read from the environment. In a connection block they are resolved
only when that connection is used, so a config can name connections whose secrets are not
set on this machine; its text settings (tokens, passwords, DSNs) keep ``${VAR}`` as written
even then and are resolved inside the connection's resource when a run opens it
(``playbook_assets.connections.env_settings``), so no secret reaches Dagster's run records.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from playbook_assets.core.errors import ConfigError, SourceLocation, unknown_name_hint
from playbook_assets.core.yaml_source import (
    DEFAULT_LIMITS,
    YamlDocument,
    YamlLimits,
    load_yaml_file,
)

CONFIG_ENV_VAR = "PLAYBOOK_CONFIG"
DEFAULT_CONFIG_PATH = Path("config") / "playbook-executor.yaml"
ROOT_KEY = "playbook_executor"

ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DefaultsConfig(_ConfigModel):
    """Connections used by steps that name none."""

    data_warehouse: str = Field(default="duckdb", description="Connection for query steps.")
    crm: str = Field(default="demo", description="Connection for search steps.")


class ArtifactsConfig(_ConfigModel):
    """Where run results and reports are stored."""

    enabled: bool = Field(default=True, description="Store results and reports on disk.")
    directory: str = Field(default="artifacts", description="Folder of the artifact store.")
    retention_days: int = Field(default=90, ge=1, description="Days a run's artifacts are kept.")


class ExecutionConfig(_ConfigModel):
    """How steps run."""

    max_parallel_steps: int = Field(
        default=3,
        ge=1,
        description="Independent steps of a playbook run at once (and, with the multiprocess "
        "executor, playbooks of one run).",
    )
    executor: Literal["in_process", "multiprocess"] = Field(
        default="in_process",
        description="in_process: a run's playbooks one after another in the run's process; "
        "multiprocess: up to max_parallel_steps playbooks at once, one process each (seconds "
        "each to start).",
    )
    timeout_seconds: float = Field(default=300, gt=0, description="Time limit of one step.")
    retry_attempts: int = Field(
        default=2, ge=0, description="Retries of a step after a transient failure."
    )


class RequestsConfig(_ConfigModel):
    """A folder where other systems drop run requests (JSON or YAML files)."""

    directory: str | None = Field(
        default=None, description="The folder (relative to this file); none: no request sensor."
    )
    interval_seconds: int = Field(default=15, ge=5, description="How often to look.")


class LimitsConfig(_ConfigModel):
    """Bounds on every YAML file read: playbooks and run requests."""

    max_file_bytes: int = Field(
        default=DEFAULT_LIMITS.max_file_bytes,
        ge=1,
        description="Largest file read, in bytes; a larger one is refused before it is read.",
    )
    max_depth: int = Field(
        default=DEFAULT_LIMITS.max_depth, ge=1, description="Deepest nesting of lists and mappings."
    )
    max_aliases: int = Field(
        default=DEFAULT_LIMITS.max_aliases,
        ge=0,
        description="Most nodes that aliases (*name) may add to a file once expanded.",
    )

    def yaml_limits(self) -> YamlLimits:
        """These bounds for the YAML loader."""
        return YamlLimits(
            max_file_bytes=self.max_file_bytes,
            max_depth=self.max_depth,
            max_aliases=self.max_aliases,
        )


class FilesConfig(_ConfigModel):
    """Which folders playbooks may read files from (besides the playbooks folder)."""

    allowed_directories: list[str] = Field(
        default_factory=list,
        description="Folders (relative to this file) whose files a playbook may read: file "
        "steps, and DuckDB SQL such as read_csv(...). The playbooks folder is always allowed.",
    )


class _ConfigFile(_ConfigModel):
    defaults: DefaultsConfig = Field(default_factory=DefaultsConfig)
    connections: dict[str, dict[str, Any] | None] | None = None
    artifacts: ArtifactsConfig = Field(default_factory=ArtifactsConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    requests: RequestsConfig = Field(default_factory=RequestsConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    files: FilesConfig = Field(default_factory=FilesConfig)


@dataclass(frozen=True)
class ConnectionSettings:
    """One named connection block: its type and raw settings (``${VAR}`` unresolved)."""

    name: str
    type: str
    settings: Mapping[str, Any]
    location: SourceLocation
    setting_locations: Mapping[str, SourceLocation] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecutorConfig:
    """The loaded configuration, with paths resolved against ``base_dir``."""

    path: Path | None
    base_dir: Path
    defaults: DefaultsConfig
    connections: Mapping[str, ConnectionSettings]
    artifacts: ArtifactsConfig
    execution: ExecutionConfig
    requests: RequestsConfig = field(default_factory=RequestsConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    files: FilesConfig = field(default_factory=FilesConfig)

    @property
    def display_path(self) -> str:
        """The config file as shown in messages."""
        return str(self.path) if self.path is not None else "(embedded defaults)"

    @property
    def playbooks_dir(self) -> Path:
        """The deployment's own playbooks: ``playbooks/`` beside the config file."""
        return self.base_dir / "playbooks"

    @property
    def requests_dir(self) -> Path | None:
        """The run request folder, if configured."""
        directory = self.requests.directory
        return self.resolve_path(directory) if directory else None

    @property
    def artifacts_dir(self) -> Path:
        """The artifact store folder."""
        return self.resolve_path(self.artifacts.directory)

    @property
    def allowed_directories(self) -> tuple[Path, ...]:
        """The folders whose files playbooks may read: the playbooks folder, then
        ``files.allowed_directories``."""
        declared = (self.resolve_path(folder) for folder in self.files.allowed_directories)
        return tuple(dict.fromkeys([self.playbooks_dir, *declared]))

    def resolve_path(self, value: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        path = Path(value).expanduser()
        return Path(os.path.normpath(path if path.is_absolute() else self.base_dir / path))


def find_config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file to use: ``--config``, ``$PLAYBOOK_CONFIG``, ``./config/...``, or None.

    An explicitly named file that does not exist is an error; without one, a missing default
    file means the embedded defaults.
    """
    named = explicit if explicit is not None else os.environ.get(CONFIG_ENV_VAR)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            source = "--config" if explicit is not None else f"${CONFIG_ENV_VAR}"
            raise ConfigError(
                f"config file not found: {path}",
                hint=f"check the path given by {source}",
            )
        return path
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def load_config(
    explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> ExecutorConfig:
    """Find and load the executor configuration."""
    path = find_config_path(explicit)
    if path is None:
        return embedded_config(Path.cwd())
    return load_config_file(path, environ=environ)


def embedded_config(base_dir: Path) -> ExecutorConfig:
    """The embedded default: DuckDB and the demo CRM with their files under ``data/``."""
    here = SourceLocation("(embedded defaults)")
    connections = {
        "duckdb": ConnectionSettings(
            "duckdb", "duckdb", {"database": "data/warehouse.duckdb", "demo_data": True}, here
        ),
        "demo": ConnectionSettings("demo", "demo", {"database": "data/demo_crm.duckdb"}, here),
    }
    return ExecutorConfig(
        path=None,
        base_dir=base_dir,
        defaults=DefaultsConfig(),
        connections=connections,
        artifacts=ArtifactsConfig(),
        execution=ExecutionConfig(),
    )


def load_config_file(
    path: Path, environ: Mapping[str, str] | None = None, document: YamlDocument | None = None
) -> ExecutorConfig:
    """Load and validate one config file (or ``document``, its settings parsed elsewhere:
    its relative paths are relative to ``path``'s folder all the same)."""
    env = os.environ if environ is None else environ
    document = document if document is not None else load_yaml_file(path)
    data = document.data
    if not isinstance(data, dict) or ROOT_KEY not in data:
        raise ConfigError(
            f"the config file must have a single root key '{ROOT_KEY}:'",
            location=document.location(),
        )
    extra = [key for key in data if key != ROOT_KEY]
    if extra:
        raise ConfigError(
            f"unknown key '{extra[0]}' at the top level",
            location=document.location((extra[0],)),
            hint=f"everything goes under '{ROOT_KEY}:'",
        )
    body = data[ROOT_KEY] or {}
    if not isinstance(body, dict):
        raise ConfigError(
            f"'{ROOT_KEY}' must be a mapping", location=document.location((ROOT_KEY,))
        )

    # Connections keep ${VAR} unresolved; every other section is resolved now.
    resolved = {
        key: (
            value if key == "connections" else _interpolate(value, env, document, (ROOT_KEY, key))
        )
        for key, value in body.items()
    }
    try:
        parsed = _ConfigFile.model_validate(resolved)
    except ValidationError as e:
        first = e.errors()[0]
        loc = (ROOT_KEY, *first["loc"])
        field_name = ".".join(str(part) for part in first["loc"])
        hint = None
        if first["type"] == "extra_forbidden":
            parent = first["loc"][:-1]
            model = _model_for(parent)
            if model is not None:
                hint = unknown_name_hint(str(first["loc"][-1]), model.model_fields, "key")
            message = f"unknown key '{first['loc'][-1]}'"
        else:
            message = first["msg"]
        raise ConfigError(
            message, location=document.location_of_loc(loc), field=field_name, hint=hint
        ) from e

    base_dir = path.resolve().parent
    if parsed.connections is None:
        # No connections section: the embedded DuckDB and demo CRM, under the config's folder.
        connections = dict(embedded_config(base_dir).connections)
    else:
        connections = {
            name: _connection_settings(name, block, document)
            for name, block in parsed.connections.items()
        }
    config = ExecutorConfig(
        path=path,
        base_dir=base_dir,
        defaults=parsed.defaults,
        connections=connections,
        artifacts=parsed.artifacts,
        execution=parsed.execution,
        requests=parsed.requests,
        limits=parsed.limits,
        files=parsed.files,
    )
    for field_name in ("data_warehouse", "crm"):
        name = getattr(parsed.defaults, field_name)
        if name not in connections:
            raise ConfigError(
                f"defaults.{field_name} names connection '{name}', which is not defined",
                location=document.location((ROOT_KEY, "defaults", field_name)),
                hint=unknown_name_hint(name, connections, "connection"),
            )
    return config


def resolve_env(
    value: Any, environ: Mapping[str, str] | None = None, where: SourceLocation | None = None
) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in strings (recursively)."""
    env = os.environ if environ is None else environ
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(
                f"environment variable {name} is not set",
                location=where,
                hint=f"set {name}, or write ${{{name}:-default}} in the config",
            )

        return ENV_PATTERN.sub(substitute, value)
    if isinstance(value, dict):
        return {key: resolve_env(item, env, where) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve_env(item, env, where) for item in value]
    return value


def has_env_reference(value: Any) -> bool:
    """Whether ``value`` is text with a ``${VAR}`` or ``${VAR:-default}`` in it."""
    return isinstance(value, str) and ENV_PATTERN.search(value) is not None


def env_values(value: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """The environment values ``resolve_env`` puts into ``value`` (defaults excluded)."""
    env = os.environ if environ is None else environ
    names = [match.group(1) for match in ENV_PATTERN.finditer(value)]
    return [env[name] for name in names if name in env]


def _interpolate(
    value: Any, env: Mapping[str, str], document: YamlDocument, path: tuple[str | int, ...]
) -> Any:
    if isinstance(value, dict):
        return {key: _interpolate(item, env, document, (*path, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, env, document, (*path, i)) for i, item in enumerate(value)]
    return resolve_env(value, env, document.location(path))


def _connection_settings(
    name: str, block: Mapping[str, Any] | None, document: YamlDocument
) -> ConnectionSettings:
    path = (ROOT_KEY, "connections", name)
    settings = dict(block or {})
    type_name = settings.pop("type", name)
    if not isinstance(type_name, str):
        raise ConfigError("'type' must be a connection type name", location=document.location(path))
    return ConnectionSettings(
        name=name,
        type=type_name,
        settings=settings,
        location=document.location(path),
        setting_locations={key: document.location((*path, key)) for key in settings},
    )


def _model_for(parent: tuple[Any, ...]) -> type[BaseModel] | None:
    models: dict[tuple[Any, ...], type[BaseModel]] = {
        (): _ConfigFile,
        ("defaults",): DefaultsConfig,
        ("artifacts",): ArtifactsConfig,
        ("execution",): ExecutionConfig,
        ("requests",): RequestsConfig,
        ("limits",): LimitsConfig,
        ("files",): FilesConfig,
    }
    return models.get(tuple(parent))
