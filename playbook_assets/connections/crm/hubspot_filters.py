"""HubSpot's CRM search semantics, compiled to DuckDB SQL: the one definition every CRM shares.

The demo CRM answers searches with it from its DuckDB file; Marketo and Klaviyo evaluate on
the fetched records, with it, every filter their APIs cannot (``evaluate_locally``); HubSpot
and Salesforce take the default properties and the request's JSON form from here. Searches
follow HubSpot's documented search API:

- filter groups are ORed, the filters of a group are ANDed;
- EQ / NEQ / LT / LTE / GT / GTE compare one value, IN / NOT_IN a list, BETWEEN is inclusive
  (``value`` low, ``high_value`` high); string comparisons ignore case, as in HubSpot, whose
  index lower-cases text values;
- HAS_PROPERTY / NOT_HAS_PROPERTY: a property has no value when it is NULL (or, for text,
  the empty string, which is how HubSpot stores a cleared property);
- NEQ and NOT_IN also match records where the property has no value: HubSpot evaluates them
  as "not (property = value)", so records without the property are included (add a
  HAS_PROPERTY filter to the group to exclude them);
- CONTAINS_TOKEN matches a whitespace-separated word of the value, ignoring case; ``*`` is a
  wildcard within the word (``*@example.com``); a value of several words needs each of them;
- date and date-time properties take ``'YYYY-MM-DD'``, an ISO date-time or epoch
  milliseconds (HubSpot style, UTC), compared as instants (a date is its midnight UTC);
- results are ordered by ``sorts`` (NULLs last), then by ``hs_object_id`` ascending.

Values never become SQL text: the statement is built with sqlglot and every value is a
DuckDB prepared-statement parameter; property names are checked against the table first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import duckdb
import pyarrow as pa
from sqlglot import exp

from playbook_assets.connections.crm.values import parse_boolean, parse_instant, parse_number
from playbook_assets.core.errors import TerminalStepError, did_you_mean
from playbook_assets.core.spec import SearchConfig, SearchFilter

# HubSpot's default returned properties of each object (its search API documentation).
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "companies": ("name", "domain", "createdate", "hs_lastmodifieddate"),
    "contacts": ("firstname", "lastname", "email", "lastmodifieddate", "createdate"),
    "deals": (
        "dealname",
        "amount",
        "closedate",
        "pipeline",
        "dealstage",
        "createdate",
        "hs_lastmodifieddate",
    ),
}
ID = "hs_object_id"


def contact_properties(request: SearchConfig) -> list[str]:
    """The properties a search of people asks for (HubSpot's contact defaults when it names
    none), each once, without the record id every search returns anyway."""
    names = request.properties or DEFAULT_PROPERTIES["contacts"]
    return list(dict.fromkeys(name for name in names if name != ID))


_LOCAL_TABLE = "contacts"  # evaluate_locally's records, named as the object they stand for

Kind = Literal["text", "integer", "number", "boolean", "date", "timestamp"]


@dataclass(frozen=True)
class AssociationJoin:
    """An association read from a link table: ``output`` is the minimum ``target`` of the rows
    of ``table`` whose ``key`` is the record's id."""

    output: str
    table: str
    key: str
    target: str


@dataclass
class _Parameters:
    """Values of the statement's ``$pN`` placeholders."""

    values: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any) -> exp.Expr:
        name = f"p{len(self.values) + 1}"
        self.values[name] = value
        return exp.Placeholder(this=name)


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------


def names_hint(name: str, candidates: Sequence[str], listing: str) -> str:
    """``did you mean 'x'?`` (when one is close) and the names there are."""
    suggestion = did_you_mean(name, candidates)
    names = f"{listing}: {', '.join(sorted(candidates))}"
    return f"{suggestion} {names}" if suggestion else names


def object_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, Kind]:
    """The properties of ``table`` (a table of records) and their kinds."""
    rows = con.sql(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = $table ORDER BY ordinal_position",
        params={"table": table},
    ).fetchall()
    if not rows:
        raise TerminalStepError(
            f"the demo CRM file has no '{table}' table",
            hint="delete the file so that it is generated again",
        )
    return {str(name): _kind(str(data_type)) for name, data_type in rows}


def _kind(data_type: str) -> Kind:
    upper = data_type.upper()
    if upper in {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}:
        return "integer"
    if upper.startswith(("DECIMAL", "DOUBLE", "FLOAT", "REAL")):
        return "number"
    if upper == "BOOLEAN":
        return "boolean"
    if upper == "DATE":
        return "date"
    if upper.startswith("TIMESTAMP"):
        return "timestamp"
    return "text"


