"""One Salesforce search's session: login (lazily, and once more when the session expires),
requests retried by the connections' policy within the time limit, paging, the request size
check, and the one place simple-salesforce's exceptions become the product's errors
(``ErrorMapping``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote_plus, urlencode, urlsplit

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceResourceNotFound,
)
from simple_salesforce.login import SalesforceLogin

from playbook_assets.connections.crm.salesforce.fields import HEADER_ALLOWANCE, MAX_REQUEST_BYTES
from playbook_assets.connections.kit.deadline import Deadline, step_timeout
from playbook_assets.connections.kit.errors import mapped_errors
from playbook_assets.connections.kit.retry import Attempt, RetryPolicy, call_with_retries
from playbook_assets.core.errors import (
    SourceUnreachableError,
    TerminalStepError,
    TransientStepError,
)

if TYPE_CHECKING:
    from playbook_assets.connections.crm.salesforce.resource import SalesforceCrm

_T = TypeVar("_T")


class Connection:
    """One search's session: logs in lazily, retries throttling, logs in again once."""

    def __init__(
        self, settings: SalesforceCrm, sobject: str, timeout_seconds: float | None, retries: int
    ) -> None:
        self.settings = settings
        self.sobject = sobject
        self.deadline = Deadline(
            timeout_seconds,
            lambda: step_timeout(
                f"the Salesforce search ran longer than {timeout_seconds:g} s and was stopped",
                also="narrow the filters",
            ),
        )
        self.policy = RetryPolicy(retries=retries, backoff_seconds=settings.backoff_seconds)
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
        """Close the HTTP session."""
        self.session.close()

    # -- requests -------------------------------------------------------------------------------

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
        return size + HEADER_ALLOWANCE <= self.settings.max_request_bytes

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
        return self.deadline.request_timeout(self.settings.request_timeout_seconds)

    def _call(self, operation: Callable[[Salesforce], _T]) -> _T:
        return call_with_retries(
            lambda attempt: self._call_once(operation, attempt), self.policy, self.deadline
        )

    def _call_once(self, operation: Callable[[Salesforce], _T], attempt: Attempt) -> _T:
        mapping = ErrorMapping(
            self.sobject, self.settings.request_timeout_seconds, self.deadline, attempt
        )
        while True:
            client = self._client()
            try:
                with mapped_errors(mapping, passthrough=(SalesforceExpiredSession,)):
                    return operation(client)
            except SalesforceExpiredSession as e:
                # One new login (not a retry) when the session expired and a user can log in.
                code, _ = error_details(e)
                can_login = self.settings.username is not None and not self.relogged
                if code != "INVALID_SESSION_ID" or not can_login:
                    raise mapping.expired_session(e) from e
                self.relogged = True
                self.client = None

    # -- connect --------------------------------------------------------------------------------

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
                    f"Salesforce login failed ({e.code}): {first_line(e.auth_message)}",
                    hint="check username, password and security_token (a new token is mailed "
                    "when the password changes), and domain ('test' for a sandbox)",
                ) from e
            except requests.RequestException as e:
                raise unreachable(e, "the Salesforce login endpoint") from e
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


# ---------------------------------------------------------------------------------------------
# Error mapping
# ---------------------------------------------------------------------------------------------


class ErrorMapping:
    """What simple-salesforce (or requests under it) raised, as the product's error."""

    def __init__(
        self, sobject: str, request_timeout_seconds: float, deadline: Deadline, attempt: Attempt
    ) -> None:
        self.sobject = sobject
        self.request_timeout_seconds = request_timeout_seconds
        self.deadline = deadline
        self.attempt = attempt

    def __call__(self, error: Exception) -> Exception:
        if isinstance(error, SalesforceResourceNotFound):
            return TerminalStepError(
                f"the Salesforce org has no object '{self.sobject}'",
                field="object",
                hint="map the object in object_mapping to an sObject of the org (custom ones "
                "end in __c), and check that the user's profile can read it",
            )
        if isinstance(error, SalesforceError):
            return self.answer(error)
        if isinstance(error, requests.ConnectTimeout):
            return unreachable(error, "Salesforce")
        if isinstance(error, requests.Timeout):
            if self.deadline.expired(margin=0.05):
                return self.deadline.error()
            return TransientStepError(
                f"a Salesforce request took longer than {self.request_timeout_seconds:g} s",
                hint="raise request_timeout_seconds, or narrow the filters",
            )
        if isinstance(error, requests.RequestException):
            return unreachable(error, "Salesforce")
        return error

    def answer(self, error: SalesforceError) -> Exception:
        """The error of an answer Salesforce gave (an error body)."""
        code, message = error_details(error)
        if error.status in (414, 431):
            return TerminalStepError(
                f"Salesforce refused the request as too long (HTTP {error.status}): the "
                f"URI plus headers must stay under {MAX_REQUEST_BYTES:,} bytes",
                field="filters",
                hint="lower max_request_bytes on the connection if a proxy allows "
                "less (long IN lists are then split into more queries), or use fewer "
                "or shorter filter values",
            )
        if code == "REQUEST_LIMIT_EXCEEDED" and "TotalRequests" in message:
            return TerminalStepError(
                f"the Salesforce org's daily API request limit is used up "
                f"({code}: {first_line(message)})",
                hint="the limit frees up over a rolling 24 hours (Setup > Company "
                "Information shows API requests in the last 24 hours); run again "
                "later or ask Salesforce to raise it",
            )
        if code == "REQUEST_LIMIT_EXCEEDED" or error.status >= 500:
            return TransientStepError(
                f"Salesforce refused the request after {self.attempt.number} attempts "
                f"({code or error.status}): {first_line(message)}",
                hint="too many requests at once for the org, or a passing failure; retry later",
            )
        if code == "INVALID_TYPE":
            return TerminalStepError(
                f"Salesforce does not know the object of the query: {first_line(message)}",
                field="object",
                hint="map the object in object_mapping, e.g. {tickets: Case}",
            )
        return TerminalStepError(
            f"Salesforce rejected the query on {self.sobject} ({code or error.status}): "
            f"{first_line(message)}",
            hint="check the filters' values against the fields' types",
        )

    def expired_session(self, error: SalesforceError) -> TerminalStepError:
        """The error of a session that is invalid and cannot be renewed."""
        code, message = error_details(error)
        return TerminalStepError(
            f"the Salesforce session is invalid or expired ({code or error.status}): "
            f"{first_line(message)}",
            hint="set a fresh session_id, or configure username, password and "
            "security_token so that the executor can log in again",
        )


def unreachable(error: requests.RequestException, what: str) -> SourceUnreachableError:
    """The error of a Salesforce endpoint that cannot be reached."""
    return SourceUnreachableError(
        f"cannot reach {what}: {type(error).__name__}",
        hint="check instance_url / domain / login_url, the network and proxies, and verify "
        "(the CA bundle) for TLS errors",
    )


def error_details(error: SalesforceError) -> tuple[str, str]:
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


def first_line(message: str) -> str:
    """The useful line of a Salesforce message (query errors repeat the statement first)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in reversed(lines):
        if not line.startswith(("ERROR at Row", "^")):
            return line
    return lines[-1] if lines else message
