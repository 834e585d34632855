"""What the API steps (``request``, ``graphql``) share: credentials and paging."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from playbook_assets.core.errors import PlaybookValidationError
from playbook_assets.core.models import IDENTIFIER_PATTERN, StrictModel
from playbook_assets.core.steps.base import ValidationContext


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
