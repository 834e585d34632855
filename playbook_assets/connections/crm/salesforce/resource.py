"""The Salesforce resource: settings, the search (describe, compile, split, page, unite) and
its SOQL as run metadata. See the package docstring for the documented behaviours it relies
on; requests and their errors are ``connection.py``'s."""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field, PrivateAttr

from playbook_assets.connections.crm.base import DEFAULT_RETRY_ATTEMPTS, CrmResource
from playbook_assets.connections.crm.salesforce.connection import Connection
from playbook_assets.connections.crm.salesforce.fields import (
    DEFAULT_FIELDS,
    DEFAULT_OBJECTS,
    DEFAULT_VALUE_MAPPING,
    DESCRIBE_KINDS,
    MAX_REQUEST_BYTES,
    OrgField,
    SoqlSearch,
)
from playbook_assets.connections.crm.salesforce.records import combine, records_table
from playbook_assets.connections.crm.salesforce.soql import (
    compile_search,
    sobject_of,
    split_for_uri,
)
from playbook_assets.connections.crm.values import ValueMapping
from playbook_assets.core.spec import SearchConfig


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

    # -- settings -------------------------------------------------------------------------------

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

    # -- search ---------------------------------------------------------------------------------

    def search(
        self,
        request: SearchConfig,
        *,
        timeout_seconds: float | None = None,
        retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
    ) -> pa.Table:
        """Run the search as SOQL and return every matching record (up to ``request.limit``)."""
        request = self.mapped(request)
        sobject = sobject_of(request, self.objects())
        connection = Connection(self, sobject, timeout_seconds, retry_attempts)
        try:
            org = self._org_fields(connection, sobject)
            queries = split_for_uri(
                request,
                lambda r: compile_search(r, self.objects(), self.fields(r.object), org),
                connection.fits,
            )
            tables = [
                records_table(records, query.columns)
                for query in queries
                if query.soql is not None
                for records in connection.batches(query.soql)
            ]
        finally:
            connection.close()
        return combine(tables, queries[0].columns, request, several=len(queries) > 1)

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

    # -- connect --------------------------------------------------------------------------------

    def _org_fields(self, connection: Connection, sobject: str) -> dict[str, OrgField]:
        """The sObject's fields by lower-case name, from its describe call (read once)."""
        cached = self._describes.get(sobject.lower())
        if cached is not None:
            return cached
        found: dict[str, OrgField] = {}
        for item in connection.describe(sobject).get("fields") or []:
            name = str(item["name"])
            kind = DESCRIBE_KINDS.get(str(item.get("type")), "text")
            values: tuple[str, ...] = ()
            if item.get("type") in {"picklist", "multipicklist"}:
                values = tuple(str(v["value"]) for v in item.get("picklistValues") or [])
            found[name.lower()] = OrgField(name, kind, values)
        self._describes[sobject.lower()] = found
        return found
