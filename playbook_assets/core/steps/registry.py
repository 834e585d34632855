"""The one registry of step types: the YAML ``type`` of a step -> its behaviour.

Adding a step type means writing its module (its config and step models, how it is validated
and how it runs: see ``core.steps.base``) and registering it here, in ``STEP_TYPES`` and in
the ``AnyStep`` union that the playbook model parses steps with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from playbook_assets.core.steps.aggregate import Aggregate, AggregateStep
from playbook_assets.core.steps.base import StepBase, StepType
from playbook_assets.core.steps.filter import Filter, FilterStep
from playbook_assets.core.steps.graphql import GraphQL, GraphQLStep
from playbook_assets.core.steps.join import Join, JoinStep
from playbook_assets.core.steps.query import Query, QueryStep
from playbook_assets.core.steps.read import FileStep, Read
from playbook_assets.core.steps.request import Request, RequestStep
from playbook_assets.core.steps.search import Search, SearchStep

STEP_TYPES: Mapping[str, StepType] = {
    step_type.name: step_type
    for step_type in (
        Query(),
        Search(),
        Join(),
        Aggregate(),
        Filter(),
        Request(),
        GraphQL(),
        Read(),
    )
}

AnyStep = (
    QueryStep
    | SearchStep
    | JoinStep
    | AggregateStep
    | FilterStep
    | RequestStep
    | GraphQLStep
    | FileStep
)
StepSpec = Annotated[AnyStep, Field(discriminator="type")]


def step_type(step: StepBase[Any]) -> StepType:
    """The behaviour of a step, by its YAML ``type``."""
    return STEP_TYPES[str(getattr(step, "type"))]
