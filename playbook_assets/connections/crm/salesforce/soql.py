"""HubSpot-style searches compiled to SOQL (see the package docstring for the semantics), and
split into several queries when one would be longer than Salesforce takes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from playbook_assets.connections.crm.hubspot_filters import DEFAULT_PROPERTIES
from playbook_assets.connections.crm.salesforce.fields import (
    ASSOCIATIONS,
    FIELD_NAME,
    ID_PROPERTY,
    MAX_REQUEST_BYTES,
    STANDARD_FIELD_KINDS,
    Kind,
    OrgField,
    SoqlSearch,
    check_name,
)
from playbook_assets.connections.crm.salesforce.literals import (
    check_picklist,
    like_pattern,
    soql_literal,
)
from playbook_assets.core.errors import TerminalStepError, did_you_mean, unknown_name_hint
from playbook_assets.core.spec import SearchConfig, SearchFilter


def sobject_of(request: SearchConfig, objects: Mapping[str, str]) -> str:
    """The sObject a search's object is mapped to; an error naming the mapping when none is."""
    key = request.object.strip().lower()
    if key not in objects:
        raise TerminalStepError(
            f"no Salesforce object is mapped to '{request.object}'",
            field="object",
            hint=unknown_name_hint(key, objects, "object")
            + "; add it to object_mapping, e.g. {tickets: Case}",
        )
    check_name(objects[key], "object_mapping")
    return objects[key]


@dataclass(frozen=True)
class _Fields:
    """How a search's property names become the sObject's fields."""

    key: str  # the HubSpot object name
    sobject: str
    fields: Mapping[str, str]
    org: Mapping[str, OrgField] | None

    def of(self, name: str, where: str) -> OrgField:
        """The field a property reads: as the org spells it (or as mapped, without the org)."""
        mapped = self.fields.get(name, self.fields.get(name.lower(), name))
        if not FIELD_NAME.fullmatch(mapped):
            raise TerminalStepError(
                f"'{mapped}' is not a Salesforce field name",
                field=where,
                hint=f"map the property in field_mapping.{self.key}, e.g. {{{name}: Field__c}}",
            )
        if self.org is None:
            return OrgField(mapped, STANDARD_FIELD_KINDS.get(mapped, "text"))
        found = self.org.get(mapped.lower())
        if found is None:
            raise _no_such_field(name, mapped, self.sobject, self.key, self.org, self.fields, where)
        return found


def compile_search(
    request: SearchConfig,
    objects: Mapping[str, str],
    fields: Mapping[str, str],
    org: Mapping[str, OrgField] | None = None,
) -> SoqlSearch:
    """Compile a HubSpot-style search to SOQL with the given object and field mappings.

    With ``org`` (the sObject's fields by lower-case name, from its describe call) every
    field is sent as the org spells it, values are written for the field's type and checked
    against its picklist; without it, names are sent as mapped and typed as standard fields.
    """
    sobject = sobject_of(request, objects)
    lookup = _Fields(request.object.strip().lower(), sobject, fields, org)
    columns = _columns(request, lookup)
    typed = org is not None
    described: tuple[tuple[str, str, Kind | None], ...] = tuple(
        (name, field.name, field.kind if typed else None) for name, field in columns
    )
    where = _where(request, lookup, typed)
    if where is False:
        return SoqlSearch(None, sobject, described)
    selected = list(dict.fromkeys(field.name for _, field in columns))
    soql = f"SELECT {', '.join(selected)} FROM {sobject}"
    if where is not True:
        soql += f" WHERE {where}"
    soql += " ORDER BY " + _order_by(request, lookup, columns[0][1])
    if request.limit is not None:
        soql += f" LIMIT {int(request.limit)}"
    return SoqlSearch(soql, sobject, described)


def _columns(request: SearchConfig, lookup: _Fields) -> list[tuple[str, OrgField]]:
    """``hs_object_id``, the requested properties (the object's defaults when none), then the
    associations' columns, each with its field."""
    key, fields = lookup.key, lookup.fields
    columns: list[tuple[str, OrgField]] = [(ID_PROPERTY, lookup.of(ID_PROPERTY, "properties"))]
    default = [p for p in DEFAULT_PROPERTIES.get(key, ()) if p in fields]
    for name in request.properties or default:
        if name != ID_PROPERTY and name not in {c for c, _ in columns}:
            columns.append((name, lookup.of(name, "properties")))
    for association in request.associations:
        output = ASSOCIATIONS.get(association.strip().lower())
        if output is None or output not in fields:
            raise TerminalStepError(
                f"{key} have no '{association}' association in the Salesforce mapping",
                field="associations",
                hint=f"map company_id to a lookup field in field_mapping.{key}"
                if output
                else "the supported association is companies",
            )
        if output not in {c for c, _ in columns}:
            columns.append((output, lookup.of(output, "associations")))
    return columns


def _where(request: SearchConfig, lookup: _Fields, typed: bool) -> str | bool:
    """The WHERE condition; True / False when the filters match every / no record."""
    where_field = "filter_groups" if request.filter_groups else "filters"
    groups: list[list[str]] = []
    for group in request.groups():
        conditions: list[str] = []
        matches_nothing = False
        for spec in group:
            field = lookup.of(spec.property, where_field)
            condition = _condition(spec, field, where_field, typed, lookup.sobject)
            if condition is False:
                matches_nothing = True
            elif condition is not True:
                conditions.append(condition)
        if matches_nothing:
            continue
        if not conditions:  # a group that matches everything makes the OR match everything
            return True
        groups.append(conditions)
    if not groups:
        return not request.groups()
    if len(groups) == 1:
        return " AND ".join(groups[0])
    return " OR ".join(f"({' AND '.join(g)})" for g in groups)


