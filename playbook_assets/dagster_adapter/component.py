"""Playbooks as a Dagster component: ``PlaybookCollectionComponent`` in a project's
``defs.yaml``, for ``dg list components``, ``dg scaffold defs``, ``dg check defs`` and
``dg list defs``.

It builds exactly what the product's own code location builds (``playbook_defs`` uses it
too): one subsettable multi-asset per playbook, its checks, schedules and sensors. Playbooks
stay in their own files, so Dagster's ``{{ }}`` templating of ``defs.yaml`` never sees their
``{{name}}`` SQL placeholders; only the component's attributes are templated.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Collection, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from playbook_assets.core.catalog import (
    PlaybookCatalog,
    is_playbook_file,
    load_catalog_files,
    playbook_files,
)
from playbook_assets.core.config import (
    ROOT_KEY,
    ExecutorConfig,
    embedded_config,
    load_config_file,
)
from playbook_assets.core.errors import ConfigError, PlaybookError, SourceLocation
from playbook_assets.core.schema import (
    COMPONENT_SCHEMA_FILE,
    CONFIG_SCHEMA_FILE,
    PLAYBOOK_SCHEMA_FILE,
    SCHEMAS_DIR,
    TESTS_SCHEMA_FILE,
    schema_line,
)
from playbook_assets.core.yaml_source import YamlDocument, load_yaml_file
from playbook_assets.dagster_adapter.code_location import catalog_definitions
from playbook_assets.dagster_adapter.run_worker import launched_run, requested_playbooks
from playbook_assets.dagster_adapter.translator import PlaybookTranslator

COMPONENT_TYPE = "playbook_assets.PlaybookCollectionComponent"
# The definitions built for the run this process executes (see ``build_collection``).
_RUN_WORKER_DEFINITIONS: dict[tuple[object, ...], dg.Definitions] = {}
DEFS_FILE = "defs.yaml"
# Where the scaffolded files find their JSON schemas, relative to the component's folder.
SCAFFOLD_SCHEMAS = "schemas"
SCHEMA_FILES = (COMPONENT_SCHEMA_FILE, PLAYBOOK_SCHEMA_FILE, CONFIG_SCHEMA_FILE, TESTS_SCHEMA_FILE)


class PlaybookTranslation(dg.Model, dg.Resolvable):
    """How the playbooks' assets appear in Dagster, over what each playbook declares."""

    key_prefix: list[str] = Field(
        default_factory=list,
        description="Parts put before every asset key (keys end with [playbook_id, name]).",
    )
    group_name: str | None = Field(
        default=None, description="The asset group of every asset (default: the playbook id)."
    )
    owners: list[str] | None = Field(
        default=None,
        description="Owners of every asset, replacing the playbooks' own (emails or 'team:NAME').",
    )
    tags: dict[str, str] = Field(
        default_factory=dict, description="Tags added to every asset, over the playbooks' own."
    )


class PlaybookCollectionScaffolder(dg.Scaffolder):
    """``dg scaffold defs playbook_assets.PlaybookCollectionComponent PATH``: a ``defs.yaml``,
    a ``playbooks/`` folder with an example playbook, and the JSON schemas the editor reads
    (each file starts with its ``yaml-language-server`` line)."""

    def scaffold(self, request: dg.ScaffoldRequest[Any]) -> None:
        folder = request.target_path
        schemas = folder / SCAFFOLD_SCHEMAS
        (folder / "playbooks").mkdir(parents=True, exist_ok=True)
        schemas.mkdir(exist_ok=True)
        for name in SCHEMA_FILES:
            (schemas / name).write_bytes((SCHEMAS_DIR / name).read_bytes())
        (folder / DEFS_FILE).write_text(
            schema_line(f"{SCAFFOLD_SCHEMAS}/{COMPONENT_SCHEMA_FILE}")
            + f"type: {request.type_name}\n"
            "attributes:\n"
            '  playbooks: ["playbooks/*.yaml"]\n'
            "  # config: playbook-executor.yaml  # or settings: the keys under playbook_executor:\n"
            "  # translation: {key_prefix: [playbooks], group_name: playbooks, "
            "owners: ['team:revops'], tags: {domain: sales}}\n",
            encoding="utf-8",
        )
        (folder / "playbooks" / "example.yaml").write_text(
            schema_line(f"../{SCAFFOLD_SCHEMAS}/{PLAYBOOK_SCHEMA_FILE}") + _EXAMPLE_PLAYBOOK,
            encoding="utf-8",
        )


