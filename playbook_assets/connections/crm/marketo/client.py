"""One Marketo search's HTTP session: the access token, the rate limit, retries and the time
limit, and the one place Marketo's answers become the product's errors (``_answer``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import requests

from playbook_assets.connections.crm.marketo.plan import LeadField
from playbook_assets.connections.kit.deadline import Deadline, step_timeout
from playbook_assets.connections.kit.retry import Attempt, RetryPolicy, call_with_retries
from playbook_assets.core.errors import (
    SourceUnreachableError,
    StepTimeoutError,
    TerminalStepError,
    TransientStepError,
    did_you_mean,
)

if TYPE_CHECKING:
    from playbook_assets.connections.crm.marketo.resource import MarketoCrm

_AUTH_CODES = {"601", "602"}
_RETRY_CODES = {"604", "606", "608", "611", "615", "713"}
_FIELD_CODES = {"1003", "1006"}
_MAX_GET_URL = 7000  # Marketo rejects URLs over 8 KB; longer calls use POST with _method=GET
_THROTTLED_HINT = (
    "Marketo allows 100 calls per 20 s and 10 at once per instance; "
    "retry later or lower the load from other integrations"
)


def timed_out(what: str) -> StepTimeoutError:
    """The error of a Marketo call cut off at the time limit."""
    return step_timeout(
        f"Marketo did not answer {what} in time", also="request_timeout_seconds on the connection"
    )


class MarketoClient:
    """One search's HTTP session: the access token, retries, time limit."""

    def __init__(self, crm: MarketoCrm, deadline: Deadline, retries: int) -> None:
        self.crm = crm
        self.base = crm.base_url.rstrip("/")
        self.deadline = deadline
        self.policy = RetryPolicy(retries=retries, backoff_seconds=crm.backoff_seconds)
        self.session = requests.Session()
        self.token: str | None = None
        self.token_expiry = 0.0
        self.field_names: list[str] = []

    def __enter__(self) -> MarketoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    # -- calls ----------------------------------------------------------------------------------

    def describe(self) -> dict[str, LeadField]:
        """Lead fields by REST name (``/rest/v1/leads/describe2.json``)."""
        body = self.call("GET", "/rest/v1/leads/describe2.json", {})
        result = body.get("result") or [{}]
        searchable = {name for group in result[0].get("searchableFields", []) for name in group}
        fields = {
            str(f["name"]): LeadField(
                str(f["name"]), str(f.get("dataType", "string")), f["name"] in searchable
            )
            for f in result[0].get("fields", [])
        }
        self.field_names = sorted(fields)
        return fields

    def leads(
        self, filter_type: str, values: list[str], fields: list[str], batch_size: int
    ) -> Iterator[dict[str, Any]]:
        """Every lead whose ``filter_type`` is one of ``values``, page by page."""
        page_token: str | None = None
        while True:
            params = {
                "filterType": filter_type,
                "filterValues": ",".join(values),
                "fields": ",".join(fields),
                "batchSize": str(batch_size),
            }
            if page_token:
                params["nextPageToken"] = page_token
            body = self.call("GET", "/rest/v1/leads.json", params)
            result = body.get("result") or []
            yield from result
            page_token = body.get("nextPageToken")
            if not page_token or not result:
                return

    def call(self, method: str, path: str, params: dict[str, str]) -> dict[str, Any]:
        """One REST call, retried by the connections' policy; the body of a successful answer."""
        return call_with_retries(
            lambda attempt: self._call_once(method, path, params, attempt),
            self.policy,
            self.deadline,
        )

    def _call_once(
        self, method: str, path: str, params: dict[str, str], attempt: Attempt
    ) -> dict[str, Any]:
        # A rejected token is fetched again once: that is not a retry.
        for reauthenticated in (False, True):
            response = self._send(method, path, params, attempt)
            body = self._answer(response, path, attempt, reauthenticated)
            if body is not None:
                return body
            self.token = None
        raise AssertionError("unreachable")

    def _send(
        self, method: str, path: str, params: dict[str, str], attempt: Attempt
    ) -> requests.Response:
        self.crm.wait_for_rate(
            ("marketo", self.base, self.crm.client_id),
            [(self.crm.calls_per_20_seconds, 20.0)],
            self.deadline,
        )
        url = self.base + path
        headers = {"Authorization": f"Bearer {self._access_token(attempt)}"}
        data: dict[str, str] | None = None
        prepared = requests.Request(method, url, params=params).prepare()
        if method == "GET" and len(prepared.url or "") > _MAX_GET_URL:
            # Marketo's documented way around its 8 KB URL limit.
            method, data, params = "POST", params, {"_method": "GET"}
        try:
            return self.session.request(
                method, url, params=params, data=data, headers=headers, timeout=self._timeout()
            )
        except requests.RequestException as e:
            raise self._request_error(e, path) from e

    def _access_token(self, attempt: Attempt) -> str:
        # Fetched within the call's attempt, so a failing identity endpoint spends the same
        # retry budget as the call instead of retries of its own.
        if self.token is not None and time.monotonic() < self.token_expiry:
            return self.token
        body = self._token_once(attempt)
        self.token = str(body["access_token"])
        # Renew a little early so a token never expires between check and use.
        lifetime = float(body.get("expires_in", 3600))
        self.token_expiry = time.monotonic() + lifetime - min(60.0, lifetime / 10)
        return self.token

    def _token_once(self, attempt: Attempt) -> dict[str, Any]:
        try:
            response = self.session.get(
                f"{self.base}/identity/oauth/token",
                params={
                    "grant_type": "client_credentials",
                    "client_id": self.crm.client_id,
                    "client_secret": self.crm.client_secret,
                },
                timeout=self._timeout(),
            )
        except requests.RequestException as e:
            # The URL holds the client secret: report the error's kind only, no cause.
            raise SourceUnreachableError(
                f"cannot reach Marketo's identity endpoint at {self.base}: {type(e).__name__}",
                hint="check base_url and the network",
            ) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise _throttled(attempt, f"identity endpoint HTTP {response.status_code}")
        body = _json(response, "/identity/oauth/token")
        if response.status_code != 200 or "access_token" not in body:
            reason = body.get("error_description") or body.get("error") or response.status_code
            raise TerminalStepError(
                f"Marketo refused the client credentials: {reason}",
                hint="check client_id and client_secret (Admin > LaunchPoint > View Details)",
            )
        return body

    def _timeout(self) -> float:
        return self.deadline.request_timeout(self.crm.request_timeout_seconds)

    # -- error mapping --------------------------------------------------------------------------

    def _request_error(self, error: requests.RequestException, path: str) -> Exception:
        if isinstance(error, requests.ConnectTimeout):
            return SourceUnreachableError(f"cannot connect to Marketo at {self.base}")
        if isinstance(error, requests.Timeout):
            return timed_out(path)
        return SourceUnreachableError(
            f"cannot reach Marketo at {self.base}: {type(error).__name__}",
            hint="check base_url (https://<munchkin id>.mktorest.com) and the network",
        )

    def _answer(
        self, response: requests.Response, path: str, attempt: Attempt, reauthenticated: bool
    ) -> dict[str, Any] | None:
        """The body of a successful answer; None when the token must be fetched again; the
        product's error for every other answer."""
        status = response.status_code
        if status == 429 or status >= 500:
            raise _throttled(attempt, f"HTTP {status}")
        if status == 414:
            raise TerminalStepError("Marketo rejected the request URL as too long")
        if status != 200:
            raise TerminalStepError(
                f"Marketo answered HTTP {status} to {path}: {response.text[:300]}"
            )
        body = _json(response, path)
        if body.get("success", False):
            return body
        errors = body.get("errors") or [{}]
        code = str(errors[0].get("code", ""))
        message = str(errors[0].get("message", "unknown error"))
        if code in _AUTH_CODES and not reauthenticated:
            return None
        raise self._marketo_error(code, message, attempt)

    def _marketo_error(self, code: str, message: str, attempt: Attempt) -> Exception:
        if code in _AUTH_CODES:
            return TerminalStepError(
                f"Marketo rejected a fresh access token ({code} {message})",
                hint="check that the API user's role has the 'Read-Only Lead' permission",
            )
        if code in _RETRY_CODES:
            return _throttled(attempt, f"Marketo error {code} {message}")
        if code == "607":
            return TerminalStepError(
                f"Marketo's daily API quota is used up ({code} {message})",
                hint="the quota (50,000 calls a day unless Marketo raised it) resets at "
                "midnight US Central time; run again then, or ask Marketo for a larger one",
            )
        if code in _FIELD_CODES:
            name = _quoted_name(message)
            suggestion = did_you_mean(name, self.field_names) if name else None
            return TerminalStepError(
                f"Marketo rejected a field or filter ({code} {message})",
                field="properties",
                hint=suggestion or "check the property names and field_map",
            )
        return TerminalStepError(f"Marketo error {code}: {message}")


def _throttled(attempt: Attempt, reason: str) -> TransientStepError:
    return TransientStepError(
        f"Marketo is still throttling or failing after {attempt.retries} retries ({reason})",
        hint=_THROTTLED_HINT,
    )


def _json(response: requests.Response, path: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as e:
        raise TerminalStepError(
            f"Marketo answered {path} with HTTP {response.status_code} and no JSON body"
        ) from e
    if not isinstance(body, dict):
        raise TerminalStepError(f"Marketo answered {path} with unexpected JSON")
    return body


def _quoted_name(message: str) -> str | None:
    start = message.find("'")
    end = message.find("'", start + 1)
    return message[start + 1 : end] if 0 <= start < end else None
