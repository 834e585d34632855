"""A local Salesforce stand-in: an org with Salesforce's standard objects and picklist values,
the REST query and describe APIs and the SOAP login, over TLS.

The org's records are derived from a demo CRM DuckDB file: companies -> Account, deals ->
Opportunity, contacts -> Contact, with Salesforce's own ids (18 characters: a 3-character
key prefix, ``001`` Account, ``003`` Contact, ``005`` User, ``006`` Opportunity) and the
standard picklist values of a new org (Salesforce Help, "Opportunity Fields" and "Account
Fields"): ``StageName`` Prospecting, Qualification, Needs Analysis, Value Proposition, Id.
Decision Makers, Perception Analysis, Proposal/Price Quote, Negotiation/Review, Closed Won,
Closed Lost; Opportunity ``Type`` New Customer, Existing Customer - Upgrade / - Replacement /
- Downgrade; Account ``Type`` Prospect, Customer - Direct, Customer - Channel, Channel
Partner / Reseller, Installation Partner, Technology Partner, Other. Custom fields:
``Pipeline__c`` (text) and ``Last_Activity_At__c`` (date-time) on Opportunity. It imports
nothing of the product.

What it implements, each as documented (REST API Developer Guide, "Query", "sObject
Describe", "Status Codes and Error Responses"; SOQL and SOSL Reference):

- ``POST /services/Soap/u/{version}``: the partner API login (user name, password + security
  token), answering ``sessionId`` and ``serverUrl``, or a SOAP fault INVALID_LOGIN;
- ``GET /services/data/v{version}/sobjects/{sObject}/describe``: ``fields`` with ``name``,
  ``type`` (id, reference, string, picklist, url, email, currency, double, percent, int,
  boolean, date, datetime), ``custom`` and ``picklistValues``; 404 NOT_FOUND for an unknown
  sObject;
- ``GET /services/data/v{version}/query?q=SOQL`` and ``queryAll``: the SOQL is parsed (the
  subset the executor emits: SELECT fields FROM object [WHERE ...] [ORDER BY ...] [LIMIT n]),
  checked (unknown field or object, a literal of the wrong type, a bad escape, an id that is
  not 15 or 18 characters) and run on DuckDB with every value bound as a parameter; results
  come in batches of ``batch_size`` records (2000 in Salesforce) with ``nextRecordsUrl``
  until ``done``;
- field names are case-insensitive in SOQL and the records use the org's spelling ("SOQL
  and SOSL Reference": "field names are case insensitive"; the reply's keys are the field
  names as the describe call spells them);
- the request limit ("Salesforce Developer Limits": "the length of the URI plus the headers
  can't exceed 16,384 bytes"): past it the answer is ``414 URI Too Long``; which status a
  request whose headers, not its URI, are too long gets is not written down, so
  ``too_long_status=431`` (Request Header Fields Too Large) answers every over-long request
  with 431 instead, and the product is tested against both;
- errors as Salesforce sends them: ``[{"message": ..., "errorCode": ...}]`` with 400
  (MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE, INVALID_QUERY_FILTER_OPERATOR), 401
  INVALID_SESSION_ID (an unknown or expired bearer token) and 403 REQUEST_LIMIT_EXCEEDED
  (injected: "TotalRequests Limit exceeded." for the org's daily limit,
  "ConcurrentPerOrgLongTxn Limit exceeded." for the concurrent long request limit).

SOQL semantics reproduced: text comparisons (picklists too) ignore case, ``!=`` and ``NOT IN``
match NULLs, ``= null`` / ``!= null`` test for no value, LIKE with ``%`` / ``_`` and the
``\\%`` / ``\\_`` escapes, default ordering NULLS FIRST ascending and NULLS LAST descending.
"""

from __future__ import annotations

import itertools
import json
import re
import ssl
import threading
import xml.etree.ElementTree as ET
from collections import deque
from datetime import UTC, date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
import trustme