_EXAMPLE_PLAYBOOK = """\
playbook:
  id: example
  name: Example
  description: Accounts of the demo warehouse above an ARR threshold, by segment.
  parameters:
    - {name: min_arr, type: number, default: 50000, description: Smallest ARR counted.}
  steps:
    - id: accounts
      type: query
      config:
        template: |
          SELECT account_id, account_name, segment, arr
          FROM analytics.accounts
          WHERE arr >= {{min_arr}}
    - id: by_segment
      type: aggregate
      config:
        input: "${steps.accounts}"
        group_by: [segment]
        metrics:
          - {name: accounts, expression: COUNT(*)}
          - {name: total_arr, expression: SUM(arr)}
  outputs:
    - {name: segments, source: "${steps.by_segment}", type: data}
"""


@dg.scaffold_with(PlaybookCollectionScaffolder)
class PlaybookCollectionComponent(dg.Component, dg.Model, dg.Resolvable):
    """Business-intelligence playbooks (YAML files) as Dagster assets: one subsettable
    multi-asset per playbook, with its asset checks, schedules and sensors.

    Paths are relative to the folder of the ``defs.yaml``. Override ``get_translator`` in a
    subclass to change how assets look beyond ``translation``.
    """

    playbooks: list[str] | None = Field(
        default=None,
        description="Glob patterns of the playbook files, e.g. ['playbooks/*.yaml'] "
        "(default: the playbooks/ folder beside the config file).",
    )
    templates: list[str] = Field(
        default_factory=list,
        description="Glob patterns of template playbooks, which a playbook of 'playbooks' "
        "with the same id replaces.",
    )
    config: str | None = Field(
        default=None,
        description="The playbook-executor.yaml file (default: the embedded DuckDB warehouse "
        "and demo CRM, their files under data/).",
    )
    settings: dict[str, Any] | None = Field(
        default=None,
        description="The configuration inline instead of 'config': the keys that go under "
        "playbook_executor: in playbook-executor.yaml.",
    )
    translation: PlaybookTranslation | None = Field(
        default=None, description="Asset key prefix, group, owners and tags of every asset."
    )
    strict: bool = Field(
        default=True,
        description="A broken playbook fails the load with its file and line (false: it "
        "shows as an invalid_playbook asset and the others load).",
    )

    @classmethod
    def get_spec(cls) -> dg.ComponentTypeSpec:
        return dg.ComponentTypeSpec(
            description="Business-intelligence playbooks (YAML) as Dagster asset graphs.",
            tags=["playbooks", "duckdb", "crm"],
            produces=["asset", "asset_check", "schedule", "sensor", "job", "resource"],
        )

    def get_translator(self) -> PlaybookTranslator:
        """The translator of the playbooks' assets (from ``translation``)."""
        translation = self.translation or PlaybookTranslation()
        return PlaybookTranslator(
            key_prefix=tuple(translation.key_prefix),
            group_name=translation.group_name,
            owners=translation.owners,
            tags=dict(translation.tags),
        )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return self.build_collection(context.path)

    def build_collection(self, folder: Path) -> dg.Definitions:
        """The definitions of the playbooks, paths relative to ``folder``.

        In a process Dagster started for one run, only the playbooks that run selected, built
        once: Dagster loads the code location there twice (for the plan, then for the run).
        """
        launched = launched_run()
        key = (
            (launched.run.run_id, str(folder), type(self), self.model_dump_json())
            if launched is not None
            else None
        )
        if key is not None and key in _RUN_WORKER_DEFINITIONS:
            return _RUN_WORKER_DEFINITIONS[key]
        config = self.load_config(folder)
        translator = self.get_translator()
        requested = requested_playbooks(launched, translator.key_prefix)
        catalog = self.load_catalog(folder, config, only=requested)
        if requested is not None and not requested <= set(catalog.playbooks):
            catalog = self.load_catalog(folder, config)  # not what the run asked for: all
        defs = catalog_definitions(
            catalog, config, strict=self.strict, translator=translator, launched=launched
        )
        if key is not None:
            _RUN_WORKER_DEFINITIONS.clear()  # one run a process: keep only the latest
            _RUN_WORKER_DEFINITIONS[key] = defs
        return defs

    def load_config(self, folder: Path) -> ExecutorConfig:
        """The configuration: the ``config`` file, the inline ``settings``, or the embedded
        defaults with their files under ``folder``."""
        if self.config is not None and self.settings is not None:
            raise ConfigError(
                "give either 'config' or 'settings', not both",
                location=SourceLocation(str(folder / DEFS_FILE)),
                field="attributes",
            )
        if self.config is not None:
            path = Path(self.config).expanduser()
            path = path if path.is_absolute() else folder / path
            if not path.is_file():
                raise ConfigError(
                    f"config file not found: {path}",
                    location=SourceLocation(str(folder / DEFS_FILE)),
                    field="attributes.config",
                    hint="the path is relative to the folder of defs.yaml",
                )
            return load_config_file(path)
        if self.settings is not None:
            defs_file = folder / DEFS_FILE
            document = _inline_settings(defs_file, self.settings)
            return load_config_file(defs_file, document=document)
        return embedded_config(folder.resolve())

    def load_catalog(
        self, folder: Path, config: ExecutorConfig, only: Collection[str] | None = None
    ) -> PlaybookCatalog:
        """The playbooks the globs name (or the config's playbooks folder's), the templates
        first; the folders they are in may be read by file steps. With ``only``, playbooks
        validated before under other ids are skipped (``load_catalog_files``)."""
        templates = _matching(folder, self.templates, "templates")
        if self.playbooks is None:
            files = playbook_files([config.playbooks_dir])
        else:
            files = _matching(folder, self.playbooks, "playbooks")
        folders = dict.fromkeys(str(path.parent) for path in files)
        allowed = [*config.files.allowed_directories, *folders]
        config = replace(
            config, files=config.files.model_copy(update={"allowed_directories": allowed})
        )
        return load_catalog_files(config, templates, files, use_cache=True, only=only)


