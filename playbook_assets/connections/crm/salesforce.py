"""Salesforce: HubSpot-style ``search`` steps compiled to SOQL and run with simple-salesforce.

Names. A search names HubSpot objects and properties; ``object_mapping`` and ``field_mapping``
translate them to Salesforce sObjects and fields (merged over ``DEFAULT_OBJECTS`` and
``DEFAULT_FIELDS``: deals -> Opportunity, companies -> Account, contacts -> Contact;
dealname -> Name, amount -> Amount, closedate -> CloseDate, dealstage -> StageName,
company_id -> AccountId, hs_object_id -> Id, ...). A property without a mapping is sent as
written, so ``properties: [Pipeline__c]`` works. Field names are case-insensitive in SOQL
and the records come back under the org's spelling, so every name is first looked up in the
sObject's describe call (read once per sObject and resource instance) and sent as the org
spells it; a name the org does not have is a TerminalStepError naming the field, with a
did-you-mean.

Values. Filter values are written as the SOQL literal of the field's describe type (not of
the value's look): a date compared with a ``datetime`` field becomes ``2026-11-01T00:00:00Z``,
a number with a text field a quoted string. ``value_mapping`` translates the playbook's
HubSpot values into the org's picklist values (``DEFAULT_VALUE_MAPPING``: HubSpot's default
deal stages and deal types to Salesforce's standard ``StageName`` and ``Type`` values); a
filter value that is still not a value of the field's picklist is a TerminalStepError listing
the valid ones (such a filter would otherwise silently match nothing). Output columns keep
the org's values.

Semantics. Filters follow the HubSpot operators, compiled to SOQL (see ``compile_search``):
string comparisons ignore case (as SOQL does), ``!=`` and ``NOT IN`` also match records
without a value (as in SOQL and HubSpot), HAS_PROPERTY is ``!= null``; CONTAINS_TOKEN is
``LIKE '%word%'`` per word (a substring match, not HubSpot's whole-word match; ``*`` is a
wildcard). Results are ordered by ``sorts`` (NULLS LAST), then ``Id``.

Long lists. The request URI plus headers must stay under 16,384 bytes, so a search whose
SOQL would not fit is split on its longest IN list into several queries whose results are
united (by Id), sorted again (text by code point, where SOQL's own order ignores case) and
cut to the limit. A query that still does not fit, or a 414 / 431 answer, is a
TerminalStepError that says so.

Values never change the statement: strings are quoted with SOQL's escapes (backslash, quotes,
control characters), numbers, booleans, dates (``YYYY-MM-DD``) and date-times
(``YYYY-MM-DDThh:mm:ssZ``) are written unquoted only after being parsed as such.

Output. ``hs_object_id`` first, then the requested properties under their HubSpot names, then
``company_id`` for ``associations: [companies]``. Columns are typed from the describe call:
ids and references text (Salesforce ids), numbers float64 (``int`` fields int64), booleans,
dates, date-times as naive UTC timestamps; an empty result has the same types.

Errors. REQUEST_LIMIT_EXCEEDED for the org's daily limit ("TotalRequests Limit exceeded")
fails at once with the limit named: it frees up over 24 hours, so no retry in the run helps.
Other throttling (the concurrent long-request limit, 503) is retried with exponential
backoff and jitter at most ``retry_attempts`` times (the step's ``execution.retry_attempts``;
the step does not retry again), then raised as TransientStepError. INVALID_SESSION_ID
triggers one new login when username/password are set, else (or if it happens again) a
TerminalStepError; connection failures are SourceUnreachableError; INVALID_FIELD,
MALFORMED_QUERY and the other 4xx are TerminalStepError.

Documented behaviour this module relies on (REST API Developer Guide, SOQL and SOSL Reference,
Salesforce Developer Limits; each tested in tests/test_crm_salesforce.py against
tests/salesforce_standin.py):

- paging end: ``nextRecordsUrl`` until ``done`` (test_paging_through_several_batches);
- caps: URI plus headers under 16,384 bytes, 414 / 431 past it
  (test_long_in_lists_are_split_and_united, test_too_long_a_query_is_a_clear_error);
- name case: case-insensitive field names, replies in the org's spelling
  (test_field_names_take_the_orgs_spelling);
- types: the describe call's field types (test_filter_values_take_the_fields_type,
  test_typed_output_and_empty_results);
- error shapes: ``[{"message", "errorCode"}]`` (test_bad_field_names_the_field,
  test_daily_request_limit_fails_at_once);
- rate limits: REQUEST_LIMIT_EXCEEDED, daily or concurrent (test_daily_request_limit_fails_at_once,
  test_concurrent_limit_is_retried_within_the_budget).
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
from urllib.parse import quote_plus, urlencode, urlsplit

import pyarrow as pa
import requests
from pydantic import Field, PrivateAttr
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceResourceNotFound,
)
from simple_salesforce.login import SalesforceLogin

from playbook_assets.connections.crm.base import DEFAULT_RETRY_ATTEMPTS, CrmResource
from playbook_assets.connections.crm.demo import DEFAULT_PROPERTIES
from playbook_assets.connections.crm.values import (
    DATE_FORMATS,
    ValueMapping,
    bad_value,
    from_epoch_ms,
    parse_boolean,
    parse_number,
)
from playbook_assets.core.errors import (
    SourceUnreachableError,
    StepTimeoutError,
    TerminalStepError,
    TransientStepError,
    did_you_mean,
    unknown_name_hint,
)
from playbook_assets.core.spec import SearchConfig, SearchFilter

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
# HubSpot's default deal stages and deal types (the templates' values) -> the standard
# picklist values of a Salesforce org (Salesforce Help, "Opportunity Fields": StageName,
# Type; "Account Fields": Type), by what each stage means. Stages of HubSpot's default
# pipeline: appointment scheduled, qualified to buy, presentation scheduled, decision maker
# bought in, contract sent, closed won / lost.
DEFAULT_VALUE_MAPPING: ValueMapping = {
    "deals": {
        "dealstage": {
            "appointmentscheduled": ["Prospecting"],
            "qualifiedtobuy": ["Qualification", "Needs Analysis"],
            "presentationscheduled": ["Value Proposition"],
            "decisionmakerboughtin": ["Id. Decision Makers", "Perception Analysis"],
            "contractsent": ["Proposal/Price Quote", "Negotiation/Review"],
            "closedwon": ["Closed Won"],
            "closedlost": ["Closed Lost"],
        },
        "dealtype": {
            "newbusiness": ["New Customer"],
            "existingbusiness": [
                "Existing Customer - Upgrade",
                "Existing Customer - Replacement",
                "Existing Customer - Downgrade",
            ],
        },
    },
    "companies": {
        "lifecyclestage": {
            "customer": ["Customer - Direct", "Customer - Channel"],
            "other": ["Other"],
        },
    },
}
MAX_REQUEST_BYTES = 16_384  # Salesforce Developer Limits: URI plus headers
_HEADER_ALLOWANCE = 1024  # headers requests adds beyond the session's (Host, Accept, ...)
_ID_PROPERTY = "hs_object_id"
_ASSOCIATIONS = {"companies": "company_id", "company": "company_id"}

_Kind = Literal["id", "text", "number", "integer", "boolean", "date", "datetime"]
# Describe field types (REST API Developer Guide, "Field" in the describe result) -> kinds.
_DESCRIBE_KINDS: dict[str, _Kind] = {
    "id": "id",
    "reference": "id",
    "currency": "number",
    "double": "number",
    "percent": "number",
    "int": "integer",
    "long": "integer",
    "boolean": "boolean",
    "date": "date",
    "datetime": "datetime",
}
# Types of the standard fields of the default mapping (Salesforce's field reference), for
# ``describe_request``, which writes the SOQL without asking the org. Other fields are
# written from their values there.
STANDARD_FIELD_KINDS: dict[str, _Kind] = {
    "Id": "id",
    "AccountId": "id",
    "OwnerId": "id",
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
class OrgField:
    """A field as the org's describe call gives it."""

    name: str
    kind: _Kind
    picklist: tuple[str, ...] = ()  # the picklist's values (empty: not a picklist)