from standins.local_http import LocalHttpServer, QuietHandler

MAX_REQUEST_BYTES = 16_384
STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
OPPORTUNITY_TYPES = (
    "New Customer",
    "Existing Customer - Upgrade",
    "Existing Customer - Replacement",
    "Existing Customer - Downgrade",
)
ACCOUNT_TYPES = (
    "Prospect",
    "Customer - Direct",
    "Customer - Channel",
    "Channel Partner / Reseller",
    "Installation Partner",
    "Technology Partner",
    "Other",
)
PREFIXES = {"Account": "001", "Contact": "003", "User": "005", "Opportunity": "006"}


def salesforce_id(sobject: str, number: int) -> str:
    """The org's 18-character id of a demo record: key prefix, 12 digits, and the case
    checksum, which is ``AAA`` for a 15-character id without capital letters."""
    return f"{PREFIXES[sobject]}{number:012d}AAA"


def _id_sql(sobject: str, column: str) -> str:
    return f"'{PREFIXES[sobject]}' || lpad(CAST({column} AS VARCHAR), 12, '0') || 'AAA'"


_STAGE_SQL = """CASE d.dealstage
    WHEN 'appointmentscheduled' THEN 'Prospecting'
    WHEN 'qualifiedtobuy' THEN IF(d.hs_object_id % 2 = 0, 'Qualification', 'Needs Analysis')
    WHEN 'presentationscheduled' THEN 'Value Proposition'
    WHEN 'decisionmakerboughtin'
        THEN IF(d.hs_object_id % 2 = 0, 'Id. Decision Makers', 'Perception Analysis')
    WHEN 'contractsent'
        THEN IF(d.hs_object_id % 2 = 0, 'Proposal/Price Quote', 'Negotiation/Review')
    WHEN 'closedwon' THEN 'Closed Won'
    WHEN 'closedlost' THEN 'Closed Lost' END"""
# Probability of each standard stage (Setup > Opportunity Stages in a new org).
_PROBABILITY_SQL = """CASE "StageName" WHEN 'Prospecting' THEN 10 WHEN 'Qualification' THEN 10
    WHEN 'Needs Analysis' THEN 20 WHEN 'Value Proposition' THEN 50
    WHEN 'Id. Decision Makers' THEN 60 WHEN 'Perception Analysis' THEN 70
    WHEN 'Proposal/Price Quote' THEN 75 WHEN 'Negotiation/Review' THEN 90
    WHEN 'Closed Won' THEN 100 ELSE 0 END"""

