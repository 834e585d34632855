"""Business-intelligence playbooks (YAML) as Dagster asset graphs.

``playbook_assets.PlaybookCollectionComponent`` is the Dagster component (the type a
``defs.yaml`` names); it is imported on first use, so that the parts of the library that do
not need Dagster (the core, the commands that run nothing) never import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playbook_assets.dagster_adapter.component import PlaybookCollectionComponent

__all__ = ["PlaybookCollectionComponent"]


def __getattr__(name: str) -> Any:
    if name == "PlaybookCollectionComponent":
        from playbook_assets.dagster_adapter.component import PlaybookCollectionComponent

        return PlaybookCollectionComponent
    raise AttributeError(f"module 'playbook_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
