"""JSON schemas of the playbook format and of ``playbook-executor.yaml``, generated from
their pydantic models, for editors (``# yaml-language-server: $schema=...``).

The generated files ship in ``playbook_assets/schemas/`` (``playbook schema --output``
writes them; a test keeps them equal to what the models generate). A schema checks the shape
of a file as the user types; what needs the whole playbook (references, cycles, expressions,
connections) is checked by ``playbook validate``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from playbook_assets.core.config import ROOT_KEY
from playbook_assets.core.config import _ConfigFile as ConfigFileModel  # the file's body
from playbook_assets.core.playbook_tests.spec import PlaybookTestFile
from playbook_assets.core.spec import PlaybookFile

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"
PLAYBOOK_SCHEMA_FILE = "playbook.schema.json"
CONFIG_SCHEMA_FILE = "playbook-executor.schema.json"
TESTS_SCHEMA_FILE = "playbook-tests.schema.json"
COMPONENT_SCHEMA_FILE = "component.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def schema_line(reference: str) -> str:
    """The first line of a YAML file that tells the editor its schema (a path is relative to
    the file)."""
    return f"# yaml-language-server: $schema={reference}\n"


def playbook_schema() -> dict[str, Any]:
    """The JSON schema of a playbook file."""
    return _schema(PlaybookFile, "Playbook")


def tests_schema() -> dict[str, Any]:
    """The JSON schema of a file of playbook tests (``<playbook>.tests.yaml``)."""
    return _schema(PlaybookTestFile, "Playbook tests")


def config_schema() -> dict[str, Any]:
    """The JSON schema of ``playbook-executor.yaml`` (everything under ``playbook_executor:``).

    A connection block's keys depend on its ``type``; the schema names ``type`` and leaves the
    rest to ``playbook validate``, which knows each connection type's settings.
    """
    body = _schema(ConfigFileModel, "playbook_executor")
    definitions = body.pop("$defs", {})
    body.pop("$schema")
    body["type"] = ["object", "null"]  # an empty `playbook_executor:` means the defaults
    body["properties"]["connections"] = {
        "description": "Named connections: warehouses and CRMs. A block's 'type' defaults to "
        "its name; its other keys are the connection type's settings.",
        "type": ["object", "null"],
        "additionalProperties": {
            "type": ["object", "null"],
            "properties": {"type": {"type": "string", "description": "The connection type."}},
        },
    }
    return {
        "$schema": DRAFT,
        "title": "playbook-executor.yaml",
        "type": "object",
        "properties": {ROOT_KEY: body},
        "required": [ROOT_KEY],
        "additionalProperties": False,
        "$defs": definitions,
    }


def _schema(model: type[BaseModel], title: str) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema["title"] = title
    return {"$schema": DRAFT, **schema}


def schema_text(schema: dict[str, Any]) -> str:
    """A schema as the shipped file holds it."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
