"""Marketo: CRM ``search`` steps answered by Marketo's REST API (leads by filter).

What runs where. Marketo's ``GET /rest/v1/leads.json`` filters by one field only, by equality
with up to 300 values (``filterType`` / ``filterValues``), so a search is answered in two
stages:

- server side: the first ``EQ`` or ``IN`` filter, in order, on a field Marketo can search
  (``searchableFields`` of ``/rest/v1/leads/describe2.json``) whose values hold no comma (the
  list separator). An ``IN`` list is sent in
  batches of 300 values; each batch is paged with ``nextPageToken`` (``batchSize`` up to
  300); leads met twice are kept once;
- client side: every filter (the pushed one too, so Marketo's own matching only narrows),
  the sorts and the limit, evaluated on the fetched leads with exactly the demo CRM's
  semantics (``hubspot_filters.evaluate_locally``): NEQ, NOT_IN, LT, LTE, GT, GTE, BETWEEN,
  HAS_PROPERTY, NOT_HAS_PROPERTY, CONTAINS_TOKEN, EQ / IN on fields Marketo cannot search, and
  every filter of a group after the pushed one. With several groups, the first pushable filter
  of each group is sent (the union of their values) only when they are all on the same field.

Marketo has no "all leads" call, so a search needs such an EQ / IN filter; without one it
fails with a message that says so (use a ``${steps.ID.email}`` list, for instance).

Names: the request uses HubSpot property names (``firstname``, ``createdate``...), mapped to
Marketo's REST names by ``DEFAULT_FIELD_MAP`` and the ``field_map`` setting; names that are
not mapped are used as Marketo names. Output columns keep the requested names; values are
typed from Marketo's ``dataType`` (integer, float, boolean, date, datetime as naive UTC).
``hs_object_id`` is the lead ``id`` (BIGINT); ``associations: [companies]`` gives
``company_id`` from the lead field ``company_id_field`` (BIGINT when every value is an
integer).

Errors: Marketo answers HTTP 200 with ``success: false``; 601/602 (token invalid/expired)
fetch a new token once; 606 (rate), 615 (concurrency), 604/608/611/713 (temporary), HTTP 429
and 5xx and dropped connections are retried by the connections' one policy (``kit/retry.py``),
at most ``retry_attempts`` times (the step's ``execution.retry_attempts``; the step does not
retry again, and a token fetched within a call spends the call's budget), and raise
``TransientStepError`` when they run out; 607 (daily quota) raises ``TerminalStepError`` at
once, naming the quota: it resets only at midnight US Central time, so no retry within the
run can succeed; 1003/1006 (bad field or value) raise ``TerminalStepError`` with a
did-you-mean.

Rate: every call waits for the instance's limit of 100 calls per 20 s (``calls_per_20_seconds``),
shared by every process that uses the instance (``crm/rate_limit.py``).

Documented behaviour this module relies on (developers.marketo.com/rest-api; each tested in
tests/test_crm_marketo.py against tests/marketo_standin.py):

- paging end: ``nextPageToken`` until a page has none (test_paging_is_complete_without_duplicates);
- caps: 300 ``filterValues`` a call, ``batchSize`` up to 300, URLs up to 8 KB, past which the
  call is a POST with ``_method=GET`` (test_in_lists_over_300_values_are_batched);
- name case: REST field names as ``describe2`` spells them (test_token_fetch_and_typed_rows);
- error shapes: HTTP 200 with ``success: false`` and ``errors: [{code, message}]``
  (test_expired_token_is_refreshed_once, test_daily_quota_fails_at_once_naming_it,
  test_bad_field_from_marketo_suggests_the_closest);
- rate limits: 100 calls per 20 s per instance, 606 past it (test_rate_limit_then_success,
  test_retries_stay_within_the_budget).
"""

from playbook_assets.connections.crm.marketo.resource import DEFAULT_FIELD_MAP, MarketoCrm

__all__ = ["DEFAULT_FIELD_MAP", "MarketoCrm"]
