"""A playbook file's YAML document as the spec's models: the first error of pydantic's names
the file's line, the step and the field, with a did-you-mean for a misspelt key or step type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from playbook_assets.core.errors import PlaybookValidationError, unknown_name_hint
from playbook_assets.core.models import reported_error
from playbook_assets.core.spec import PlaybookFile, PlaybookSpec
from playbook_assets.core.steps.registry import STEP_TYPES
from playbook_assets.core.yaml_source import YamlDocument


def parse_playbook(document: YamlDocument) -> PlaybookSpec:
    """Turn a YAML document into the spec models; the first error names its line."""
    if not isinstance(document.data, dict) or "playbook" not in document.data:
        raise PlaybookValidationError(
            "a playbook file must have a single root key 'playbook:'",
            location=document.location(),
        )
    try:
        return PlaybookFile.model_validate(document.data).playbook
    except ValidationError as e:
        raise _validation_error(e, document) from e


def _validation_error(error: ValidationError, document: YamlDocument) -> PlaybookValidationError:
    first = reported_error(error)
    loc = list(first["loc"])
    if first["type"] == "union_tag_invalid":
        loc.append("type")
    location = document.location_of_loc(loc)
    step = _step_id_at(document, loc)
    matched = document.matched_path(loc)
    field_name = ".".join(str(part) for part in matched[3:] if not isinstance(part, int)) or None
    if step is None:
        field_name = ".".join(str(part) for part in matched[1:]) or None
    if first["type"] == "extra_forbidden":
        key = str(loc[-1])
        message = f"unknown key '{key}'"
        hint = _unknown_key_hint(key, loc)
        field_name = ".".join(str(p) for p in matched[3 if step else 1 : -1]) or None
    elif first["type"] == "missing":
        message = f"missing required key '{loc[-1]}'"
        hint = None
        field_name = ".".join(str(p) for p in matched[3 if step else 1 :]) or None
    elif first["type"] == "union_tag_invalid":
        tag = str((first.get("ctx") or {}).get("tag", ""))
        message = f"unknown step type '{tag}'"
        hint = unknown_name_hint(tag, list(STEP_TYPES), "step type")
        field_name = "type"
    elif first["type"] == "union_tag_not_found":
        message = "missing required key 'type'"
        hint = f"one of {', '.join(STEP_TYPES)}"
    elif first["type"] == "literal_error":
        message = f"{first['input']!r} is not allowed here: {first['msg']}"
        hint = None
    else:
        message = first["msg"].removeprefix("Value error, ")
        hint = None
    return PlaybookValidationError(
        message, location=location, step=step, field=field_name, hint=hint
    )


def _step_id_at(document: YamlDocument, loc: Sequence[Any]) -> str | None:
    if len(loc) >= 3 and loc[0] == "playbook" and loc[1] == "steps" and isinstance(loc[2], int):
        steps = document.data["playbook"].get("steps") or []
        if loc[2] < len(steps) and isinstance(steps[loc[2]], dict):
            step_id = steps[loc[2]].get("id")
            return str(step_id) if step_id is not None else f"#{loc[2] + 1}"
    return None


def _unknown_key_hint(key: str, loc: Sequence[Any]) -> str | None:
    from playbook_assets.core import spec as spec_module

    parents = [str(part) for part in loc[:-1] if isinstance(part, str)]
    steps = {name: step_type.model for name, step_type in STEP_TYPES.items()}
    others: dict[str, type[spec_module.StrictModel]] = {
        "playbook": spec_module.PlaybookSpec,
        "outputs": spec_module.OutputSpec,
        "parameters": spec_module.ParameterSpec,
        "filters": spec_module.SearchFilter,
        "filter_groups": spec_module.SearchFilter,
        "metrics": spec_module.MetricSpec,
        "charts": spec_module.ChartSpec,
    }
    model: type[spec_module.StrictModel] | None = None
    if parents and parents[-1] == "config" and len(parents) >= 2 and parents[-2] in steps:
        model = steps[parents[-2]].model_fields["config"].annotation  # type: ignore[assignment]
    elif parents and parents[-1] in steps:
        model = steps[parents[-1]]
    elif parents:
        model = others.get(parents[-1])
    if model is None:
        return None
    return unknown_name_hint(key, model.model_fields, "key")