# sObject -> (SQL over the demo tables, [(field, describe type, custom, picklist values)]).
_OBJECTS: dict[str, tuple[str, list[tuple[str, str, bool, tuple[str, ...]]]]] = {
    "Opportunity": (
        f"""
        SELECT *, CAST({_PROBABILITY_SQL} AS DOUBLE) AS "Probability" FROM (
        SELECT {_id_sql("Opportunity", "d.hs_object_id")} AS "Id", d.dealname AS "Name",
               CAST(d.amount AS DOUBLE) AS "Amount", d.closedate AS "CloseDate",
               {_STAGE_SQL} AS "StageName",
               IF(d.dealtype = 'newbusiness', 'New Customer',
                  ['Existing Customer - Upgrade', 'Existing Customer - Replacement',
                   'Existing Customer - Downgrade'][d.hs_object_id % 3 + 1]) AS "Type",
               d.hs_is_closed AS "IsClosed", d.dealstage = 'closedwon' AS "IsWon",
               {_id_sql("User", "d.hubspot_owner_id")} AS "OwnerId",
               d.createdate AS "CreatedDate", d.hs_lastmodifieddate AS "LastModifiedDate",
               {_id_sql("Account", "a.company_id")} AS "AccountId",
               d.pipeline AS "Pipeline__c", d.hs_lastmodifieddate AS "Last_Activity_At__c"
        FROM crm.deals AS d
        LEFT JOIN (SELECT deal_id, min(company_id) AS company_id FROM crm.deal_company
                   GROUP BY deal_id) AS a ON a.deal_id = d.hs_object_id)
        """,
        [
            ("Id", "id", False, ()),
            ("Name", "string", False, ()),
            ("Amount", "currency", False, ()),
            ("CloseDate", "date", False, ()),
            ("StageName", "picklist", False, STAGES),
            ("Type", "picklist", False, OPPORTUNITY_TYPES),
            ("IsClosed", "boolean", False, ()),
            ("IsWon", "boolean", False, ()),
            ("OwnerId", "reference", False, ()),
            ("CreatedDate", "datetime", False, ()),
            ("LastModifiedDate", "datetime", False, ()),
            ("AccountId", "reference", False, ()),
            ("Pipeline__c", "string", True, ()),
            ("Last_Activity_At__c", "datetime", True, ()),
            ("Probability", "percent", False, ()),
        ],
    ),
    "Account": (
        f"""
        SELECT {_id_sql("Account", "hs_object_id")} AS "Id", name AS "Name",
               domain AS "Website", industry AS "Industry",
               CAST(annualrevenue AS DOUBLE) AS "AnnualRevenue",
               numberofemployees AS "NumberOfEmployees",
               CASE WHEN lifecyclestage = 'customer'
                    THEN IF(hs_object_id % 2 = 0, 'Customer - Direct', 'Customer - Channel')
                    ELSE 'Channel Partner / Reseller' END AS "Type",
               {_id_sql("User", "hubspot_owner_id")} AS "OwnerId",
               createdate AS "CreatedDate", hs_lastmodifieddate AS "LastModifiedDate"
        FROM crm.companies
        """,
        [
            ("Id", "id", False, ()),
            ("Name", "string", False, ()),
            ("Website", "url", False, ()),
            ("Industry", "picklist", False, ()),  # the values found in the data
            ("AnnualRevenue", "currency", False, ()),
            ("NumberOfEmployees", "int", False, ()),
            ("Type", "picklist", False, ACCOUNT_TYPES),
            ("OwnerId", "reference", False, ()),
            ("CreatedDate", "datetime", False, ()),
            ("LastModifiedDate", "datetime", False, ()),
        ],
    ),
    "Contact": (
        f"""
        SELECT {_id_sql("Contact", "c.hs_object_id")} AS "Id", c.email AS "Email",
               c.firstname AS "FirstName", c.lastname AS "LastName", c.jobtitle AS "Title",
               c.createdate AS "CreatedDate", c.lastmodifieddate AS "LastModifiedDate",
               {_id_sql("Account", "a.company_id")} AS "AccountId"
        FROM crm.contacts AS c
        LEFT JOIN (SELECT contact_id, min(company_id) AS company_id FROM crm.contact_company
                   GROUP BY contact_id) AS a ON a.contact_id = c.hs_object_id
        """,
        [
            ("Id", "id", False, ()),
            ("Email", "email", False, ()),
            ("FirstName", "string", False, ()),
            ("LastName", "string", False, ()),
            ("Title", "string", False, ()),
            ("CreatedDate", "datetime", False, ()),
            ("LastModifiedDate", "datetime", False, ()),
            ("AccountId", "reference", False, ()),
        ],
    ),
}
# Describe type -> the kind of literal SOQL takes for it.
_KINDS = {
    "id": "id",
    "reference": "id",
    "string": "text",
    "picklist": "text",
    "url": "text",
    "email": "text",
    "currency": "number",
    "double": "number",
    "percent": "number",
    "int": "integer",
    "boolean": "boolean",
    "date": "date",
    "datetime": "datetime",
}
_ID = re.compile(r"[A-Za-z0-9]{15}([A-Za-z0-9]{3})?")

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op>!=|<=|>=|=|<|>|\(|\)|,)
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE | re.DOTALL,
)
_SIMPLE_ESCAPES = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
}
_KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "LIMIT"}
_LITERAL_KIND = {"id": "string", "text": "string"}


