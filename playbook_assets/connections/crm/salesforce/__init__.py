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
Other throttling (the concurrent long-request limit), 5xx answers, dropped connections and
request timeouts are retried by the connections' one policy (``kit/retry.py``: exponential
backoff with jitter) at most ``retry_attempts`` times (the step's ``execution.retry_attempts``;
the step does not retry again), then raised as TransientStepError (SourceUnreachableError when
the org could not be reached). INVALID_SESSION_ID
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

from playbook_assets.connections.crm.salesforce.fields import (
    DEFAULT_FIELDS,
    DEFAULT_OBJECTS,
    DEFAULT_VALUE_MAPPING,
    OrgField,
    SoqlSearch,
)
from playbook_assets.connections.crm.salesforce.literals import soql_literal, soql_string
from playbook_assets.connections.crm.salesforce.resource import SalesforceCrm
from playbook_assets.connections.crm.salesforce.soql import compile_search

__all__ = [
    "DEFAULT_FIELDS",
    "DEFAULT_OBJECTS",
    "DEFAULT_VALUE_MAPPING",
    "OrgField",
    "SalesforceCrm",
    "SoqlSearch",
    "compile_search",
    "soql_literal",
    "soql_string",
]
