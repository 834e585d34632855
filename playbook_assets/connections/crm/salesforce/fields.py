"""Salesforce's names and types as this integration sees them: the default object and field
mappings from HubSpot's names, the default picklist value mapping, the describe call's field
types, and a field and a compiled search as the other modules pass them around."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from playbook_assets.connections.crm.values import ValueMapping
from playbook_assets.core.errors import TerminalStepError

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
HEADER_ALLOWANCE = 1024  # headers requests adds beyond the session's (Host, Accept, ...)
ID_PROPERTY = "hs_object_id"
ASSOCIATIONS = {"companies": "company_id", "company": "company_id"}

Kind = Literal["id", "text", "number", "integer", "boolean", "date", "datetime"]
# Describe field types (REST API Developer Guide, "Field" in the describe result) -> kinds.
DESCRIBE_KINDS: dict[str, Kind] = {
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
STANDARD_FIELD_KINDS: dict[str, Kind] = {
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
FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclass(frozen=True)
class OrgField:
    """A field as the org's describe call gives it."""

    name: str
    kind: Kind
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
    columns: tuple[tuple[str, str, Kind | None], ...]


def check_name(name: str, where: str) -> None:
    """An error unless ``name`` can be written in SOQL as it is (an object or field name)."""
    if not FIELD_NAME.fullmatch(name):
        raise TerminalStepError(f"'{name}' is not a Salesforce name", field=where)