class SoqlError(Exception):
    """A query Salesforce rejects: HTTP 400 with an errorCode."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Parser:
    """SOQL (the executor's subset) -> a DuckDB statement with ``$pN`` parameters."""

    def __init__(self, soql: str) -> None:
        self.soql = soql
        self.tokens = self._tokenize(soql)
        self.position = 0
        self.params: dict[str, Any] = {}
        self.kinds: dict[str, str] = {}
        self.sobject = ""

    @staticmethod
    def _tokenize(soql: str) -> list[tuple[str, str]]:
        tokens: list[tuple[str, str]] = []
        index = 0
        text = soql.rstrip()
        while index < len(text):
            match = _TOKEN.match(text, index)
            if match is None or match.lastgroup is None:
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text[index:][:20]}'")
            tokens.append((match.lastgroup, match.group(match.lastgroup)))
            index = match.end()
        return tokens

    # -- token helpers
    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _keyword(self, *words: str) -> bool:
        token = self._peek()
        if token and token[0] == "word" and token[1].upper() in words:
            self.position += 1
            return True
        return False

    def _expect_keyword(self, word: str) -> None:
        if not self._keyword(word):
            raise SoqlError("MALFORMED_QUERY", f"expecting '{word}' near {self._peek()}")

    def _op(self, *ops: str) -> str | None:
        token = self._peek()
        if token and token[0] == "op" and token[1] in ops:
            self.position += 1
            return token[1]
        return None

    def _next(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise SoqlError("MALFORMED_QUERY", "unexpected end of query")
        self.position += 1
        return token

    def _field(self) -> str:
        kind, text = self._next()
        if kind != "word" or text.upper() in _KEYWORDS:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text}'")
        return self._resolve(text)

    def _resolve(self, text: str) -> str:
        for name in self.kinds:
            if name.lower() == text.lower():
                return name
        raise SoqlError(
            "INVALID_FIELD",
            f"\n{self.soql}\nERROR at Row:1:Column:1\nNo such column '{text}' on entity "
            f"'{self.sobject}'. If you are attempting to use a custom field, be sure to append "
            "the '__c' after the custom field name. Please reference your WSDL or the describe "
            "call for the appropriate names.",
        )

    def _param(self, value: Any) -> str:
        name = f"p{len(self.params) + 1}"
        self.params[name] = value
        return f"${name}"

    # -- grammar
    def parse(self) -> tuple[str, list[str], str]:
        """(DuckDB SQL, selected fields, sObject)."""
        self._expect_keyword("SELECT")
        raw_fields = [self._next()]
        while self._op(","):
            raw_fields.append(self._next())
        self._expect_keyword("FROM")
        kind, sobject = self._next()
        found = next((name for name in _OBJECTS if name.lower() == sobject.lower()), None)
        if kind != "word" or found is None:
            raise SoqlError(
                "INVALID_TYPE",
                f"\n{self.soql}\nERROR at Row:1:Column:1\nsObject type '{sobject}' is not "
                "supported. If you are attempting to use a custom object, be sure to append "
                "the '__c' after the entity name.",
            )
        self.sobject = found
        self.kinds = {name: _KINDS[kind] for name, kind, _, _ in _OBJECTS[found][1]}
        fields: list[str] = []
        for kind, text in raw_fields:
            if kind != "word" or text.upper() in _KEYWORDS:
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text}'")
            fields.append(self._resolve(text))
        sql = "SELECT " + ", ".join(f'"{f}"' for f in fields) + f' FROM "{found}"'
        if self._keyword("WHERE"):
            sql += " WHERE " + self._or()
        if self._keyword("ORDER"):
            self._expect_keyword("BY")
            keys = [self._order_key()]
            while self._op(","):
                keys.append(self._order_key())
            sql += " ORDER BY " + ", ".join(keys)
        if self._keyword("LIMIT"):
            kind, text = self._next()
            if kind != "number" or not text.isdigit():
                raise SoqlError("MALFORMED_QUERY", f"LIMIT takes a number, got '{text}'")
            sql += f" LIMIT {int(text)}"
        if self._peek() is not None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{self._peek()}'")
        return sql, fields, found

    def _order_key(self) -> str:
        field = self._field()
        descending = self._keyword("DESC")
        if not descending:
            self._keyword("ASC")
        nulls_last = descending
        if self._keyword("NULLS"):
            if self._keyword("LAST"):
                nulls_last = True
            else:
                self._expect_keyword("FIRST")
                nulls_last = False
        return (
            f'"{field}" {"DESC" if descending else "ASC"} NULLS {"LAST" if nulls_last else "FIRST"}'
        )

    def _or(self) -> str:
        parts = [self._and()]
        while self._keyword("OR"):
            parts.append(self._and())
        return "(" + " OR ".join(parts) + ")"

    def _and(self) -> str:
        parts = [self._unary()]
        while self._keyword("AND"):
            parts.append(self._unary())
        return "(" + " AND ".join(parts) + ")"

    def _unary(self) -> str:
        if self._keyword("NOT"):
            return f"(NOT COALESCE({self._unary()}, false))"
        if self._op("("):
            inner = self._or()
            if not self._op(")"):
                raise SoqlError("MALFORMED_QUERY", "missing ')'")
            return inner
        return self._comparison()

    def _comparison(self) -> str:
        field = self._field()
        kind = self.kinds[field]
        column = f'"{field}"'
        text_like = kind in {"id", "text"}
        target = f"lower({column})" if text_like else column
        if self._keyword("LIKE"):
            token_kind, raw = self._next()
            if token_kind != "string" or not text_like:
                raise SoqlError("INVALID_FIELD", f"invalid operator on field '{field}': LIKE")
            pattern = self._param(_like_pattern(raw))
            return f"COALESCE({column} ILIKE {pattern} ESCAPE '\\', false)"
        negated = self._keyword("NOT")
        if self._keyword("IN"):
            if not self._op("("):
                raise SoqlError("MALFORMED_QUERY", "IN needs '('")
            values = [self._literal(field, kind)]
            while self._op(","):
                values.append(self._literal(field, kind))
            if not self._op(")"):
                raise SoqlError("MALFORMED_QUERY", "missing ')'")
            listed = ", ".join(self._param(v) for v in values)
            member = f"COALESCE({target} IN ({listed}), false)"
            return f"(NOT {member})" if negated else member
        if negated:
            raise SoqlError("MALFORMED_QUERY", "NOT must be followed by IN")
        op = self._op("=", "!=", "<", "<=", ">", ">=")
        if op is None:
            raise SoqlError("MALFORMED_QUERY", f"expecting an operator after '{field}'")
        token = self._peek()
        if token is not None and token[0] == "word" and token[1].lower() == "null":
            self.position += 1
            if op not in {"=", "!="}:
                raise SoqlError("MALFORMED_QUERY", f"null can only be used with = and !=: {op}")
            return f"({column} IS {'NOT ' if op == '!=' else ''}NULL)"
        value = self._param(self._literal(field, kind))
        if op == "!=":
            return f"({target} IS DISTINCT FROM {value})"
        return f"COALESCE({target} {op} {value}, false)"

    def _literal(self, field: str, kind: str) -> Any:
        token_kind, raw = self._next()
        expected = _LITERAL_KIND.get(kind, kind)
        if token_kind == "word" and raw.lower() in {"true", "false"}:
            token_kind, value = "boolean", raw.lower() == "true"
        elif token_kind == "string":
            value = _unquote(raw)
        elif token_kind == "number":
            value = Decimal(raw)
            token_kind = "integer" if kind == "integer" and "." not in raw else "number"
        elif token_kind == "date":
            value = date.fromisoformat(raw)
        elif token_kind == "datetime":
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            value = parsed.astimezone(UTC).replace(tzinfo=None)
        else:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{raw}'")
        if kind == "integer" and isinstance(value, Decimal) and value == int(value):
            token_kind = "integer"
        if token_kind != expected:
            quoted = " and should not be enclosed in quotes" if token_kind == "string" else ""
            named = {"datetime": "dateTime", "number": "double"}.get(kind, kind)
            raise SoqlError(
                "INVALID_FIELD",
                f"value of filter criterion for field '{field}' must be of type {named}{quoted}",
            )
        if kind == "id" and not _ID.fullmatch(str(value)):
            raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value}")
        return value.lower() if isinstance(value, str) else value