def _check_property(name: str, columns: dict[str, Kind], table: str, where: str) -> str:
    if name in columns:
        return name
    hint = names_hint(name, list(columns), f"properties of {table}")
    if name.lower() in {"associated_company", "associatedcompanyid", "company_id", "company"}:
        hint = f"use 'associations: [companies]' to get company_id; {hint}"
    raise TerminalStepError(f"unknown {table} property '{name}'", field=where, hint=hint)


# ---------------------------------------------------------------------------------------------
# Query
# ---------------------------------------------------------------------------------------------


def search_query(
    table: str,
    columns: dict[str, Kind],
    request: SearchConfig,
    associations: Sequence[AssociationJoin] = (),
) -> tuple[str, dict[str, Any]]:
    """The search as one DuckDB statement over ``table`` and its parameters."""
    properties: list[str] = []
    for name in request.properties or DEFAULT_PROPERTIES.get(table, ()):
        _check_property(name, columns, table, "properties")
        if name != ID and name not in properties:
            properties.append(name)

    params = _Parameters()
    groups_field = "filter_groups" if request.filter_groups else "filters"
    group_conditions: list[exp.Expr] = []
    for group in request.groups():
        conditions = [_condition(f, columns, table, params, groups_field) for f in group]
        if conditions:
            group_conditions.append(exp.and_(*conditions))

    selected: list[exp.Expr] = [_column(ID), *(_column(name) for name in properties)]
    query = exp.select(*selected).from_(exp.to_table(table, alias="t"))
    for index, join in enumerate(associations):
        query = _joined(query, join, f"a{index}")
    if group_conditions:
        query = query.where(exp.or_(*group_conditions))

    order: list[exp.Ordered] = []
    for sort in request.sorts:
        _check_property(sort.property, columns, table, "sorts")
        descending = sort.direction == "DESCENDING"
        order.append(exp.Ordered(this=_column(sort.property), desc=descending, nulls_first=False))
    order.append(exp.Ordered(this=_column(ID), desc=False, nulls_first=False))
    query = query.order_by(*order)
    if request.limit is not None:
        query = query.limit(int(request.limit))
    return query.sql(dialect="duckdb"), params.values


def _joined(query: exp.Select, join: AssociationJoin, alias: str) -> exp.Select:
    linked = (
        exp.select(
            exp.column(join.key, quoted=True),
            exp.alias_(
                exp.func("min", exp.column(join.target, quoted=True)), join.output, quoted=True
            ),
        )
        .from_(exp.to_table(join.table))
        .group_by(exp.column(join.key, quoted=True))
    )
    return query.join(
        linked.subquery(alias),
        on=exp.column(join.key, table=alias, quoted=True).eq(_column(ID)),
        join_type="left",
    ).select(exp.column(join.output, table=alias, quoted=True), append=True)


def evaluate_locally(records: pa.Table, request: SearchConfig) -> pa.Table:
    """Filter, sort and limit ``records`` with HubSpot's search semantics.

    ``records`` has ``hs_object_id`` and one typed column per property the request names;
    ``request.properties`` must list the output columns (after ``hs_object_id``) and
    ``request.associations`` must be empty. The request runs on an in-memory DuckDB table
    through ``search_query``, as the demo CRM's do, so the two cannot drift apart.
    """
    with duckdb.connect() as con:
        con.register("fetched_records", records)
        con.execute(f'CREATE TABLE "{_LOCAL_TABLE}" AS SELECT * FROM fetched_records')
        con.unregister("fetched_records")
        columns = object_columns(con, _LOCAL_TABLE)
        sql, params = search_query(_LOCAL_TABLE, columns, request)
        return con.sql(sql, params=params).to_arrow_table()


def _column(name: str) -> exp.Column:
    return exp.column(name, table="t", quoted=True)


def _condition(
    spec: SearchFilter,
    columns: dict[str, Kind],
    table: str,
    params: _Parameters,
    where: str,
) -> exp.Expr:
    """One filter as a boolean that is never NULL (NULL comparisons are false)."""
    name = _check_property(spec.property, columns, table, where)
    kind = columns[name]
    column: exp.Expr = _column(name)
    operator = spec.operator

    def value(raw: Any) -> exp.Expr:
        return comparable(params.add(_coerce(raw, kind, name, operator)))

    def comparable(expression: exp.Expr) -> exp.Expr:
        if kind == "text":
            return exp.Lower(this=expression)
        if kind == "date":
            return exp.cast(expression, exp.DataType.Type.TIMESTAMP)
        return expression

    if operator in {"HAS_PROPERTY", "NOT_HAS_PROPERTY"}:
        has_value = _never_null(_has_value(column, kind))
        return has_value if operator == "HAS_PROPERTY" else exp.Not(this=has_value)
    if operator == "CONTAINS_TOKEN":
        return _never_null(_contains_tokens(column, spec.value, name, params))
    target = comparable(column)
    if operator in {"EQ", "NEQ"}:
        equal = _never_null(exp.EQ(this=target, expression=value(spec.value)))
        return equal if operator == "EQ" else exp.Not(this=equal)
    if operator in _ORDERINGS:
        return _never_null(_ORDERINGS[operator](this=target, expression=value(spec.value)))
    if operator == "BETWEEN":
        low, high = value(spec.value), value(spec.high_value)
        return _never_null(exp.Between(this=target, low=low, high=high))
    member = _membership(spec, target, name, where, value)
    return member if operator == "IN" else exp.Not(this=member)


