"""HubSpot: search steps answered by the CRM search API through hubspot-api-client.

A search is ``POST /crm/v3/objects/{object}/search`` with ``filterGroups``, ``properties``,
``sorts`` and paging by ``after`` (up to 200 records a page). HubSpot answers at most 10,000
records per search, so every search that may need more is sorted by ``hs_object_id`` ascending
and read in windows. HubSpot keeps sending a ``paging.next.after`` link up to the cap and
answers 400 to a page past it, so a window ends by counting: once it holds 10,000 records (its
last page shortened to end exactly there) and its ``total`` is larger, the next window repeats
the search with an extra ``hs_object_id GT <last id>`` filter in every group. HubSpot takes
one sort rule per search, so a step's own ``sorts`` are applied to the collected rows with
pyarrow (then ``hs_object_id`` ascending, NULLs last, as the demo CRM does); a step with a
single sort and a ``limit`` of at most 10,000 is sorted by HubSpot instead and stops reading
at the limit (rows tied with the last one may then differ from the demo CRM's choice).

Filter groups that leave no room for the window filter (HubSpot allows 5 groups, 6 filters a
group, 18 in all) are searched one group at a time and the results united by id.

Property values arrive as strings and are typed by the property's ``type`` from the properties
API (``GET /crm/v3/properties/{object}``, read once per object and resource instance):
``number`` -> int64 when every value of the column is a whole number, else float64; ``date``
-> date32; ``datetime`` -> naive UTC timestamp[us]; ``bool`` -> bool; other types stay text.
``hs_object_id`` and association columns are int64. ``associations: [companies]`` is read
with the v4 batch associations API (100 ids a request) into ``company_id`` (the primary
association, else the smallest id).

Every request waits for the account's rate limit (``requests_per_second``), shared by every
process that uses the same token through a SQLite bucket (``crm/rate_limit.py``). 429 and 5xx
answers, dropped connections and read timeouts are retried with exponential backoff and full
jitter, waiting at least the ``Retry-After`` HubSpot sends, at most ``retry_attempts`` times
(the step's ``execution.retry_attempts``: the step does not retry again), by the connections'
one retry policy (``kit/retry.py``), not by urllib3 (whose Retry is off), so that each attempt
passes the rate limiter and the attempts do not multiply.

Documented behaviour this module relies on (each tested in tests/test_crm_hubspot.py against
tests/hubspot_standin.py):

- paging end: ``paging.next.after`` until the last page; it is also sent on the page that
  reaches the 10,000 cap (test_more_than_10000_results_are_complete, both link behaviours);
- caps: 200 records a page, 10,000 a search and a 400 past it, 5 filter groups, 6 filters a
  group, 18 in all, one sort (test_more_than_10000_results_are_complete,
  test_filter_groups_beyond_the_limits_are_split);
- name case: property names are the internal names, lower case, and values come back as
  text (test_values_are_typed);
- error shapes: ``{"status": "error", "message", "category"}``; 401 INVALID_AUTHENTICATION,
  403 MISSING_SCOPES with ``context.requiredGranularScopes``, 400 VALIDATION_ERROR, 429
  RATE_LIMIT with Retry-After (test_bad_token_is_a_clear_terminal_error,
  test_missing_scope_names_the_scope, test_unknown_names_suggest_the_closest_but_never_the_same);
- rate limits: 5 search requests per second per account
  (test_rate_limit_holds_across_processes, test_429_storm_loses_no_rows...);
- retries: at most ``retry_attempts`` of each request (test_retries_stay_within_the_budget).
"""

from playbook_assets.connections.crm.hubspot.resource import HubSpotCrm

__all__ = ["HubSpotCrm"]
