"""The demo CRM: HubSpot's CRM search semantics answered from a local DuckDB file.

The file is the one ``playbook_assets.demo.generator.write_demo_crm`` generates (created on
first use).
Searches follow HubSpot's documented search API:

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

import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal

import duckdb
import pyarrow as pa
from sqlglot import exp

from playbook_assets.connections.crm.base import DEFAULT_RETRY_ATTEMPTS, CrmResource
from playbook_assets.connections.crm.values import (
    parse_boolean,
    parse_instant,
    parse_number,
)
from playbook_assets.connections.query_timeout import interrupt_after
from playbook_assets.core.errors import (
    SourceUnreachableError,
    StepTimeoutError,
    TerminalStepError,
    did_you_mean,
)
from playbook_assets.core.file_access import confined_connection
from playbook_assets.core.spec import SearchConfig, SearchFilter
from playbook_assets.demo.generator import ensure_demo_crm

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
OBJECTS = tuple(sorted(DEFAULT_PROPERTIES))
# Association name -> (output column, association table, key column, associated id column),
# per searched object. Only to-one associations become a column.
ASSOCIATIONS: dict[str, dict[str, tuple[str, str, str, str]]] = {
    "deals": {"companies": ("company_id", "deal_company", "deal_id", "company_id")},
    "contacts": {"companies": ("company_id", "contact_company", "contact_id", "company_id")},
    "companies": {},
}
_ASSOCIATION_ALIASES = {"company": "companies", "companies": "companies"}
_ID = "hs_object_id"

_Kind = Literal["text", "integer", "number", "boolean", "date", "timestamp"]


@dataclass
class _Parameters:
    """Values of the statement's ``$pN`` placeholders."""

    values: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any) -> exp.Expr:
        name = f"p{len(self.values) + 1}"
        self.values[name] = value
        return exp.Placeholder(this=name)


class DemoCrm(CrmResource):
    """The embedded demo CRM: a DuckDB file searched with HubSpot's search semantics.

    The file is created (at ``scale``) the first time it is searched.
    """

    kind: ClassVar[str] = "demo crm"
    # A locked file is retried by the step, which reruns the whole (local) search.
    retries_requests: ClassVar[bool] = False

    database: str
    scale: float = 1.0

    def search(
        self,
        request: SearchConfig,
        *,
        timeout_seconds: float | None = None,
        retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
    ) -> pa.Table:
        """Run the search and return every matching record (up to ``request.limit``); the
        step retries it (``retry_attempts`` is unused)."""
        request = self.mapped(request)
        table = _object_table(request.object)
        ensure_demo_crm(Path(self.database), self.scale)
        timed_out = threading.Event()
        try:
            with confined_connection(self.database, read_only=True) as con:
                columns = object_columns(con, table)
                sql, params = build_search_query(table, columns, request)
                with interrupt_after(con, timeout_seconds) as timed_out:
                    return con.sql(sql, params=params).to_arrow_table()
        except duckdb.IOException as e:
            raise SourceUnreachableError(
                f"cannot open the demo CRM file {self.database}: {e}",
                hint="check connections.<name>.database; another process may be writing it",
            ) from e
        except duckdb.Error as e:
            if timed_out.is_set():
                raise StepTimeoutError(
                    f"the search ran longer than {timeout_seconds:g} s and was cancelled",
                    hint="raise timeout_seconds on the step or in execution.timeout_seconds",
                ) from e
            raise TerminalStepError(f"demo CRM search on '{table}' failed: {e}") from e

    def describe_request(self, request: SearchConfig) -> dict[str, Any]:
        """The HubSpot search API request body (filterGroups, properties, sorts, limit)."""
        request = self.mapped(request)
        table = request.object.strip().lower()
        properties = list(request.properties) or list(DEFAULT_PROPERTIES.get(table, ()))
        body: dict[str, Any] = {
            "filterGroups": [
                {"filters": [_describe_filter(f) for f in group]} for group in request.groups()
            ],
            "properties": properties,
            "sorts": [
                {"propertyName": sort.property, "direction": sort.direction}
                for sort in request.sorts
            ],
        }
        if request.limit is not None:
            body["limit"] = request.limit
        return body


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------


def _object_table(name: str) -> str:
    table = name.strip().lower()
    if table in DEFAULT_PROPERTIES:
        return table
    raise TerminalStepError(
        f"unknown CRM object '{name}'",
        field="object",
        hint=_names_hint(name, OBJECTS, "objects of the demo CRM"),
    )


def _names_hint(name: str, candidates: tuple[str, ...] | list[str], listing: str) -> str:
    suggestion = did_you_mean(name, candidates)
    names = f"{listing}: {', '.join(sorted(candidates))}"
    return f"{suggestion} {names}" if suggestion else names


def object_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, _Kind]:
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


def _kind(data_type: str) -> _Kind:
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


def _check_property(name: str, columns: dict[str, _Kind], table: str, where: str) -> str:
    if name in columns:
        return name
    hint = _names_hint(name, list(columns), f"properties of {table}")
    if name.lower() in {"associated_company", "associatedcompanyid", "company_id", "company"}:
        hint = f"use 'associations: [companies]' to get company_id; {hint}"
    raise TerminalStepError(f"unknown {table} property '{name}'", field=where, hint=hint)