def _unquote(raw: str) -> str:
    """The value of a SOQL quoted string; a backslash outside the escapes is an error."""
    body = raw[1:-1]
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        escape = body[index + 1 : index + 2]
        if escape.lower() in _SIMPLE_ESCAPES or escape in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES.get(escape, _SIMPLE_ESCAPES.get(escape.lower(), "")))
            index += 2
        elif escape == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[index + 2 : index + 6]):
            out.append(chr(int(body[index + 2 : index + 6], 16)))
            index += 6
        else:
            raise SoqlError("MALFORMED_QUERY", f"invalid escape sequence: '\\{escape}'")
    return "".join(out)


def _like_pattern(raw: str) -> str:
    """A SOQL LIKE string as a DuckDB pattern with ESCAPE '\\'."""
    body = raw[1:-1]
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and body[index + 1 : index + 2] in {"%", "_"}:
            out.append("\\" + body[index + 1])
            index += 2
            continue
        if char == "\\":
            end = index + (6 if body[index + 1 : index + 2] == "u" else 2)
            decoded = _unquote("'" + body[index:end] + "'")
            out.append("\\\\" if decoded == "\\" else decoded)
            index = end
            continue
        out.append(char)
        index += 1
    return "".join(out)


def parse_soql(soql: str) -> tuple[str, dict[str, Any], list[str], str]:
    """SOQL -> (DuckDB SQL, parameters, selected fields, sObject); raises SoqlError."""
    parser = _Parser(soql)
    sql, fields, sobject = parser.parse()
    return sql, parser.params, fields, sobject


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