_ORDERINGS: dict[str, type[exp.Binary]] = {
    "LT": exp.LT,
    "LTE": exp.LTE,
    "GT": exp.GT,
    "GTE": exp.GTE,
}


def _has_value(column: exp.Expr, kind: Kind) -> exp.Expr:
    present: exp.Expr = exp.Not(this=exp.Is(this=column, expression=exp.Null()))
    if kind == "text":
        return exp.and_(present, exp.NEQ(this=column, expression=exp.Literal.string("")))
    return present


def _membership(
    spec: SearchFilter, target: exp.Expr, name: str, where: str, value: Any
) -> exp.Expr:
    """IN / NOT_IN's list test (true when the value is one of the list)."""
    raw_values = spec.values
    if not isinstance(raw_values, list):
        raise TerminalStepError(
            f"operator {spec.operator} on '{name}' needs a list of values, got {raw_values!r}",
            field=where,
            hint="give 'values' as a YAML list or a ${steps.ID.COLUMN} reference",
        )
    if not raw_values:
        return exp.false()  # an empty list matches nothing
    return _never_null(exp.In(this=target, expressions=[value(v) for v in raw_values]))


def _never_null(condition: exp.Expr) -> exp.Expr:
    return exp.Coalesce(this=exp.paren(condition), expressions=[exp.false()])


def _contains_tokens(column: exp.Expr, raw: Any, name: str, params: _Parameters) -> exp.Expr:
    tokens = str(raw).lower().split()
    if not tokens:
        raise TerminalStepError(
            f"CONTAINS_TOKEN on '{name}' needs a word to look for, got {raw!r}",
            hint="use HAS_PROPERTY to match any value",
        )
    text = exp.Lower(this=exp.cast(column, exp.DataType.Type.VARCHAR))
    matches = [
        exp.RegexpLike(this=text, expression=params.add(_token_regex(token))) for token in tokens
    ]
    return exp.and_(*matches)


def _token_regex(token: str) -> str:
    """A RE2 pattern matching ``token`` as a whole whitespace-separated word; ``*`` = any."""
    parts = []
    for char in token:
        if char == "*":
            parts.append(r"\S*")
        elif char.isalnum():
            parts.append(char)
        else:
            parts.append(f"\\x{{{ord(char):x}}}")
    return r"(^|\s)" + "".join(parts) + r"(\s|$)"


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


def _coerce(raw: Any, kind: Kind, name: str, operator: str) -> Any:
    """A filter value as the Python value DuckDB compares with the property's type."""
    if raw is None:
        raise TerminalStepError(f"operator {operator} on '{name}' needs a value, got none")
    if isinstance(raw, list | tuple | set | dict):
        raise TerminalStepError(
            f"operator {operator} on '{name}' takes one value, got {raw!r}",
            hint="use IN / NOT_IN with 'values' to match any of several values",
        )
    if kind == "text":
        if isinstance(raw, bool):
            return "true" if raw else "false"
        return raw if isinstance(raw, str) else str(raw)
    if kind in {"integer", "number"}:
        return parse_number(raw, name)
    if kind == "boolean":
        return parse_boolean(raw, name)
    return parse_instant(raw, name)


def describe_filter(spec: SearchFilter) -> dict[str, Any]:
    """A filter as HubSpot's search request body writes it (``propertyName``, ``operator``,
    ``value``, ``highValue``, ``values``), its values as JSON."""
    described: dict[str, Any] = {"propertyName": spec.property, "operator": spec.operator}
    if spec.value is not None:
        described["value"] = json_value(spec.value)
    if spec.high_value is not None:
        described["highValue"] = json_value(spec.high_value)
    if spec.values is not None:
        values = spec.values
        described["values"] = (
            [json_value(v) for v in values] if isinstance(values, list) else values
        )
    return described


def json_value(value: Any) -> Any:
    """A filter value as JSON: dates in ISO form, decimals as text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)
