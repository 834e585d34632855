"""HubSpot search request bodies: properties checked against the properties API, filters
written as HubSpot takes them (text, dates as epoch milliseconds), the search's limits (5
filter groups, 6 filters a group, 18 in all) and the ``hs_object_id`` window past the 10,000
result cap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from playbook_assets.connections.crm.hubspot_filters import DEFAULT_PROPERTIES, ID
from playbook_assets.core.errors import TerminalStepError, did_you_mean
from playbook_assets.core.spec import SearchConfig, SearchFilter

SEARCH_RESULT_CAP = 10_000  # HubSpot returns at most this many records per search
MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
_EPOCH = datetime(1970, 1, 1)
_ASSOCIATION_ALIASES = {
    "company": "companies",
    "contact": "contacts",
    "deal": "deals",
    "ticket": "tickets",
}
_ASSOCIATION_COLUMNS = {"companies": "company_id", "contacts": "contact_id", "deals": "deal_id"}

Groups = list[list[dict[str, Any]]]


@dataclass(frozen=True)
class Property:
    """A property as the properties API describes it."""

    name: str
    type: str
    field_type: str


def id_sort() -> dict[str, str]:
    """The sort that makes windows possible: ``hs_object_id`` ascending."""
    return {"propertyName": ID, "direction": "ASCENDING"}


def check_property(
    name: str, properties: dict[str, Property], object_type: str, where: str
) -> Property:
    """The property ``name`` of the object; an error with a did-you-mean when it has none."""
    found = properties.get(name)
    if found is not None:
        return found
    hint = did_you_mean(name, properties) or f"see GET /crm/v3/properties/{object_type}"
    if name.lower() in {"associatedcompanyid", "company_id", "company"}:
        hint = f"use 'associations: [companies]' to get company_id; {hint}"
    raise TerminalStepError(f"unknown {object_type} property '{name}'", field=where, hint=hint)


def requested_properties(
    request: SearchConfig, object_type: str, properties: dict[str, Property]
) -> list[str]:
    """The properties to read (the object's defaults when none is named), checked."""
    names: list[str] = []
    for name in request.properties or DEFAULT_PROPERTIES.get(object_type, ()):
        check_property(name, properties, object_type, "properties")
        if name != ID and name not in names:
            names.append(name)
    return names


def filter_groups(
    request: SearchConfig, properties: dict[str, Property], object_type: str
) -> Groups | None:
    """The request's groups as HubSpot filters; None when no record can match."""
    where = "filter_groups" if request.filter_groups else "filters"
    groups: Groups = []
    raw_groups = request.groups()
    for group in raw_groups:
        filters: list[dict[str, Any]] = []
        impossible = False
        for spec in group:
            prop = check_property(spec.property, properties, object_type, where)
            if spec.operator in {"IN", "NOT_IN"} and isinstance(spec.values, list):
                if not spec.values:  # IN () matches nothing, NOT_IN () everything
                    impossible = impossible or spec.operator == "IN"
                    continue
            filters.append(_filter_body(spec, prop, where))
        if not impossible:
            groups.append(filters)
    if raw_groups and not groups:
        return None
    if any(not g for g in groups):
        return []  # a group without filters matches every record
    return groups


def _filter_body(spec: SearchFilter, prop: Property, where: str) -> dict[str, Any]:
    body: dict[str, Any] = {"propertyName": spec.property, "operator": spec.operator}
    if spec.operator in {"IN", "NOT_IN"}:
        if not isinstance(spec.values, list):
            raise TerminalStepError(
                f"operator {spec.operator} on '{spec.property}' needs a list of values, "
                f"got {spec.values!r}",
                field=where,
                hint="give 'values' as a YAML list or a ${steps.ID.COLUMN} reference",
            )
        body["values"] = [_filter_value(v, prop) for v in spec.values]
    if spec.value is not None:
        body["value"] = _filter_value(spec.value, prop)
    if spec.high_value is not None:
        body["highValue"] = _filter_value(spec.high_value, prop)
    return body


def _filter_value(value: Any, prop: Property) -> str:
    """A filter value as HubSpot takes it: text; dates as epoch milliseconds (UTC)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if prop.type in {"date", "datetime"}:
        instant = _instant(value)
        if instant is not None:
            return str(int((instant - _EPOCH).total_seconds() * 1000))
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None  # epoch milliseconds or something HubSpot will judge
        return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
    return None


def fits(groups: Groups, extra: int) -> bool:
    """Whether the groups, each with ``extra`` more filters, stay within HubSpot's limits."""
    count = max(1, len(groups))
    sizes = [len(g) + extra for g in groups] or [extra]
    return (
        count <= MAX_FILTER_GROUPS
        and max(sizes) <= MAX_FILTERS_PER_GROUP
        and sum(sizes) <= MAX_FILTERS
    )


def check_limits(groups: Groups) -> None:
    """An error when a group alone is over HubSpot's limits (splitting cannot help)."""
    if not fits(groups, 0):
        raise TerminalStepError(
            f"a filter group has more than {MAX_FILTERS_PER_GROUP} filters, HubSpot's limit",
            field="filter_groups",
            hint="split the group's conditions or filter the results in a later filter step",
        )


def after_id(groups: Groups, last_id: str) -> Groups:
    """The groups of the next window: every group also asks for ``hs_object_id > last_id``."""
    window_filter = {"propertyName": ID, "operator": "GT", "value": last_id}
    widened = [[*g, window_filter] for g in groups] or [[window_filter]]
    if not fits(widened, 0):
        raise TerminalStepError(
            f"more than {SEARCH_RESULT_CAP} records match and a filter group already has "
            f"{MAX_FILTERS_PER_GROUP} filters, leaving no room for the hs_object_id window "
            "that reads past HubSpot's cap",
            field="filters",
            hint="remove one filter from the group (filter later in a filter step)",
        )
    return widened


def association_targets(names: list[str]) -> list[str]:
    """The associated object types, each once (``company`` is ``companies``)."""
    targets: list[str] = []
    for name in names:
        key = name.strip().lower()
        key = _ASSOCIATION_ALIASES.get(key, key)
        if key not in targets:
            targets.append(key)
    return targets


def association_column(target: str) -> str:
    """The output column of an association (``companies`` -> ``company_id``)."""
    return _ASSOCIATION_COLUMNS.get(target, f"{target.removesuffix('s')}_id")


def primary(linked: list[dict[str, Any]]) -> int:
    """The primary associated id, else the smallest."""
    for item in linked:
        labels = [str(t.get("label") or "") for t in item.get("associationTypes") or []]
        if "Primary" in labels:
            return int(item["toObjectId"])
    return min(int(item["toObjectId"]) for item in linked)