def _matching(folder: Path, patterns: list[str], attribute: str) -> list[Path]:
    """The playbook files each glob matches (relative to ``folder``; tests files are left
    out), in order; a glob that matches none is an error: a typo must not load zero
    playbooks silently."""
    found: dict[Path, None] = {}
    for pattern in patterns:
        matches = sorted(glob.glob(os.path.join(folder, os.path.expanduser(pattern))))
        # A FIFO or device named like a playbook is kept: loading it fails, naming it.
        files = [Path(m) for m in matches if is_playbook_file(Path(m)) and not os.path.isdir(m)]
        if not files:
            raise ConfigError(
                f"no file matches {attribute} pattern '{pattern}'",
                location=SourceLocation(str(folder / DEFS_FILE)),
                field=f"attributes.{attribute}",
                hint=f"patterns are relative to {folder}",
            )
        found.update(dict.fromkeys(files))
    return list(found)


def _inline_settings(defs_file: Path, settings: Mapping[str, Any]) -> YamlDocument:
    """The inline settings as a config document whose errors name the lines of
    ``defs.yaml`` (where that file is one YAML document our loader reads)."""
    lines: dict[tuple[str | int, ...], int] = {}
    prefix = ("attributes", "settings")
    try:
        source = load_yaml_file(defs_file)
    except PlaybookError:
        source = None  # several documents in one file: errors name the file only
    if source is not None:
        lines = {
            (ROOT_KEY, *key[len(prefix) :]): line
            for key, line in source.lines.items()
            if key[: len(prefix)] == prefix
        }
    return YamlDocument(path=str(defs_file), data={ROOT_KEY: dict(settings)}, lines=lines)


def component_json_schema() -> dict[str, Any]:
    """The JSON schema of a ``defs.yaml`` that declares this component: its type and its
    attributes (with the configuration's keys under ``settings``)."""
    from playbook_assets.core.schema import config_schema

    model = PlaybookCollectionComponent.get_model_cls()
    assert model is not None
    attributes = model.model_json_schema()
    config = config_schema()
    body = config["properties"][ROOT_KEY]
    definitions = {**attributes.pop("$defs", {}), **config.get("$defs", {})}
    settings = PlaybookCollectionComponent.model_fields["settings"].description
    attributes["properties"]["settings"] = {**body, "description": settings}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "defs.yaml of a PlaybookCollectionComponent",
        "type": "object",
        "properties": {
            "type": {"const": COMPONENT_TYPE},
            "attributes": attributes,
            "template_vars_module": {"type": "string"},
            "requirements": {"type": "object"},
            "post_processing": {"type": "object"},
        },
        "required": ["type"],
        "additionalProperties": False,
        "$defs": definitions,
    }
