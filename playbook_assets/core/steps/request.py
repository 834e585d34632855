"""The ``request`` step: a REST API call, page after page, its records as rows."""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa
from pydantic import Field

from playbook_assets.core.models import StrictModel
from playbook_assets.core.references import ResolutionContext
from playbook_assets.core.steps.api_models import ApiAuth, ApiStepType, Pagination
from playbook_assets.core.steps.base import (
    Sources,
    StepBase,
)


class RequestConfig(StrictModel):
    """Configuration of a REST ``request`` step."""

    method: Literal["GET", "POST"] = Field(default="GET", description="HTTP method.")
    url: str = Field(description="http(s) URL; ${...} references in it are URL-encoded.")
    query: dict[str, Any] = Field(default_factory=dict, description="Query string parameters.")
    headers: dict[str, str] = Field(default_factory=dict, description="Headers (not secrets).")
    auth: ApiAuth | None = Field(default=None, description="Credentials from the environment.")
    body: Any = Field(default=None, description="JSON body of a POST.")
    records_path: str | None = Field(
        default=None, description="Dotted path of the list of records (default: the response)."
    )
    pagination: Pagination = Field(default_factory=Pagination, description="Paging.")


class RequestStep(StepBase[RequestConfig]):
    """Calls a REST API."""

    type: Literal["request"] = Field(description="Step type.")
    source: Literal["api"] = Field(default="api", description="Always api.")
    config: RequestConfig = Field(description="The request.")


class Request(ApiStepType):
    """A REST request; ``${...}`` in the URL are URL-encoded, credentials come from the
    environment."""

    name = "request"
    model = RequestStep

    def describe(self, sources: Sources, config: Any, resolution: ResolutionContext) -> Any:
        return sources.describe_rest(config, resolution)

    def fetch(
        self, sources: Sources, config: Any, resolution: ResolutionContext, timeout: float
    ) -> pa.Table:
        return sources.fetch_rest(config, resolution, timeout_seconds=timeout)

    def kind(self, step: StepBase[Any], connection_kind: str | None) -> str:
        return "rest"