class SalesforceStandIn(LocalHttpServer):
    """The stand-in server; use as a context manager. ``instance_url`` and ``ca_path`` are
    what a client needs; ``users`` maps user names to password + security token."""

    def __init__(
        self,
        crm_path: Path,
        folder: Path,
        *,
        batch_size: int = 2000,
        version: str = "59.0",
        users: dict[str, str] | None = None,
        too_long_status: int = 414,
    ) -> None:
        self.batch_size = batch_size
        self.version = version
        self.users = users or {}
        self.too_long_status = too_long_status
        self.sessions: set[str] = set()
        self.queries: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.statuses: list[int] = []
        self.logins = 0
        self._failures: deque[tuple[int, str, str]] = deque()
        self._cursors: dict[str, list[dict[str, Any]]] = {}
        self._counter = itertools.count(1)
        self._expire_in: int | None = None
        self._lock = threading.Lock()
        self._con = duckdb.connect()
        self._con.execute("ATTACH $path AS crm (READ_ONLY)", {"path": str(crm_path)})
        for name, (select, fields) in _OBJECTS.items():
            self._con.execute(f'CREATE TABLE "{name}" AS {select}')
            for field, kind, _, _ in fields:  # Salesforce keeps date-times to the millisecond
                if kind == "datetime":
                    self._con.execute(
                        f'UPDATE "{name}" SET "{field}" = date_trunc(\'millisecond\', "{field}")'
                    )
        self._con.execute("DETACH crm")
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_path = folder / "salesforce-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self._ssl)
        super().__init__(_handler(self), tls=self._ssl)
        self.instance_url = self.base_url

    def close(self) -> None:
        self._con.close()

    def records(self, sobject: str) -> list[dict[str, Any]]:
        """The org's records of an sObject (Python values), ordered by Id."""
        cursor = self._con.cursor()
        try:
            relation = cursor.sql(f'SELECT * FROM "{sobject}" ORDER BY "Id"')
            names = relation.columns
            return [dict(zip(names, row, strict=True)) for row in relation.fetchall()]
        finally:
            cursor.close()

    # -- test controls
    def new_session(self) -> str:
        """A valid session id (what an OAuth flow would hand out)."""
        token = f"00D000000000001!AQ{next(self._counter):012d}"
        with self._lock:
            self.sessions.add(token)
        return token

    def expire_sessions(self) -> None:
        """Every session issued so far becomes invalid (INVALID_SESSION_ID)."""
        with self._lock:
            self.sessions.clear()

    def expire_after(self, requests: int) -> None:
        """Every session expires once ``requests`` more REST requests have been served."""
        with self._lock:
            self._expire_in = requests

    def fail_next(self, status: int, code: str, message: str, times: int = 1) -> None:
        """The next ``times`` REST requests fail with this Salesforce error body."""
        with self._lock:
            self._failures.extend([(status, code, message)] * times)

    def limit_exceeded(self, times: int = 1) -> None:
        """The next requests meet the org's used-up daily request limit."""
        self.fail_next(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", times)

    def concurrent_limit_exceeded(self, times: int = 1) -> None:
        """The next requests meet the limit of concurrent long-running requests."""
        self.fail_next(
            403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.", times
        )

    def reset(self) -> None:
        """Forget recorded requests and pending failures."""
        with self._lock:
            self.queries.clear()
            self.requests.clear()
            self.statuses.clear()
            self._failures.clear()

    # -- request handling
    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        """(status, content type, body) for one request."""
        with self._lock:
            self.requests.append((method, path))
        size = len(path.encode()) + sum(len(k) + len(v) + 4 for k, v in headers.items())
        if size > MAX_REQUEST_BYTES:
            too_long = "URI Too Long" if self.too_long_status == 414 else "Header Fields Too Large"
            return self.too_long_status, "text/html", f"<h1>{too_long}</h1>".encode()
        url = urlsplit(path)
        if method == "POST" and url.path == f"/services/Soap/u/{self.version}":
            return self._login(body)
        prefix = f"/services/data/v{self.version}/"
        if method != "GET" or not url.path.startswith(prefix):
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        token = headers.get("authorization", "").removeprefix("Bearer ")
        with self._lock:
            if self._expire_in is not None:
                if self._expire_in <= 0:
                    self.sessions.clear()
                    self._expire_in = None
                else:
                    self._expire_in -= 1
            valid = token in self.sessions
            failure = self._failures.popleft() if valid and self._failures else None
        if not valid:
            return _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if failure is not None:
            return _error(*failure)
        rest = url.path[len(prefix) :].rstrip("/")
        if rest in {"query", "queryAll"}:
            soql = parse_qs(url.query).get("q", [""])[0]
            return self._query(soql)
        match = re.fullmatch(r"(?:query|queryAll)/(01g\w+)-(\d+)", rest)
        if match is not None:
            return self._page(match.group(1), int(match.group(2)))
        match = re.fullmatch(r"sobjects/(\w+)/describe", rest)
        if match is not None:
            return self._describe(match.group(1))
        return _error(404, "NOT_FOUND", "The requested resource does not exist")

    def _describe(self, name: str) -> tuple[int, str, bytes]:
        found = next((o for o in _OBJECTS if o.lower() == name.lower()), None)
        if found is None:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        fields = []
        for field, kind, custom, listed in _OBJECTS[found][1]:
            values = listed
            if kind == "picklist" and not values:
                cursor = self._con.cursor()
                try:
                    rows = cursor.sql(
                        f'SELECT DISTINCT "{field}" FROM "{found}" WHERE "{field}" IS NOT NULL '
                        "ORDER BY 1"
                    ).fetchall()
                finally:
                    cursor.close()
                values = tuple(str(row[0]) for row in rows)
            fields.append(
                {
                    "name": field,
                    "label": field.removesuffix("__c").replace("_", " "),
                    "type": kind,
                    "custom": custom,
                    "nillable": field != "Id",
                    "filterable": True,
                    "sortable": True,
                    "picklistValues": [
                        {
                            "active": True,
                            "defaultValue": False,
                            "label": value,
                            "validFor": None,
                            "value": value,
                        }
                        for value in values
                    ],
                    "restrictedPicklist": bool(values),
                    "referenceTo": (
                        [{"OwnerId": "User", "AccountId": "Account"}[field]]
                        if kind == "reference"
                        else []
                    ),
                }
            )
        body = {"name": found, "label": found, "custom": False, "fields": fields}
        return 200, "application/json", json.dumps(body).encode()

    def _query(self, soql: str) -> tuple[int, str, bytes]:
        with self._lock:
            self.queries.append(soql)
        try:
            sql, params, fields, sobject = parse_soql(soql)
        except SoqlError as e:
            return _error(400, e.code, e.message)
        cursor = self._con.cursor()
        try:
            rows = cursor.execute(sql, params).fetchall()
        finally:
            cursor.close()
        records = [
            {
                "attributes": {
                    "type": sobject,
                    "url": f"/services/data/v{self.version}/sobjects/{sobject}/{row[0]}",
                },
                **{f: _json_value(v) for f, v in zip(fields, row, strict=True)},
            }
            for row in rows
        ]
        locator = f"01g{next(self._counter):015d}"
        with self._lock:
            self._cursors[locator] = records
        return self._page(locator, 0)

    def _page(self, locator: str, offset: int) -> tuple[int, str, bytes]:
        with self._lock:
            records = self._cursors.get(locator)
        if records is None:
            return _error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        end = offset + self.batch_size
        body: dict[str, Any] = {
            "totalSize": len(records),
            "done": end >= len(records),
            "records": records[offset:end],
        }
        if end < len(records):
            body["nextRecordsUrl"] = f"/services/data/v{self.version}/query/{locator}-{end}"
        return 200, "application/json", json.dumps(body).encode()

    def _login(self, body: bytes) -> tuple[int, str, bytes]:
        ns = {"n": "urn:partner.soap.sforce.com"}
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return _login_fault("INVALID_LOGIN", "malformed request")
        username = root.findtext(".//n:username", default="", namespaces=ns)
        password = root.findtext(".//n:password", default="", namespaces=ns)
        if self.users.get(username) != password:
            return _login_fault(
                "INVALID_LOGIN", "Invalid username, password, security token; or user locked out."
            )
        self.logins += 1
        session = self.new_session()
        server = f"{self.instance_url}/services/Soap/u/{self.version}/00D000000000001"
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
            f"<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
            f"<serverUrl>{server}</serverUrl><sessionId>{session}</sessionId>"
            "<userId>005000000000001AAA</userId></result></loginResponse>"
            "</soapenv:Body></soapenv:Envelope>"
        )
        return 200, "text/xml; charset=utf-8", xml.encode()


def _error(status: int, code: str, message: str) -> tuple[int, str, bytes]:
    body = json.dumps([{"message": message, "errorCode": code}]).encode()
    return status, "application/json", body


def _login_fault(code: str, message: str) -> tuple[int, str, bytes]:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring>"
        f'<detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>{code}'
        f"</sf:exceptionCode><sf:exceptionMessage>{message}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return 500, "text/xml; charset=utf-8", xml.encode()


def _handler(standin: SalesforceStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, content_type, payload = standin.handle(method, self.path, headers, body)
            with standin._lock:
                standin.statuses.append(status)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler
