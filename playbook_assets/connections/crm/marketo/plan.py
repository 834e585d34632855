"""What a Marketo search asks Marketo for and what it evaluates locally; leads as typed rows.

Marketo filters leads by one searchable field, by equality (``filterType``/``filterValues``):
the first such EQ or IN filter of each group is sent when every group has one on the same
field; everything is then evaluated again locally with HubSpot's semantics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from playbook_assets.connections.crm.hubspot_filters import contact_properties
from playbook_assets.core.errors import TerminalStepError, did_you_mean
from playbook_assets.core.spec import SearchConfig, SearchFilter

_OBJECTS = {"leads": "leads", "contacts": "leads", "lead": "leads"}


@dataclass(frozen=True)
class LeadField:
    """A lead field of Marketo's describe2 answer."""

    name: str
    data_type: str
    searchable: bool


@dataclass(frozen=True)
class Plan:
    """What to ask Marketo for and what to evaluate locally."""

    columns: dict[str, str]  # output/filter column (user name) -> Marketo field
    filter_type: str | None
    filter_values: list[str]
    local_request: SearchConfig
    company_column: str | None  # user column holding company_id, when associated


def object_name(name: str) -> str:
    found = _OBJECTS.get(name.strip().lower())
    if found is None:
        raise TerminalStepError(
            f"Marketo has no object '{name}'",
            field="object",
            hint=(did_you_mean(name, _OBJECTS) or "") + " Marketo searches leads (or contacts)",
        )
    return found


def plan(
    request: SearchConfig, names: dict[str, str], fields: dict[str, LeadField], company_field: str
) -> Plan:
    properties = contact_properties(request)
    columns: dict[str, str] = {"hs_object_id": "id"}
    wanted = [
        *(("properties", p) for p in properties),
        *(("filters", f.property) for g in request.groups() for f in g),
        *(("sorts", s.property) for s in request.sorts),
    ]
    for where, name in wanted:
        columns[name] = _field(name, names, fields, where)
    company_column: str | None = None
    output = list(properties)
    if request.associations:
        for association in request.associations:
            if association.strip().lower() not in {"companies", "company"}:
                raise TerminalStepError(
                    f"Marketo leads have no '{association}' association",
                    field="associations",
                    hint="associations of leads: companies",
                )
        if company_field not in fields:
            raise TerminalStepError(
                f"the lead field '{company_field}' (company_id_field) does not exist",
                field="associations",
                hint=field_hint(company_field, names, fields),
            )
        company_column = "company_id"
        columns[company_column] = company_field
        output.append(company_column)

    filter_type, values = _pushdown(request, columns, fields)
    local = request.model_copy(update={"properties": output, "associations": []})
    return Plan(columns, filter_type, values, local, company_column)


def _field(name: str, names: dict[str, str], fields: dict[str, LeadField], where: str) -> str:
    target = names.get(name, name)
    if target in fields:
        return target
    raise TerminalStepError(
        f"Marketo leads have no field '{name}'"
        + (f" (mapped to '{target}')" if target != name else ""),
        field=where,
        hint=field_hint(name, names, fields),
    )


def field_hint(name: str, names: dict[str, str], fields: dict[str, LeadField]) -> str:
    known = sorted({*fields, *(k for k, v in names.items() if v in fields)})
    suggestion = did_you_mean(name, known)
    listing = "add it to field_map if the lead field has another name; fields: " + ", ".join(
        sorted(fields)
    )
    return f"{suggestion} {listing}" if suggestion else listing


def _pushdown(
    request: SearchConfig, columns: dict[str, str], fields: dict[str, LeadField]
) -> tuple[str | None, list[str]]:
    """The filterType and filterValues: the first pushable filter of each group, when every
    group has one on the same field (several groups send the union of their values)."""
    chosen: list[tuple[str, list[str]]] = []
    for group in request.groups():
        found = _pushable(group, columns, fields)
        if found is None:
            return None, []
        chosen.append(found)
    if not chosen or len({name for name, _ in chosen}) != 1:
        return None, []
    values: list[str] = []
    for _, group_values in chosen:
        values.extend(v for v in group_values if v not in values)
    return chosen[0][0], values


def _pushable(
    group: list[SearchFilter], columns: dict[str, str], fields: dict[str, LeadField]
) -> tuple[str, list[str]] | None:
    for spec in group:
        if spec.operator not in {"EQ", "IN"}:
            continue
        info = fields[columns[spec.property]]
        if not info.searchable:
            continue
        raw = [spec.value] if spec.operator == "EQ" else spec.values
        if not isinstance(raw, list):
            continue
        values = _filter_values(raw, info)
        if values is not None:
            return info.name, values
    return None


def _filter_values(raw: list[Any], info: LeadField) -> list[str] | None:
    """The values as Marketo filterValues, or None when they cannot be sent as such."""
    values: list[str] = []
    for value in raw:
        if value is None or isinstance(value, bool | list | dict):
            return None
        if info.data_type == "integer":
            try:
                text = str(int(str(value).strip()))
            except ValueError:
                return None
        else:
            text = str(value)
        if "," in text or not text:
            return None
        if text not in values:
            values.append(text)
    return values


# ---------------------------------------------------------------------------------------------
# Fetching and typing
# ---------------------------------------------------------------------------------------------


def typed_table(
    records: list[dict[str, Any]], plan: Plan, fields: dict[str, LeadField]
) -> pa.Table:
    arrays: dict[str, pa.Array] = {}
    for column, field_name in plan.columns.items():
        raw = [record.get(field_name) for record in records]
        if column == plan.company_column:
            arrays[column] = _company_ids(raw)
        else:
            arrays[column] = _typed(raw, fields[field_name].data_type, column)
    return pa.table(arrays)


def _typed(raw: list[Any], data_type: str, column: str) -> pa.Array:
    try:
        if data_type in {"integer", "score", "reference"} or column == "hs_object_id":
            return pa.array([None if v is None else int(v) for v in raw], pa.int64())
        if data_type in {"float", "currency", "percent"}:
            return pa.array([None if v is None else float(v) for v in raw], pa.float64())
        if data_type == "boolean":
            return pa.array([None if v is None else _boolean(v) for v in raw], pa.bool_())
        if data_type == "date":
            return pa.array(
                [None if v is None else date.fromisoformat(v) for v in raw], pa.date32()
            )
        if data_type == "datetime":
            return pa.array([None if v is None else _instant(v) for v in raw], pa.timestamp("us"))
    except (TypeError, ValueError) as e:
        raise TerminalStepError(
            f"Marketo returned a value of '{column}' that is not a {data_type}: {e}"
        ) from e
    return pa.array([None if v is None else str(v) for v in raw], pa.string())


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"true", "1", "yes"}


def _instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _company_ids(raw: list[Any]) -> pa.Array:
    texts = [None if v is None or v == "" else str(v).strip() for v in raw]
    if all(t is None or t.lstrip("-").isdigit() for t in texts):
        return pa.array([None if t is None else int(t) for t in texts], pa.int64())
    return pa.array(texts, pa.string())


def describe_filter(spec: SearchFilter) -> dict[str, Any]:
    described: dict[str, Any] = {"property": spec.property, "operator": spec.operator}
    for key in ("value", "values", "high_value"):
        value = getattr(spec, key)
        if value is not None:
            described[key] = (
                value if isinstance(value, str | int | float | bool | list) else str(value)
            )
    return described