def _order_by(request: SearchConfig, lookup: _Fields, id_field: OrgField) -> str:
    """The sorts (NULLS LAST), then the id, so that the order is total."""
    order = [
        f"{lookup.of(sort.property, 'sorts').name} "
        f"{'DESC' if sort.direction == 'DESCENDING' else 'ASC'} NULLS LAST"
        for sort in request.sorts
    ]
    if id_field.name not in {o.split(" ")[0] for o in order}:
        order.append(f"{id_field.name} ASC")
    return ", ".join(order)


def _no_such_field(
    name: str,
    mapped: str,
    sobject: str,
    key: str,
    org: Mapping[str, OrgField],
    fields: Mapping[str, str],
    where: str,
) -> TerminalStepError:
    known = [f.name for f in org.values()]
    properties = [p for p, f in fields.items() if f.lower() in org]
    suggestion = did_you_mean(mapped, known) or did_you_mean(name, properties)
    shown = f"'{mapped}'" + (f" (property '{name}')" if mapped != name else "")
    return TerminalStepError(
        f"the Salesforce org has no field {shown} on {sobject}",
        field=where,
        hint=(f"{suggestion} " if suggestion else "")
        + f"custom fields end in __c; map the property in field_mapping.{key}",
    )


def split_for_uri(
    request: SearchConfig,
    compile_one: Callable[[SearchConfig], SoqlSearch],
    fits: Callable[[str], bool],
) -> list[SoqlSearch]:
    """The search as one query, or as several when its longest IN list makes the request
    longer than Salesforce takes: each holds a slice of that list (their results united)."""
    whole = compile_one(request)
    if whole.soql is None or fits(whole.soql):
        return [whole]
    groups = request.groups()
    listed = [
        (len(spec.values), g, f)
        for g, group in enumerate(groups)
        for f, spec in enumerate(group)
        if spec.operator == "IN" and isinstance(spec.values, list) and len(spec.values) > 1
    ]
    if not listed:
        raise _too_long()
    _, g, f = max(listed)
    values = list(groups[g][f].values or [])

    def with_values(part: list[Any]) -> SearchConfig:
        changed = [list(group) for group in groups]
        changed[g][f] = changed[g][f].model_copy(update={"values": part})
        if request.filter_groups:
            return request.model_copy(update={"filter_groups": changed})
        return request.model_copy(update={"filters": changed[0]})

    def split(part: list[Any]) -> list[SoqlSearch]:
        compiled = compile_one(with_values(part))
        if compiled.soql is None or fits(compiled.soql):
            return [compiled]
        if len(part) == 1:
            raise _too_long()
        half = len(part) // 2
        return split(part[:half]) + split(part[half:])

    return split(values)


def _too_long() -> TerminalStepError:
    return TerminalStepError(
        f"the search is too long for one Salesforce request (the URI plus headers must stay "
        f"under {MAX_REQUEST_BYTES:,} bytes) and has no IN list to split",
        field="filters",
        hint="use fewer or shorter filter values, or filter the rest in a later filter step",
    )


def _condition(
    spec: SearchFilter, field: OrgField, where: str, typed: bool, sobject: str
) -> str | bool:
    """One filter as SOQL; True / False when it matches every / no record."""
    name = field.name
    kind: Kind | None = field.kind if typed or name in STANDARD_FIELD_KINDS else None
    operator = spec.operator

    def literal(value: Any) -> str:
        if field.picklist:
            check_picklist(value, spec.property, field, sobject, where)
        return soql_literal(value, kind, spec.property, operator)

    if operator == "HAS_PROPERTY":
        return f"{name} != null"
    if operator == "NOT_HAS_PROPERTY":
        return f"{name} = null"
    if operator == "CONTAINS_TOKEN":
        words = str(spec.value).split()
        if not words:
            raise TerminalStepError(
                f"CONTAINS_TOKEN on '{spec.property}' needs a word to look for",
                field=where,
                hint="use HAS_PROPERTY to match any value",
            )
        return " AND ".join(f"{name} LIKE {like_pattern(word)}" for word in words)
    if operator in {"IN", "NOT_IN"}:
        values = spec.values
        if not isinstance(values, list):
            raise TerminalStepError(
                f"operator {operator} on '{spec.property}' needs a list of values, got {values!r}",
                field=where,
                hint="give 'values' as a YAML list or a ${steps.ID.COLUMN} reference",
            )
        if not values:
            return operator == "NOT_IN"  # an empty list matches nothing
        literals = ", ".join(literal(v) for v in values)
        return f"{name} {'IN' if operator == 'IN' else 'NOT IN'} ({literals})"
    if operator == "BETWEEN":
        return f"{name} >= {literal(spec.value)} AND {name} <= {literal(spec.high_value)}"
    symbols = {"EQ": "=", "NEQ": "!=", "LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}
    return f"{name} {symbols[operator]} {literal(spec.value)}"
