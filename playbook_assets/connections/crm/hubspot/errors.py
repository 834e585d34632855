"""The one place HubSpot's client exceptions become the product's errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import hubspot.crm.associations.v4 as associations_v4
import hubspot.crm.objects as objects_api
import hubspot.crm.properties as properties_api
import urllib3

from playbook_assets.connections.kit.deadline import Deadline
from playbook_assets.connections.kit.errors import unchained
from playbook_assets.connections.kit.retry import Attempt
from playbook_assets.core.errors import (
    SourceUnreachableError,
    TerminalStepError,
    TransientStepError,
)

# Each API package of hubspot-api-client has its own ApiException class.
_API_EXCEPTIONS = (
    objects_api.ApiException,
    properties_api.ApiException,
    associations_v4.ApiException,
)
_TOKEN_HINT = (
    'set the connection\'s access_token (e.g. access_token: "${HUBSPOT_TOKEN}") to a valid '
    "private app token with the crm.objects.*.read and crm.schemas.*.read scopes"
)


class HttpError(Exception):
    """A 4xx answer (not 401/403/429) for the caller to explain."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ErrorMapping:
    """What HubSpot's client raised while ``what``, as the product's error."""

    base_url: str
    deadline: Deadline
    what: str
    scopes: tuple[str, ...]
    attempt: Attempt

    def __call__(self, error: Exception) -> Exception:
        if isinstance(error, _API_EXCEPTIONS):
            return self._answer(error)
        if isinstance(error, urllib3.exceptions.HTTPError):
            if self.deadline.expired():
                return self.deadline.error()
            reason = getattr(error, "reason", None) or error
            return SourceUnreachableError(
                f"cannot reach HubSpot at {self.base_url} while {self.what}: {reason}",
                hint="check base_url, the network and HubSpot's status page",
            )
        return error

    def _answer(self, error: Any) -> Exception:
        status = int(error.status or 0)
        message = _error_message(error.body)
        said = f" (HubSpot: {message})" if message else ""
        if status == 401:
            return unchained(
                TerminalStepError(
                    f"the HubSpot access token was rejected while {self.what}{said}",
                    hint=_TOKEN_HINT,
                )
            )
        if status == 403:
            needed = _required_scopes(error.body) or list(self.scopes)
            grant = (
                f"grant the private app the {' and '.join(needed)} scope"
                + ("s" if len(needed) > 1 else "")
                if needed
                else "add the missing read scopes to the private app"
            )
            return unchained(
                TerminalStepError(
                    f"the HubSpot access token lacks a scope needed for {self.what}{said}",
                    hint=grant + " (Settings > Integrations > Private apps > Scopes)",
                )
            )
        if status == 0:
            return SourceUnreachableError(
                f"cannot reach HubSpot at {self.base_url} while {self.what}: {error.reason}",
                hint="check base_url and the network",
            )
        if status == 429 or status >= 500:
            self.attempt.retry_after = _retry_after(error.headers)
            return TransientStepError(
                f"HubSpot answered {status} while {self.what} after {self.attempt.retries} "
                f"retries{said}",
                hint="lower requests_per_second or run the step again later",
            )
        return HttpError(status, message)


def _error_message(body: Any) -> str:
    if not body:
        return ""
    try:
        parsed = json.loads(body)
    except (TypeError, ValueError):
        return str(body)[:300]
    if isinstance(parsed, dict):
        return str(parsed.get("message") or parsed)[:500]
    return str(parsed)[:300]


def _required_scopes(body: Any) -> list[str]:
    """The scopes a 403 MISSING_SCOPES body names (``errors[].context.required*Scopes``)."""
    try:
        parsed = json.loads(body or "{}")
    except (TypeError, ValueError):
        return []
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    found: list[str] = []
    for error in errors if isinstance(errors, list) else []:
        context = error.get("context") if isinstance(error, dict) else None
        for key in ("requiredGranularScopes", "requiredScopes"):
            for scope in (context or {}).get(key) or []:
                if str(scope) not in found:
                    found.append(str(scope))
    return found


def _retry_after(headers: Any) -> float | None:
    raw = headers.get("Retry-After") if headers else None
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None
