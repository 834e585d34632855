"""What the API steps (``request``, ``graphql``) share: credentials, paging, the URL check and
how a call is prepared."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from playbook_assets.core.errors import PlaybookValidationError
from playbook_assets.core.models import IDENTIFIER_PATTERN, StrictModel
from playbook_assets.core.references import ResolutionContext
from playbook_assets.core.steps.base import (
    Sources,
    StepBase,
    StepContext,
    StepRequest,
    StepType,
    ValidationContext,
    request_fingerprint,
)


class ApiAuth(StrictModel):
    """Credentials of an API request, read from environment variables when the step runs."""

    bearer_token_env: str | None = Field(
        default=None,
        pattern=IDENTIFIER_PATTERN,
        description="Environment variable holding a token sent as 'Authorization: Bearer ...'.",
    )
    header: str | None = Field(default=None, description="Header carrying an API key.")
    value_env: str | None = Field(
        default=None,
        pattern=IDENTIFIER_PATTERN,
        description="Environment variable holding the value of 'header'.",
    )

    @model_validator(mode="after")
    def _one_scheme(self) -> ApiAuth:
        if self.bearer_token_env is not None:
            if self.header is not None or self.value_env is not None:
                raise ValueError("use either bearer_token_env or header + value_env, not both")
        elif self.header is None or self.value_env is None:
            raise ValueError("give bearer_token_env, or both header and value_env")
        return self


class Pagination(StrictModel):
    """How to fetch every page of an API's results."""

    type: Literal["none", "cursor", "offset", "link_header"] = Field(
        default="none", description="none, cursor, offset or link_header (RFC 8288 rel=next)."
    )
    cursor_param: str = Field(
        default="cursor", description="cursor: query parameter (or GraphQL variable) to send."
    )
    cursor_path: str | None = Field(
        default=None, description="cursor: dotted path of the next cursor in the response."
    )
    offset_param: str = Field(default="offset", description="offset: query parameter.")
    limit_param: str = Field(default="limit", description="offset: page size parameter.")
    page_size: int = Field(default=100, ge=1, description="offset: records per page.")
    max_pages: int = Field(default=1000, ge=1, description="Stop after this many pages.")

    @model_validator(mode="after")
    def _cursor_path(self) -> Pagination:
        if self.type == "cursor" and not self.cursor_path:
            raise ValueError("cursor pagination needs 'cursor_path'")
        return self


def check_url(url: str, ctx: ValidationContext) -> None:
    """An API step's URL must be written in full: http(s)."""
    text = url.strip()
    if not text.lower().startswith(("http://", "https://")):
        raise PlaybookValidationError(
            f"'{text}' is not an http(s) URL",
            location=ctx.where("url"),
            field="config.url",
            hint="write the URL in full, e.g. https://api.example.com/v1/items",
        )


class ApiStepType(StepType):
    """A call to an API named by its URL: the URL checked, the request described for the
    record (no secrets) and sent through the run's sources within the step's time limit."""

    source = "api"

    def validate(self, step: StepBase[Any], ctx: ValidationContext) -> list[str] | None:
        check_url(step.config.url, ctx)
        return None

    def prepare(
        self, step: StepBase[Any], ctx: StepContext, resolution: ResolutionContext
    ) -> StepRequest:
        sources = ctx.services.sources
        request = self.describe(sources, step.config, resolution)
        timeout = ctx.timeout_seconds
        return StepRequest(
            request=request,
            send=lambda: self.fetch(sources, step.config, resolution, timeout),
            fingerprint=request_fingerprint("api", request),
        )

    @abstractmethod
    def describe(self, sources: Sources, config: Any, resolution: ResolutionContext) -> Any:
        """The request as it is recorded."""

    @abstractmethod
    def fetch(
        self, sources: Sources, config: Any, resolution: ResolutionContext, timeout: float
    ) -> pa.Table:
        """Every record the call gives."""