@dataclass(frozen=True)
class SoqlSearch:
    """A search compiled to SOQL.

    ``soql`` is None when the filters can match nothing (an empty ``IN`` list): no request
    is sent. ``columns`` pairs each output column with the Salesforce field it reads and
    that field's kind (None when the org was not asked).
    """

    soql: str | None
    sobject: str
    columns: tuple[tuple[str, str, _Kind | None], ...]


class SalesforceCrm(CrmResource):
    """Salesforce through simple-salesforce: searches compiled to SOQL, paged with
    nextRecordsUrl.

    Authenticate with ``username`` + ``password`` + ``security_token`` (SOAP login at
    ``https://{domain}.salesforce.com``, or at ``login_url``), or with ``instance_url`` +
    ``session_id`` (an OAuth access token). Secrets come from the environment
    (``${SALESFORCE_PASSWORD}``) and never appear in messages or metadata.
    """

    kind: ClassVar[str] = "salesforce"
    DEFAULT_VALUE_MAPPING: ClassVar[ValueMapping] = DEFAULT_VALUE_MAPPING

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
    backoff_seconds: float = Field(
        default=2.0, ge=0, description="First backoff delay; doubled at each retry, jittered."
    )
    max_request_bytes: int = Field(
        default=MAX_REQUEST_BYTES,
        gt=1024,
        description="Longest request (URI plus headers) sent; longer searches are split. "
        "Salesforce's limit is 16,384 bytes; lower it when a proxy on the way allows less.",
    )

    _describes: dict[str, dict[str, OrgField]] = PrivateAttr(default_factory=dict)

    # -- public API ---------------------------------------------------------------------------

    def search(
        self,
        request: SearchConfig,
        *,
        timeout_seconds: float | None = None,
        retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
    ) -> pa.Table:
        """Run the search as SOQL and return every matching record (up to ``request.limit``)."""
        request = self.mapped(request)
        sobject = self._sobject(request)
        deadline = time.monotonic() + timeout_seconds if timeout_seconds else None
        connection = _Connection(self, deadline, timeout_seconds, retry_attempts)
        try:
            org = self._org_fields(connection, sobject)
            queries = _split_for_uri(
                request,
                lambda r: compile_search(r, self.objects(), self.fields(r.object), org),
                connection.fits,
            )
            tables = [
                _records_table(records, query.columns)
                for query in queries
                if query.soql is not None
                for records in connection.batches(query.soql)
            ]
        except SalesforceError as e:
            raise self._query_error(e, sobject) from e
        finally:
            connection.close()
        return _combine(tables, queries[0].columns, request, several=len(queries) > 1)

    def compile(self, request: SearchConfig) -> SoqlSearch:
        """The SOQL statement for a search as the mappings write it, without asking the org
        (field names as mapped, standard fields' types): what ``describe_request`` shows."""
        request = self.mapped(request)
        return compile_search(request, self.objects(), self.fields(request.object))

    def describe_request(self, request: SearchConfig) -> dict[str, Any]:
        """The SOQL statement as the mappings write it (values included, no credentials);
        at run time field names and types are checked against the org and long IN lists
        split."""
        compiled = self.compile(request)
        return {
            "sobject": compiled.sobject,
            "soql": compiled.soql,
            "columns": {name: field for name, field, _ in compiled.columns},
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

    # -- the org ------------------------------------------------------------------------------

    def _sobject(self, request: SearchConfig) -> str:
        key = request.object.strip().lower()
        objects = self.objects()
        if key not in objects:
            raise TerminalStepError(
                f"no Salesforce object is mapped to '{request.object}'",
                field="object",
                hint=unknown_name_hint(key, objects, "object")
                + "; add it to object_mapping, e.g. {tickets: Case}",
            )
        _check_name(objects[key], "object_mapping")
        return objects[key]

    def _org_fields(self, connection: _Connection, sobject: str) -> dict[str, OrgField]:
        """The sObject's fields by lower-case name, from its describe call (read once)."""
        cached = self._describes.get(sobject.lower())
        if cached is not None:
            return cached
        try:
            body = connection.describe(sobject)
        except SalesforceResourceNotFound as e:
            raise TerminalStepError(
                f"the Salesforce org has no object '{sobject}'",
                field="object",
                hint="map the object in object_mapping to an sObject of the org (custom ones "
                "end in __c), and check that the user's profile can read it",
            ) from e
        found: dict[str, OrgField] = {}
        for item in body.get("fields") or []:
            name = str(item["name"])
            kind = _DESCRIBE_KINDS.get(str(item.get("type")), "text")
            values: tuple[str, ...] = ()
            if item.get("type") in {"picklist", "multipicklist"}:
                values = tuple(str(v["value"]) for v in item.get("picklistValues") or [])
            found[name.lower()] = OrgField(name, kind, values)
        self._describes[sobject.lower()] = found
        return found

    # -- errors -------------------------------------------------------------------------------

    def _query_error(self, error: SalesforceError, sobject: str) -> TerminalStepError:
        code, message = _error_details(error)
        if code == "INVALID_TYPE":
            return TerminalStepError(
                f"Salesforce does not know the object of the query: {_first_line(message)}",
                field="object",
                hint="map the object in object_mapping, e.g. {tickets: Case}",
            )
        return TerminalStepError(
            f"Salesforce rejected the query on {sobject} ({code or error.status}): "
            f"{_first_line(message)}",
            hint="check the filters' values against the fields' types",
        )


# ---------------------------------------------------------------------------------------------
# Connection: login, retries, paging
# ---------------------------------------------------------------------------------------------


class _Connection:
    """One search's session: logs in lazily, retries throttling, logs in again once."""

    def __init__(
        self,
        settings: SalesforceCrm,
        deadline: float | None,
        timeout_seconds: float | None,
        retries: int,
    ) -> None:
        self.settings = settings
        self.deadline = deadline
        self.timeout_seconds = timeout_seconds
        self.retries = retries
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

    def describe(self, sobject: str) -> dict[str, Any]:
        """The sObject's describe result (``sobjects/{name}/describe``)."""
        body = self._call(
            lambda client: client.restful(f"sobjects/{sobject}/describe", timeout=self._timeout())
        )
        return body if isinstance(body, dict) else {}

    def fits(self, soql: str) -> bool:
        """Whether the query's request (URI plus headers) stays under Salesforce's limit."""
        client = self._client()
        base = urlsplit(client.base_url)
        uri = f"{base.path}query/?{urlencode({'q': soql}, quote_via=quote_plus)}"
        headers = {**self.session.headers, **client.headers, "Host": base.netloc}
        size = len(uri) + sum(len(k) + len(str(v)) + 4 for k, v in headers.items())
        return size + _HEADER_ALLOWANCE <= self.settings.max_request_bytes

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
                if e.status in (414, 431):
                    raise TerminalStepError(
                        f"Salesforce refused the request as too long (HTTP {e.status}): the "
                        f"URI plus headers must stay under {MAX_REQUEST_BYTES:,} bytes",
                        field="filters",
                        hint="lower max_request_bytes on the connection if a proxy allows "
                        "less (long IN lists are then split into more queries), or use fewer "
                        "or shorter filter values",
                    ) from e
                if code == "REQUEST_LIMIT_EXCEEDED" and "TotalRequests" in message:
                    raise TerminalStepError(
                        f"the Salesforce org's daily API request limit is used up "
                        f"({code}: {_first_line(message)})",
                        hint="the limit frees up over a rolling 24 hours (Setup > Company "
                        "Information shows API requests in the last 24 hours); run again "
                        "later or ask Salesforce to raise it",
                    ) from e
                if code == "REQUEST_LIMIT_EXCEEDED" or e.status == 503:
                    if attempt >= self.retries:
                        raise TransientStepError(
                            f"Salesforce refused the request after {attempt + 1} attempts "
                            f"({code or e.status}): {_first_line(message)}",
                            hint="too many requests at once for the org; retry later",
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

    def field_of(name: str, where: str) -> OrgField:
        mapped = fields.get(name, fields.get(name.lower(), name))
        if not _FIELD_NAME.fullmatch(mapped):
            raise TerminalStepError(
                f"'{mapped}' is not a Salesforce field name",
                field=where,
                hint=f"map the property in field_mapping.{key}, e.g. {{{name}: Field__c}}",
            )
        if org is None:
            return OrgField(mapped, STANDARD_FIELD_KINDS.get(mapped, "text"))
        found = org.get(mapped.lower())
        if found is None:
            raise _no_such_field(name, mapped, sobject, key, org, fields, where)
        return found

    id_field = field_of(_ID_PROPERTY, "properties")
    columns: list[tuple[str, OrgField]] = [(_ID_PROPERTY, id_field)]
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

    selected = list(dict.fromkeys(field.name for _, field in columns))
    soql = f"SELECT {', '.join(selected)} FROM {sobject}"
    typed = org is not None
    described: tuple[tuple[str, str, _Kind | None], ...] = tuple(
        (name, field.name, field.kind if typed else None) for name, field in columns
    )

    where_field = "filter_groups" if request.filter_groups else "filters"
    groups: list[list[str]] = []
    matches_everything = False
    for group in request.groups():
        conditions: list[str] = []
        matches_nothing = False
        for spec in group:
            field = field_of(spec.property, where_field)
            condition = _condition(spec, field, where_field, typed, sobject)
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
        return SoqlSearch(None, sobject, described)
    if groups:
        if len(groups) == 1:
            soql += " WHERE " + " AND ".join(groups[0])
        else:
            soql += " WHERE " + " OR ".join(f"({' AND '.join(g)})" for g in groups)

    order = [
        f"{field_of(sort.property, 'sorts').name} "
        f"{'DESC' if sort.direction == 'DESCENDING' else 'ASC'} NULLS LAST"
        for sort in request.sorts
    ]
    if id_field.name not in {o.split(" ")[0] for o in order}:
        order.append(f"{id_field.name} ASC")
    soql += " ORDER BY " + ", ".join(order)
    if request.limit is not None:
        soql += f" LIMIT {int(request.limit)}"
    return SoqlSearch(soql, sobject, described)


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


def _check_name(name: str, where: str) -> None:
    if not _FIELD_NAME.fullmatch(name):
        raise TerminalStepError(f"'{name}' is not a Salesforce name", field=where)


def _split_for_uri(
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
    kind: _Kind | None = field.kind if typed or name in STANDARD_FIELD_KINDS else None
    operator = spec.operator

    def literal(value: Any) -> str:
        if field.picklist:
            _check_picklist(value, spec.property, field, sobject, where)
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
        return " AND ".join(f"{name} LIKE {_like_pattern(word)}" for word in words)
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


def _check_picklist(value: Any, prop: str, field: OrgField, sobject: str, where: str) -> None:
    """A filter on a picklist must use one of its values: another one matches nothing."""
    text = str(value)
    if text.lower() in {v.lower() for v in field.picklist}:
        return
    suggestion = did_you_mean(text, field.picklist)
    raise TerminalStepError(
        f"'{text}' is not a value of the picklist {sobject}.{field.name} (property '{prop}'), "
        "so the filter would match nothing",
        field=where,
        hint=(f"{suggestion} " if suggestion else "")
        + f"values: {', '.join(field.picklist)}; map the playbook's value in "
        f"value_mapping.<object>.{prop}",
    )


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


def _records_table(
    records: list[dict[str, Any]], columns: tuple[tuple[str, str, _Kind | None], ...]
) -> pa.Table:
    """Records under the org's field names -> a table typed by the fields' kinds."""
    arrays: list[pa.Array] = []
    for _, field, described in columns:
        values = [record.get(field) for record in records]
        kind = described or "text"
        if kind == "date":
            arrays.append(pa.array([_parse_date(v) for v in values], pa.date32()))
        elif kind == "datetime":
            arrays.append(pa.array([_parse_datetime(v) for v in values], pa.timestamp("us")))
        elif kind in {"id", "text"}:
            text = [None if v is None else v if isinstance(v, str) else str(v) for v in values]
            arrays.append(pa.array(text, pa.string()))
        else:
            arrays.append(pa.array(values, _ARROW_TYPES[kind]))
    return pa.Table.from_arrays(arrays, names=[name for name, _, _ in columns])


def _combine(
    tables: list[pa.Table],
    columns: tuple[tuple[str, str, _Kind | None], ...],
    request: SearchConfig,
    *,
    several: bool,
) -> pa.Table:
    """The batches as one table; the results of several queries united by Id, sorted and
    cut to the limit as one query would have."""
    table = pa.concat_tables([_records_table([], columns), *tables])
    if not several:
        return table
    seen: set[Any] = set()
    first: list[bool] = []
    for record_id in table.column(_ID_PROPERTY).to_pylist():
        first.append(record_id not in seen)
        seen.add(record_id)
    table = table.filter(pa.array(first, pa.bool_()))
    missing = [s.property for s in request.sorts if s.property not in table.column_names]
    if missing:
        raise TerminalStepError(
            f"the search was split into several queries (a long IN list) and is sorted by "
            f"'{missing[0]}', which it does not return",
            field="sorts",
            hint=f"add '{missing[0]}' to the step's properties",
        )
    keys = [
        (s.property, "descending" if s.direction == "DESCENDING" else "ascending", "at_end")
        for s in request.sorts
    ]
    table = table.sort_by([*keys, (_ID_PROPERTY, "ascending", "at_end")])
    return table.slice(0, request.limit) if request.limit is not None else table


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
