"""Salesforce: HubSpot-style ``search`` steps compiled to SOQL and run with simple-salesforce.

Names. A search names HubSpot objects and properties; ``object_mapping`` and ``field_mapping``
translate them to Salesforce sObjects and fields (merged over ``DEFAULT_OBJECTS`` and
``DEFAULT_FIELDS``: deals -> Opportunity, companies -> Account, contacts -> Contact;
dealname -> Name, amount -> Amount, closedate -> CloseDate, dealstage -> StageName,
company_id -> AccountId, hs_object_id -> Id, ...). A property without a mapping is sent as
written, so ``properties: [Pipeline__c]`` works; an unknown field comes back from Salesforce as
INVALID_FIELD and becomes a TerminalStepError with a did-you-mean against the mapping.
Picklist values are not translated: filters compare with the Salesforce values (for example
``StageName`` values such as ``Closed Won``), so parameters must hold those values.

Semantics. Filters follow the HubSpot operators, compiled to SOQL (see ``compile_search``):
string comparisons ignore case (as SOQL does), ``!=`` and ``NOT IN`` also match records
without a value (as in SOQL and HubSpot), HAS_PROPERTY is ``!= null``; CONTAINS_TOKEN is
``LIKE '%word%'`` per word (a substring match, not HubSpot's whole-word match; ``*`` is a
wildcard). Results are ordered by ``sorts`` (NULLS LAST), then ``Id``.

Values never change the statement: strings are quoted with SOQL's escapes (backslash, quotes,
control characters), numbers, booleans, dates (``YYYY-MM-DD``) and date-times
(``YYYY-MM-DDThh:mm:ssZ``) are written unquoted only after being parsed as such.

Output. ``hs_object_id`` first, then the requested properties under their HubSpot names, then
``company_id`` for ``associations: [companies]``. Values are typed: numbers and booleans as
Salesforce sends them, dates and date-times parsed (date-times as naive UTC timestamps, like
the demo CRM). Id columns (``Id`` and reference fields, whose names end in ``Id``) are text,
except when every value is made of digits: then they are BIGINT, so that ids loaded from a
system keyed by numbers (the demo data, a warehouse's ``account_id``) still join.

Errors. REQUEST_LIMIT_EXCEEDED is retried with exponential backoff and jitter, then raised as
TransientStepError; INVALID_SESSION_ID triggers one new login when username/password are set,
else (or if it happens again) a TerminalStepError; connection failures are
SourceUnreachableError; INVALID_FIELD, MALFORMED_QUERY and the other 4xx are TerminalStepError.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal, TypeVar

import pyarrow as pa
import requests
from pydantic import Field
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
)
from simple_salesforce.login import SalesforceLogin

from playbook_assets.crm.base import CrmResource
from playbook_assets.crm.demo import DEFAULT_PROPERTIES
from playbook_assets.crm.values import (
    DATE_FORMATS,
    bad_value,
    from_epoch_ms,
    parse_boolean,
    parse_number,
)
from playbook_assets.errors import (
    SourceUnreachableError,
    StepTimeoutError,
    TerminalStepError,
    TransientStepError,
    did_you_mean,
    unknown_name_hint,
)
from playbook_assets.spec import SearchConfig, SearchFilter

DEFAULT_OBJECTS: dict[str, str] = {
    "deals": "Opportunity",
    "companies": "Account",
    "contacts": "Contact",
}
_COMMON_FIELDS = {
    "hs_object_id": "Id",
    "hubspot_owner_id": "OwnerId",
    "createdate": "CreatedDate",
}
DEFAULT_FIELDS: dict[str, dict[str, str]] = {
    "deals": {
        **_COMMON_FIELDS,
        "dealname": "Name",
        "amount": "Amount",
        "closedate": "CloseDate",
        "dealstage": "StageName",
        "dealtype": "Type",
        "hs_is_closed": "IsClosed",
        "hs_is_closed_won": "IsWon",
        "hs_deal_stage_probability": "Probability",
        "hs_lastmodifieddate": "LastModifiedDate",
        "company_id": "AccountId",
    },
    "companies": {
        **_COMMON_FIELDS,
        "name": "Name",
        "domain": "Website",
        "industry": "Industry",
        "annualrevenue": "AnnualRevenue",
        "numberofemployees": "NumberOfEmployees",
        "lifecyclestage": "Type",
        "phone": "Phone",
        "country": "BillingCountry",
        "city": "BillingCity",
        "hs_lastmodifieddate": "LastModifiedDate",
    },
    "contacts": {
        **_COMMON_FIELDS,
        "email": "Email",
        "firstname": "FirstName",
        "lastname": "LastName",
        "jobtitle": "Title",
        "phone": "Phone",
        "lastmodifieddate": "LastModifiedDate",
        "company_id": "AccountId",
    },
}
_ID_PROPERTY = "hs_object_id"
_ASSOCIATIONS = {"companies": "company_id", "company": "company_id"}

_Kind = Literal["id", "text", "number", "integer", "boolean", "date", "datetime"]
# Types of the standard fields of the default mapping (Salesforce's field reference), used to
# write filter values as the right SOQL literal and to type empty results. Other fields are
# typed from their values.
STANDARD_FIELD_KINDS: dict[str, _Kind] = {
    "Id": "id",
    "AccountId": "id",
    "OwnerId": "id",
    "Name": "text",
    "StageName": "text",
    "Type": "text",
    "Website": "text",
    "Industry": "text",
    "Phone": "text",
    "BillingCountry": "text",
    "BillingCity": "text",
    "Email": "text",
    "FirstName": "text",
    "LastName": "text",
    "Title": "text",
    "Amount": "number",
    "AnnualRevenue": "number",
    "Probability": "number",
    "NumberOfEmployees": "integer",
    "IsClosed": "boolean",
    "IsWon": "boolean",
    "CloseDate": "date",
    "CreatedDate": "datetime",
    "LastModifiedDate": "datetime",
}
_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})")
_DIGITS = re.compile(r"\d{1,18}")
_NO_SUCH_COLUMN = re.compile(r"No such column '([^']+)' on entity '([^']+)'")
_SOQL_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}

_T = TypeVar("_T")


@dataclass(frozen=True)
class SoqlSearch:
    """A search compiled to SOQL.

    ``soql`` is None when the filters can match nothing (an empty ``IN`` list): no request
    is sent. ``columns`` pairs each output column with the Salesforce field it reads.
    """

    soql: str | None
    sobject: str
    columns: tuple[tuple[str, str], ...]


class SalesforceCrm(CrmResource):
    """Salesforce through simple-salesforce: searches compiled to SOQL, paged with
    nextRecordsUrl.

    Authenticate with ``username`` + ``password`` + ``security_token`` (SOAP login at
    ``https://{domain}.salesforce.com``, or at ``login_url``), or with ``instance_url`` +
    ``session_id`` (an OAuth access token). Secrets come from the environment
    (``${SALESFORCE_PASSWORD}``) and never appear in messages or metadata.
    """

    kind: ClassVar[str] = "salesforce"

    username: str | None = Field(default=None, description="Salesforce user name.")
    password: str | None = Field(default=None, description="Password (secret).")
    security_token: str | None = Field(
        default=None, description="The user's security token (secret); '' when IP-trusted."
    )
    domain: str = Field(
        default="login",
        description="Login domain: 'login' (production), 'test' (sandbox) or 'NAME.my'.",
    )
    login_url: str | None = Field(
        default=None,
        description="Base URL of the login endpoint when it is not https://{domain}"
        ".salesforce.com, e.g. https://acme.my.salesforce.com.",
    )
    instance_url: str | None = Field(
        default=None, description="Instance URL for session_id access, e.g. https://acme.my..."
    )
    session_id: str | None = Field(
        default=None, description="Session id or OAuth access token (secret)."
    )
    api_version: str = Field(default="59.0", description="REST API version, e.g. 59.0.")
    object_mapping: dict[str, str] = Field(
        default_factory=dict,
        description="HubSpot object name -> sObject, merged over deals: Opportunity, "
        "companies: Account, contacts: Contact.",
    )
    field_mapping: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Per HubSpot object, property -> Salesforce field, merged over the "
        "defaults, e.g. {deals: {pipeline: Pipeline__c}}.",
    )
    verify: str | None = Field(
        default=None,
        description="CA bundle to verify TLS with (ignores REQUESTS_CA_BUNDLE and proxy "
        "variables of the environment when set).",
    )
    proxies: dict[str, str] | None = Field(
        default=None, description="requests proxies, e.g. {https: http://proxy:3128}."
    )
    request_timeout_seconds: float = Field(
        default=120.0, gt=0, description="Time limit of one HTTP request."
    )
    max_retries: int = Field(
        default=4, ge=0, description="Retries of a request refused with REQUEST_LIMIT_EXCEEDED."
    )
    backoff_seconds: float = Field(
        default=2.0, ge=0, description="First backoff delay; doubled at each retry, jittered."
    )

    # -- public API ---------------------------------------------------------------------------

    def search(self, request: SearchConfig, *, timeout_seconds: float | None = None) -> pa.Table:
        """Run the search as SOQL and return every matching record (up to ``request.limit``)."""
        compiled = self.compile(request)
        if compiled.soql is None:
            return _empty_table(compiled.columns)
        deadline = time.monotonic() + timeout_seconds if timeout_seconds else None
        batches: list[pa.Table] = []
        connection = _Connection(self, deadline, timeout_seconds)
        try:
            batches.extend(
                _batch_table(records, compiled.columns)
                for records in connection.batches(compiled.soql)
            )
        except SalesforceError as e:
            raise self._query_error(e, compiled, request) from e
        finally:
            connection.close()
        return _finish(batches, compiled.columns)

    def compile(self, request: SearchConfig) -> SoqlSearch:
        """The SOQL statement for a search, and which field each output column reads."""
        return compile_search(request, self.objects(), self.fields(request.object))

    def describe_request(self, request: SearchConfig) -> dict[str, Any]:
        """The SOQL statement sent to Salesforce (values included, no credentials)."""
        compiled = self.compile(request)
        return {
            "sobject": compiled.sobject,
            "soql": compiled.soql,
            "columns": {name: field for name, field in compiled.columns},
        }

    def objects(self) -> dict[str, str]:
        """HubSpot object name -> sObject, defaults merged with ``object_mapping``."""
        return {**DEFAULT_OBJECTS, **{k.lower(): v for k, v in self.object_mapping.items()}}

    def fields(self, object_name: str) -> dict[str, str]:
        """Property -> Salesforce field for one object, defaults merged with ``field_mapping``."""
        key = object_name.strip().lower()
        overrides = {k.lower(): v for k, v in self.field_mapping.items()}.get(key, {})
        base = DEFAULT_FIELDS.get(key, {"hs_object_id": "Id"})
        return {**base, **overrides}

    # -- errors -------------------------------------------------------------------------------

    def _query_error(
        self, error: SalesforceError, compiled: SoqlSearch, request: SearchConfig
    ) -> TerminalStepError:
        code, message = _error_details(error)
        mapping = self.fields(request.object)
        if code in {"INVALID_FIELD", "MALFORMED_QUERY"}:
            missing = _NO_SUCH_COLUMN.search(message)
            if missing is not None:
                field_name, entity = missing.group(1), missing.group(2)
                property_name = next(
                    (name for name, field in compiled.columns if field == field_name), field_name
                )
                candidates = set(mapping) | set(mapping.values())
                suggestion = did_you_mean(property_name, candidates) or did_you_mean(
                    field_name, candidates
                )
                hint = (
                    f"{suggestion} " if suggestion else ""
                ) + f"or map it in field_mapping.{request.object.strip().lower()}"
                return TerminalStepError(
                    f"Salesforce has no field '{field_name}' on {entity} "
                    f"(property '{property_name}')",
                    field="properties",
                    hint=hint,
                )
        if code == "INVALID_TYPE":
            return TerminalStepError(
                f"Salesforce does not know the object '{compiled.sobject}': {_first_line(message)}",
                field="object",
                hint="map the object in object_mapping, e.g. {tickets: Case}",
            )
        return TerminalStepError(
            f"Salesforce rejected the query ({code or error.status}): {_first_line(message)}",
            hint="check the filters' values against the fields' types",
        )


# ---------------------------------------------------------------------------------------------
# Connection: login, retries, paging
# ---------------------------------------------------------------------------------------------


class _Connection:
    """One search's session: logs in lazily, retries throttling, logs in again once."""

    def __init__(
        self, settings: SalesforceCrm, deadline: float | None, timeout_seconds: float | None
    ) -> None:
        self.settings = settings
        self.deadline = deadline
        self.timeout_seconds = timeout_seconds
        self.session = requests.Session()
        if settings.verify is not None:
            # REQUESTS_CA_BUNDLE from the environment would override session.verify.
            self.session.trust_env = False
            self.session.verify = settings.verify
        if settings.proxies:
            self.session.proxies.update(settings.proxies)
        self.client: Salesforce | None = None
        self.relogged = False

    def close(self) -> None:
        self.session.close()

    def batches(self, soql: str) -> Iterator[list[dict[str, Any]]]:
        """The records of the query, one batch (up to 2000 records) at a time."""
        result = self._call(lambda client: client.query(soql, timeout=self._timeout()))
        while True:
            yield list(result.get("records") or [])
            next_url = result.get("nextRecordsUrl")
            if result.get("done", True) or not next_url:
                return
            result = self._call(
                lambda client: client.query_more(
                    next_url, identifier_is_url=True, timeout=self._timeout()
                )
            )

    def _timeout(self) -> float:
        limit = self.settings.request_timeout_seconds
        if self.deadline is None:
            return limit
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise self._timed_out(None)
        return min(limit, remaining)

    def _timed_out(self, cause: Exception | None) -> StepTimeoutError:
        error = StepTimeoutError(
            f"the Salesforce search ran longer than {self.timeout_seconds:g} s and was stopped",
            hint="raise timeout_seconds on the step, or narrow the filters",
        )
        error.__cause__ = cause
        return error

    def _client(self) -> Salesforce:
        if self.client is None:
            self.client = self._login()
        return self.client

    def _login(self) -> Salesforce:
        s = self.settings
        version = s.api_version.removeprefix("v")
        if s.username is not None and s.password is not None:
            try:
                session_id, instance = SalesforceLogin(
                    username=s.username,
                    password=s.password,
                    security_token=s.security_token if s.security_token is not None else "",
                    sf_version=version,
                    session=self.session,
                    domain=s.domain,
                    scratch_url=s.login_url.rstrip("/") if s.login_url else None,
                )
            except SalesforceAuthenticationFailed as e:
                raise TerminalStepError(
                    f"Salesforce login failed ({e.code}): {_first_line(e.auth_message)}",
                    hint="check username, password and security_token (a new token is mailed "
                    "when the password changes), and domain ('test' for a sandbox)",
                ) from e
            except requests.RequestException as e:
                raise _unreachable(e, "the Salesforce login endpoint") from e
            return Salesforce(
                session_id=session_id, instance=instance, version=version, session=self.session
            )
        if s.instance_url and s.session_id:
            return Salesforce(
                session_id=s.session_id,
                instance_url=s.instance_url,
                version=version,
                session=self.session,
            )
        raise TerminalStepError(
            "the Salesforce connection has no credentials",
            hint="set username, password and security_token, or instance_url and session_id",
        )

    def _call(self, operation: Callable[[Salesforce], _T]) -> _T:
        attempt = 0
        while True:
            client = self._client()
            try:
                return operation(client)
            except SalesforceExpiredSession as e:
                code, message = _error_details(e)
                can_login = self.settings.username is not None and not self.relogged
                if code == "INVALID_SESSION_ID" and can_login:
                    self.relogged = True
                    self.client = None
                    continue
                raise TerminalStepError(
                    f"the Salesforce session is invalid or expired ({code or e.status}): "
                    f"{_first_line(message)}",
                    hint="set a fresh session_id, or configure username, password and "
                    "security_token so that the executor can log in again",
                ) from e
            except SalesforceError as e:
                code, message = _error_details(e)
                if code == "REQUEST_LIMIT_EXCEEDED" or e.status == 503:
                    if attempt >= self.settings.max_retries:
                        raise TransientStepError(
                            f"Salesforce refused the request after {attempt + 1} attempts "
                            f"({code or e.status}): {_first_line(message)}",
                            hint="the org's API request limit is used up; retry later or "
                            "raise the limit",
                        ) from e
                    self._sleep(attempt)
                    attempt += 1
                    continue
                if e.status >= 500:
                    raise TransientStepError(
                        f"Salesforce failed with HTTP {e.status} ({code}): {_first_line(message)}"
                    ) from e
                raise
            except requests.Timeout as e:
                if isinstance(e, requests.ConnectTimeout):
                    raise _unreachable(e, "Salesforce") from e
                if self.deadline is not None and time.monotonic() >= self.deadline - 0.05:
                    raise self._timed_out(e) from e
                raise TransientStepError(
                    f"a Salesforce request took longer than "
                    f"{self.settings.request_timeout_seconds:g} s",
                    hint="raise request_timeout_seconds, or narrow the filters",
                ) from e
            except requests.RequestException as e:
                raise _unreachable(e, "Salesforce") from e

    def _sleep(self, attempt: int) -> None:
        delay = self.settings.backoff_seconds * (2**attempt)
        delay *= 0.5 + random.random()  # jitter, so that parallel steps spread out
        if self.deadline is not None and time.monotonic() + delay >= self.deadline:
            raise self._timed_out(None)
        time.sleep(delay)


def _unreachable(error: requests.RequestException, what: str) -> SourceUnreachableError:
    return SourceUnreachableError(
        f"cannot reach {what}: {type(error).__name__}",
        hint="check instance_url / domain / login_url, the network and proxies, and verify "
        "(the CA bundle) for TLS errors",
    )


def _error_details(error: SalesforceError) -> tuple[str, str]:
    """errorCode and message of a Salesforce error body ``[{"message", "errorCode"}]``."""
    content: Any = error.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first: dict[str, Any] = content[0]
        return str(first.get("errorCode", "")), str(first.get("message", ""))
    if isinstance(content, dict):
        return str(content.get("errorCode", "")), str(content.get("message", ""))
    if isinstance(content, bytes):
        return "", content.decode("utf-8", "replace")[:500]
    return "", str(content)[:500]


def _first_line(message: str) -> str:
    """The useful line of a Salesforce message (query errors repeat the statement first)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in reversed(lines):
        if not line.startswith(("ERROR at Row", "^")):
            return line
    return lines[-1] if lines else message


# ---------------------------------------------------------------------------------------------
# SOQL
# ---------------------------------------------------------------------------------------------


def compile_search(
    request: SearchConfig, objects: Mapping[str, str], fields: Mapping[str, str]
) -> SoqlSearch:
    """Compile a HubSpot-style search to SOQL with the given object and field mappings."""
    key = request.object.strip().lower()
    if key not in objects:
        raise TerminalStepError(
            f"no Salesforce object is mapped to '{request.object}'",
            field="object",
            hint=unknown_name_hint(key, objects, "object")
            + "; add it to object_mapping, e.g. {tickets: Case}",
        )
    sobject = objects[key]
    _check_name(sobject, "object_mapping")

    def field_of(name: str, where: str) -> str:
        field = fields.get(name, fields.get(name.lower(), name))
        if not _FIELD_NAME.fullmatch(field):
            raise TerminalStepError(
                f"'{field}' is not a Salesforce field name",
                field=where,
                hint=f"map the property in field_mapping.{key}, e.g. {{{name}: Field__c}}",
            )
        return field

    id_field = field_of(_ID_PROPERTY, "properties")
    columns: list[tuple[str, str]] = [(_ID_PROPERTY, id_field)]
    default = [p for p in DEFAULT_PROPERTIES.get(key, ()) if p in fields]
    for name in request.properties or default:
        if name != _ID_PROPERTY and name not in {c for c, _ in columns}:
            columns.append((name, field_of(name, "properties")))
    for association in request.associations:
        output = _ASSOCIATIONS.get(association.strip().lower())
        if output is None or output not in fields:
            raise TerminalStepError(
                f"{key} have no '{association}' association in the Salesforce mapping",
                field="associations",
                hint=f"map company_id to a lookup field in field_mapping.{key}"
                if output
                else "the supported association is companies",
            )
        if output not in {c for c, _ in columns}:
            columns.append((output, field_of(output, "associations")))

    selected = list(dict.fromkeys(field for _, field in columns))
    soql = f"SELECT {', '.join(selected)} FROM {sobject}"

    where_field = "filter_groups" if request.filter_groups else "filters"
    groups: list[list[str]] = []
    matches_everything = False
    for group in request.groups():
        conditions: list[str] = []
        matches_nothing = False
        for spec in group:
            condition = _condition(spec, field_of(spec.property, where_field), where_field)
            if condition is False:
                matches_nothing = True
            elif condition is not True:
                conditions.append(condition)
        if matches_nothing:
            continue
        if not conditions:  # a group that matches everything makes the OR match everything
            matches_everything = True
            break
        groups.append(conditions)
    if matches_everything:
        groups = []
    elif request.groups() and not groups:
        return SoqlSearch(None, sobject, tuple(columns))
    if groups:
        if len(groups) == 1:
            soql += " WHERE " + " AND ".join(groups[0])
        else:
            soql += " WHERE " + " OR ".join(f"({' AND '.join(g)})" for g in groups)

    order = [
        f"{field_of(sort.property, 'sorts')} {'DESC' if sort.direction == 'DESCENDING' else 'ASC'}"
        " NULLS LAST"
        for sort in request.sorts
    ]
    if id_field not in {o.split(" ")[0] for o in order}:
        order.append(f"{id_field} ASC")
    soql += " ORDER BY " + ", ".join(order)
    if request.limit is not None:
        soql += f" LIMIT {int(request.limit)}"
    return SoqlSearch(soql, sobject, tuple(columns))


def _check_name(name: str, where: str) -> None:
    if not _FIELD_NAME.fullmatch(name):
        raise TerminalStepError(f"'{name}' is not a Salesforce name", field=where)


def _condition(spec: SearchFilter, field: str, where: str) -> str | bool:
    """One filter as SOQL; True / False when it matches every / no record."""
    kind = STANDARD_FIELD_KINDS.get(field)
    operator = spec.operator
    if operator == "HAS_PROPERTY":
        return f"{field} != null"
    if operator == "NOT_HAS_PROPERTY":
        return f"{field} = null"
    if operator == "CONTAINS_TOKEN":
        words = str(spec.value).split()
        if not words:
            raise TerminalStepError(
                f"CONTAINS_TOKEN on '{spec.property}' needs a word to look for",
                field=where,
                hint="use HAS_PROPERTY to match any value",
            )
        return " AND ".join(f"{field} LIKE {_like_pattern(word)}" for word in words)
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
        literals = ", ".join(soql_literal(v, kind, spec.property, operator) for v in values)
        return f"{field} {'IN' if operator == 'IN' else 'NOT IN'} ({literals})"
    if operator == "BETWEEN":
        low = soql_literal(spec.value, kind, spec.property, operator)
        high = soql_literal(spec.high_value, kind, spec.property, operator)
        return f"{field} >= {low} AND {field} <= {high}"
    symbols = {"EQ": "=", "NEQ": "!=", "LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}
    return f"{field} {symbols[operator]} {soql_literal(spec.value, kind, spec.property, operator)}"


def soql_string(text: str) -> str:
    """A SOQL quoted string: backslash, quotes and control characters escaped."""
    out: list[str] = []
    for char in text:
        escaped = _SOQL_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "'" + "".join(out) + "'"


def _like_pattern(word: str) -> str:
    """``'%word%'`` with LIKE's wildcards in the word escaped; ``*`` becomes ``%``."""
    escaped = soql_string(word)[1:-1].replace("%", "\\%").replace("_", "\\_").replace("*", "%")
    return f"'%{escaped}%'"


def soql_literal(value: Any, kind: _Kind | None, name: str, operator: str) -> str:
    """A filter value as a SOQL literal for a field of the given kind (None: from the value)."""
    if value is None:
        raise TerminalStepError(f"operator {operator} on '{name}' needs a value, got none")
    if isinstance(value, list | tuple | set | dict):
        raise TerminalStepError(
            f"operator {operator} on '{name}' takes one value, got {value!r}",
            hint="use IN / NOT_IN with 'values' to match any of several values",
        )
    if kind is None:
        kind = _kind_of_value(value)
    if kind in {"id", "text"}:
        if isinstance(value, bool):
            return soql_string("true" if value else "false")
        if isinstance(value, date | datetime):
            return soql_string(value.isoformat())
        return soql_string(str(value))
    if kind in {"number", "integer"}:
        return _number(value, name)
    if kind == "boolean":
        return _boolean(value, name)
    instant = _instant(value, name)
    if kind == "date":
        return instant.date().isoformat() if isinstance(instant, datetime) else instant.isoformat()
    if not isinstance(instant, datetime):
        instant = datetime(instant.year, instant.month, instant.day, tzinfo=UTC)
    text = instant.strftime("%Y-%m-%dT%H:%M:%S")
    if instant.microsecond:
        text += f".{instant.microsecond // 1000:03d}"
    return text + "Z"


def _kind_of_value(value: Any) -> _Kind:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    return "text"


def _number(value: Any, name: str) -> str:
    text = format(parse_number(value, name), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _boolean(value: Any, name: str) -> str:
    return "true" if parse_boolean(value, name) else "false"


def _instant(value: Any, name: str) -> date | datetime:
    """A date, or an aware UTC datetime (a naive one is taken as UTC)."""
    if isinstance(value, bool):
        raise bad_value(value, name, DATE_FORMATS)
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return value
    if isinstance(value, int | float | Decimal):
        return from_epoch_ms(value, name).replace(tzinfo=UTC)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return from_epoch_ms(int(text), name).replace(tzinfo=UTC)
    if _DATE_TEXT.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError as e:
            raise bad_value(value, name, DATE_FORMATS) from e
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise bad_value(value, name, DATE_FORMATS) from e
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Records -> Arrow
# ---------------------------------------------------------------------------------------------

_ARROW_TYPES: dict[_Kind, pa.DataType] = {
    "id": pa.string(),
    "text": pa.string(),
    "number": pa.float64(),
    "integer": pa.int64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
}


def _is_id_field(field: str) -> bool:
    return STANDARD_FIELD_KINDS.get(field) == "id" or field == "Id" or field.endswith("Id")


def _column_kind(field: str) -> _Kind | None:
    if _is_id_field(field):
        return "id"
    return STANDARD_FIELD_KINDS.get(field)


def _batch_table(records: list[dict[str, Any]], columns: tuple[tuple[str, str], ...]) -> pa.Table:
    arrays: list[pa.Array] = []
    for _, field in columns:
        values = [record.get(field) for record in records]
        kind = _column_kind(field)
        if kind == "id":
            arrays.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
        elif kind == "date":
            arrays.append(pa.array([_parse_date(v) for v in values], pa.date32()))
        elif kind == "datetime":
            arrays.append(pa.array([_parse_datetime(v) for v in values], pa.timestamp("us")))
        elif kind is not None:
            arrays.append(pa.array(values, _ARROW_TYPES[kind]))
        else:
            arrays.append(_inferred(values))
    return pa.Table.from_arrays(arrays, names=[name for name, _ in columns])


def _inferred(values: list[Any]) -> pa.Array:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, str) for v in present):
        if all(_DATE_TEXT.fullmatch(v) for v in present):
            return pa.array([_parse_date(v) for v in values], pa.date32())
        if all(_DATETIME_TEXT.fullmatch(v) for v in present):
            return pa.array([_parse_datetime(v) for v in values], pa.timestamp("us"))
    if present and all(isinstance(v, dict | list) for v in present):
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.array(values)


def _parse_date(value: Any) -> date | None:
    if value is None:
        return None
    return date.fromisoformat(str(value)[:10])


def _parse_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    text = str(value)
    if re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _empty_table(columns: tuple[tuple[str, str], ...]) -> pa.Table:
    return _finish([_batch_table([], columns)], columns)


def _finish(batches: list[pa.Table], columns: tuple[tuple[str, str], ...]) -> pa.Table:
    """Concatenate the batches; Id columns whose values are all digits become BIGINT."""
    if not batches:
        batches = [_batch_table([], columns)]
    table = pa.concat_tables(batches, promote_options="permissive")
    for index, (name, field) in enumerate(columns):
        if not _is_id_field(field):
            continue
        column = table.column(index)
        if pa.types.is_null(column.type):
            column = column.cast(pa.string())
        values = column.to_pylist()
        if all(v is None or _DIGITS.fullmatch(v) for v in values):
            table = table.set_column(index, name, column.cast(pa.int64()))
    return table