def _association_columns(table: str, names: list[str]) -> list[tuple[str, str, str, str]]:
    available = ASSOCIATIONS[table]
    found: list[tuple[str, str, str, str]] = []
    for name in names:
        key = _ASSOCIATION_ALIASES.get(name.strip().lower(), name.strip().lower())
        if key not in available:
            listing = ", ".join(sorted(available)) or "none"
            raise TerminalStepError(
                f"{table} have no '{name}' association in the demo CRM",
                field="associations",
                hint=f"associations of {table}: {listing}",
            )
        if available[key] not in found:
            found.append(available[key])
    return found


# ---------------------------------------------------------------------------------------------
# Query
# ---------------------------------------------------------------------------------------------


def build_search_query(
    table: str, columns: dict[str, _Kind], request: SearchConfig
) -> tuple[str, dict[str, Any]]:
    properties: list[str] = []
    for name in request.properties or DEFAULT_PROPERTIES[table]:
        _check_property(name, columns, table, "properties")
        if name != _ID and name not in properties:
            properties.append(name)
    associations = _association_columns(table, request.associations)

    params = _Parameters()
    groups_field = "filter_groups" if request.filter_groups else "filters"
    group_conditions: list[exp.Expr] = []
    for group in request.groups():
        conditions = [_condition(f, columns, table, params, groups_field) for f in group]
        if conditions:
            group_conditions.append(exp.and_(*conditions))

    selected: list[exp.Expr] = [_column(_ID)]
    selected += [_column(name) for name in properties]
    query = exp.select(*selected).from_(exp.to_table(table, alias="t"))
    for index, (output, assoc_table, key, target) in enumerate(associations):
        alias = f"a{index}"
        linked = (
            exp.select(
                exp.column(key, quoted=True),
                exp.alias_(exp.func("min", exp.column(target, quoted=True)), output, quoted=True),
            )
            .from_(exp.to_table(assoc_table))
            .group_by(exp.column(key, quoted=True))
        )
        query = query.join(
            linked.subquery(alias),
            on=exp.column(key, table=alias, quoted=True).eq(_column(_ID)),
            join_type="left",
        ).select(exp.column(output, table=alias, quoted=True), append=True)
    if group_conditions:
        query = query.where(exp.or_(*group_conditions))

    order: list[exp.Ordered] = []
    for sort in request.sorts:
        _check_property(sort.property, columns, table, "sorts")
        descending = sort.direction == "DESCENDING"
        order.append(exp.Ordered(this=_column(sort.property), desc=descending, nulls_first=False))
    order.append(exp.Ordered(this=_column(_ID), desc=False, nulls_first=False))
    query = query.order_by(*order)
    if request.limit is not None:
        query = query.limit(int(request.limit))
    return query.sql(dialect="duckdb"), params.values


def _column(name: str) -> exp.Column:
    return exp.column(name, table="t", quoted=True)


def _condition(
    spec: SearchFilter,
    columns: dict[str, _Kind],
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
        return params.add(_coerce(raw, kind, name, operator))

    def comparable(expression: exp.Expr) -> exp.Expr:
        if kind == "text":
            return exp.Lower(this=expression)
        if kind == "date":
            return exp.cast(expression, exp.DataType.Type.TIMESTAMP)
        return expression

    has_value: exp.Expr = exp.Not(this=exp.Is(this=column, expression=exp.Null()))
    if kind == "text":
        has_value = exp.and_(has_value, exp.NEQ(this=column, expression=exp.Literal.string("")))

    if operator == "HAS_PROPERTY":
        return _never_null(has_value)
    if operator == "NOT_HAS_PROPERTY":
        return exp.Not(this=_never_null(has_value))
    if operator == "CONTAINS_TOKEN":
        return _never_null(_contains_tokens(column, spec.value, name, params))

    target = comparable(column)
    if operator in {"EQ", "NEQ"}:
        equal = _never_null(exp.EQ(this=target, expression=comparable(value(spec.value))))
        return equal if operator == "EQ" else exp.Not(this=equal)
    if operator in {"LT", "LTE", "GT", "GTE"}:
        builders = {"LT": exp.LT, "LTE": exp.LTE, "GT": exp.GT, "GTE": exp.GTE}
        return _never_null(
            builders[operator](this=target, expression=comparable(value(spec.value)))
        )
    if operator == "BETWEEN":
        between = exp.Between(
            this=target,
            low=comparable(value(spec.value)),
            high=comparable(value(spec.high_value)),
        )
        return _never_null(between)
    # IN / NOT_IN
    raw_values = spec.values
    if not isinstance(raw_values, list):
        raise TerminalStepError(
            f"operator {operator} on '{name}' needs a list of values, got {raw_values!r}",
            field=where,
            hint="give 'values' as a YAML list or a ${steps.ID.COLUMN} reference",
        )
    if raw_values:
        member = _never_null(
            exp.In(this=target, expressions=[comparable(value(v)) for v in raw_values])
        )
    else:
        member = exp.false()  # an empty list matches nothing
    return member if operator == "IN" else exp.Not(this=member)


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


def _coerce(raw: Any, kind: _Kind, name: str, operator: str) -> Any:
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


def _describe_filter(spec: SearchFilter) -> dict[str, Any]:
    described: dict[str, Any] = {"propertyName": spec.property, "operator": spec.operator}
    if spec.value is not None:
        described["value"] = _json_value(spec.value)
    if spec.high_value is not None:
        described["highValue"] = _json_value(spec.high_value)
    if spec.values is not None:
        values = spec.values
        described["values"] = (
            [_json_value(v) for v in values] if isinstance(values, list) else values
        )
    return described


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)
