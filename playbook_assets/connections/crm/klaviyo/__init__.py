"""Klaviyo: CRM ``search`` steps answered from Klaviyo profiles and segments.

Through the official klaviyo-api SDK (``KlaviyoAPI``), whose ``test_host`` sets the base URL
(used by tests); it sends ``Authorization: Klaviyo-API-Key <key>`` and its ``revision``
header. Its own retries (and urllib3's under it) are off: 429 and 5xx answers and dropped
connections are retried by the connections' one policy (``kit/retry.py``), honouring
``Retry-After``, so that a request is sent at most ``1 + retry_attempts`` times (the step's
``execution.retry_attempts``; the step does not retry again) and each attempt waits for the
rate limit. Every call waits for the
account's rate limit (``requests_per_second`` and ``requests_per_minute``: Klaviyo's profiles
endpoints allow 75/s burst and 700/min steady), shared by every process that uses the key
(``crm/rate_limit.py``), and has a time limit (``_request_timeout``).

Objects: ``profiles`` (or ``contacts``) is ``GET /api/profiles``; ``segments/<id>`` is the
members of a segment, ``GET /api/segments/<id>/profiles``. A segment is an object rather than a
filter because Klaviyo serves it from its own endpoint, with its own filter fields.

What runs where. Klaviyo filters a few fields server side (``filter=``, JSON:API syntax); for
a request with one filter group:

- ``profiles``: EQ / IN on ``email`` and ``id`` (``equals`` / ``any``; an IN list is sent in
  chunks of 100, Klaviyo's ``any`` limit); GT / GTE / LT / LTE / BETWEEN on ``created`` and
  ``updated`` as ``greater-than`` / ``less-than``, widened by one second for the inclusive
  ones (Klaviyo has only the strict operators on these fields);
- ``segments/<id>``: EQ / IN on ``email`` and ``id`` (``profile_id``);

emails are sent lower-cased (Klaviyo stores them so). Everything is then evaluated client
side with exactly the demo CRM's semantics (``hubspot_filters.evaluate_locally``): every
filter again (the server only narrows), NEQ, NOT_IN, CONTAINS_TOKEN, HAS_PROPERTY, NOT_HAS_PROPERTY,
filters on other fields, several filter groups, sorts and the limit. Pages are ``page[size]`` (max
100), followed through ``links.next``.

Names: HubSpot contact properties map to profile attributes (``DEFAULT_FIELD_MAP``, extended
or overridden by ``field_map``); ``properties.<name>`` is a custom property; other names are
used as attribute names. ``hs_object_id`` is Klaviyo's profile id (text, not a number).
Profiles have no associations.

Errors: 401 / 403 -> ``TerminalStepError`` (bad or under-scoped key), 400 -> ``TerminalStepError``
with Klaviyo's detail, 429 / 5xx after the SDK's retries -> ``TransientStepError``, no
connection -> ``SourceUnreachableError``.

Documented behaviour this module relies on (developers.klaviyo.com/en/reference; each tested
in tests/test_crm_klaviyo.py against tests/klaviyo_standin.py):

- paging end: ``links.next`` until it is null (test_profiles_typed_and_paged);
- caps: ``page[size]`` up to 100, ``any(...)`` lists up to 100 values
  (test_in_list_is_sent_in_chunks_of_100);
- name case: attribute names as the API spells them (``first_name``), custom properties
  under ``properties`` (test_profiles_typed_and_paged);
- error shapes: ``{"errors": [{status, code, title, detail, source}]}``
  (test_bad_key, test_unknown_segment);
- rate limits: 429 ``throttled`` with ``Retry-After``, retried within the budget
  (test_rate_limit_then_success, test_retries_stay_within_the_budget).
"""

from playbook_assets.connections.crm.klaviyo.resource import DEFAULT_FIELD_MAP, KlaviyoCrm

__all__ = ["DEFAULT_FIELD_MAP", "KlaviyoCrm"]
