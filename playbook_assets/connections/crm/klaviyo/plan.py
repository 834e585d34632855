"""What a Klaviyo search asks Klaviyo for (endpoint, sparse fields, ``filter=`` values) and what
it evaluates locally; profiles as typed rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from playbook_assets.connections.crm.hubspot_filters import contact_properties
from playbook_assets.connections.crm.values import parse_instant
from playbook_assets.core.errors import TerminalStepError, did_you_mean
from playbook_assets.core.spec import SearchConfig, SearchFilter

DEFAULT_FIELD_MAP: dict[str, str] = {
    "hs_object_id": "id",
    "email": "email",
    "firstname": "first_name",
    "lastname": "last_name",
    "jobtitle": "title",
    "phone": "phone_number",
    "company": "organization",
    "createdate": "created",
    "lastmodifieddate": "updated",
    "lifecyclestage": "properties.lifecyclestage",
    "hs_lead_status": "properties.hs_lead_status",
}
ATTRIBUTES: dict[str, pa.DataType] = {
    "id": pa.string(),
    "email": pa.string(),
    "phone_number": pa.string(),
    "external_id": pa.string(),
    "first_name": pa.string(),
    "last_name": pa.string(),
    "organization": pa.string(),
    "locale": pa.string(),
    "title": pa.string(),
    "image": pa.string(),
    "created": pa.timestamp("us"),
    "updated": pa.timestamp("us"),
    "last_event_date": pa.timestamp("us"),
}
MAX_ANY_VALUES = 100
_CUSTOM = "properties."
_OBJECTS = ("profiles", "contacts", "segments/<id>")
_ONE_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Plan:
    """The endpoint, server-side filters and the local evaluation of one search."""

    segment: str | None
    endpoint: str
    columns: dict[str, str]  # user column -> attribute ('properties.x' for custom)
    sparse_fields: list[str]
    server_filters: list[str]  # one call (with paging) per filter; [] = no filter
    local_request: SearchConfig


def plan(request: SearchConfig, names: dict[str, str]) -> Plan:
    segment = _segment(request.object)
    if request.associations:
        raise TerminalStepError(
            "Klaviyo profiles have no associations",
            field="associations",
            hint="remove 'associations'; 'company' (organization) is a profile property",
        )
    properties = contact_properties(request)
    columns: dict[str, str] = {"hs_object_id": "id"}
    wanted = [
        *(("properties", p) for p in properties),
        *(("filters", f.property) for g in request.groups() for f in g),
        *(("sorts", s.property) for s in request.sorts),
    ]
    for where, name in wanted:
        columns[name] = _attribute(name, names, where)
    sparse = sorted({"properties" if a.startswith(_CUSTOM) else a for a in columns.values()})
    sparse = [a for a in sparse if a != "id"]
    endpoint = f"/api/segments/{segment}/profiles" if segment else "/api/profiles"
    local = request.model_copy(update={"properties": properties, "object": "contacts"})
    return Plan(
        segment, endpoint, columns, sparse, _server_filters(request, columns, segment), local
    )


def _segment(name: str) -> str | None:
    text = name.strip()
    if text.lower() in {"profiles", "contacts", "profile"}:
        return None
    if text.lower().startswith("segments/") and text[len("segments/") :].strip():
        return text[len("segments/") :].strip()
    raise TerminalStepError(
        f"Klaviyo has no object '{name}'",
        field="object",
        hint=(did_you_mean(name, _OBJECTS) or "") + " objects: profiles, segments/<segment id>",
    )


def _attribute(name: str, names: dict[str, str], where: str) -> str:
    target = names.get(name, name)
    if target in ATTRIBUTES or (target.startswith(_CUSTOM) and len(target) > len(_CUSTOM)):
        return target
    known = sorted({*ATTRIBUTES, *names})
    suggestion = did_you_mean(name, known)
    listing = (
        "use 'properties.<name>' for a custom property, or map it in field_map; "
        f"attributes: {', '.join(sorted(ATTRIBUTES))}"
    )
    raise TerminalStepError(
        f"Klaviyo profiles have no attribute '{name}'",
        field=where,
        hint=f"{suggestion} {listing}" if suggestion else listing,
    )


def _server_filters(
    request: SearchConfig, columns: dict[str, str], segment: str | None
) -> list[str]:
    """Klaviyo ``filter`` values: one per chunk of the pushed IN list (ANDed with the rest)."""
    groups = request.groups()
    if len(groups) != 1:
        return []
    fixed: list[str] = []
    listed: tuple[str, list[str]] | None = None
    done: set[str] = set()
    for spec in groups[0]:
        attribute = columns[spec.property]
        if attribute in {"email", "id"} and spec.operator in {"EQ", "IN"}:
            if attribute in done:
                continue
            values = _string_values(spec, attribute)
            if values is None:
                continue
            field = "profile_id" if attribute == "id" and segment else attribute
            done.add(attribute)
            if len(values) == 1:
                fixed.append(f"equals({field},{json.dumps(values[0])})")
            elif listed is None:
                listed = (field, values)
            else:
                done.discard(attribute)
        elif attribute in {"created", "updated"} and segment is None:
            fixed.extend(_range_filters(spec, attribute))
    if listed is None:
        return [_and(fixed)] if fixed else []
    field, values = listed
    return [
        _and([*fixed, f"any({field},{json.dumps(values[i : i + MAX_ANY_VALUES])})"])
        for i in range(0, len(values), MAX_ANY_VALUES)
    ]


def _and(filters: list[str]) -> str:
    return filters[0] if len(filters) == 1 else f"and({','.join(filters)})"


def _string_values(spec: SearchFilter, attribute: str) -> list[str] | None:
    raw = [spec.value] if spec.operator == "EQ" else spec.values
    if not isinstance(raw, list):
        return None
    values: list[str] = []
    for value in raw:
        if value is None or isinstance(value, bool | list | dict):
            return None
        text = str(value).strip().lower() if attribute == "email" else str(value)
        if text not in values:
            values.append(text)
    return values or None


def _range_filters(spec: SearchFilter, attribute: str) -> list[str]:
    """greater-than / less-than; inclusive bounds widened by a second (superset)."""

    def bound(operator: str, raw: Any, delta: timedelta) -> str | None:
        try:
            moved = parse_instant(raw, attribute).replace(microsecond=0) + delta
        except TerminalStepError:
            return None  # the local evaluation reports the bad value
        return f"{operator}({attribute},{moved.isoformat()}Z)"

    op = spec.operator
    found: list[str | None] = []
    if op in {"GT", "GTE", "BETWEEN"}:
        shift = timedelta(0) if op == "GT" else -_ONE_SECOND
        found.append(bound("greater-than", spec.value, shift))
    if op in {"LT", "LTE"}:
        found.append(bound("less-than", spec.value, timedelta(0) if op == "LT" else _ONE_SECOND))
    if op == "BETWEEN":
        found.append(bound("less-than", spec.high_value, _ONE_SECOND))
    return [f for f in found if f is not None]


def typed_table(records: list[dict[str, Any]], plan: Plan) -> pa.Table:
    arrays: dict[str, pa.Array] = {}
    for column, attribute in plan.columns.items():
        if attribute.startswith(_CUSTOM):
            key = attribute[len(_CUSTOM) :]
            raw = [(r.get("properties") or {}).get(key) for r in records]
            arrays[column] = _inferred(raw)
        else:
            raw = [r.get(attribute) for r in records]
            kind = ATTRIBUTES[attribute]
            if pa.types.is_timestamp(kind):
                arrays[column] = pa.array([None if v is None else _timestamp(v) for v in raw], kind)
            else:
                arrays[column] = pa.array([None if v is None else str(v) for v in raw], kind)
    return pa.table(arrays)


def _timestamp(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _inferred(raw: list[Any]) -> pa.Array:
    """A custom property typed from its JSON values (text when they disagree)."""
    try:
        array = pa.array(raw)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else json.dumps(v) for v in raw], pa.string())
    if pa.types.is_null(array.type):
        return array.cast(pa.string())
    return array
