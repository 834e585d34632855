"""The ``graphql`` step: a GraphQL query, page after page, its records as rows."""

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


class GraphQLConfig(StrictModel):
    """Configuration of a ``graphql`` step."""

    url: str = Field(description="http(s) URL of the GraphQL endpoint.")
    query: str = Field(description="The GraphQL query document.")
    variables: dict[str, Any] = Field(default_factory=dict, description="Query variables.")
    headers: dict[str, str] = Field(default_factory=dict, description="Headers (not secrets).")
    auth: ApiAuth | None = Field(default=None, description="Credentials from the environment.")
    records_path: str = Field(description="Dotted path of the list of records in 'data'.")
    pagination: Pagination = Field(
        default_factory=Pagination,
        description="cursor: cursor_param is the variable, cursor_path the next cursor "
        "(e.g. items.pageInfo.endCursor; paging stops when it is null).",
    )


class GraphQLStep(StepBase[GraphQLConfig]):
    """Queries a GraphQL API."""

    type: Literal["graphql"] = Field(description="Step type.")
    source: Literal["api"] = Field(default="api", description="Always api.")
    config: GraphQLConfig = Field(description="The query.")


class GraphQL(ApiStepType):
    """A GraphQL query (through gql); variables from ``${...}`` references."""

    name = "graphql"
    model = GraphQLStep

    def describe(self, sources: Sources, config: Any, resolution: ResolutionContext) -> Any:
        return sources.describe_graphql(config, resolution)

    def fetch(
        self, sources: Sources, config: Any, resolution: ResolutionContext, timeout: float
    ) -> pa.Table:
        return sources.fetch_graphql(config, resolution, timeout_seconds=timeout)

    def kind(self, step: StepBase[Any], connection_kind: str | None) -> str:
        return "graphql"
