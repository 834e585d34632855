"""A playbook's data quality checks as Dagster asset checks: their specs, and each result as
an asset check evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg
import pyarrow as pa

from playbook_assets.core.checks import describe, evaluate
from playbook_assets.core.spec import CheckSpec


def check_specs(key: dg.AssetKey, checks: Sequence[CheckSpec]) -> list[dg.AssetCheckSpec]:
    """The Dagster check specs of an asset."""
    return [
        dg.AssetCheckSpec(
            name=check.check_name,
            asset=key,
            description=describe(check),
            blocking=check.blocking,
        )
        for check in checks
    ]


def evaluate_check(check: CheckSpec, table: pa.Table, key: dg.AssetKey) -> dg.AssetCheckResult:
    """Run one check on the result table of the asset ``key``, as Dagster records it."""
    result = evaluate(check, table)
    severity = {"error": dg.AssetCheckSeverity.ERROR, "warn": dg.AssetCheckSeverity.WARN}
    metadata: dict[str, Any] = (
        {"error": result.error}
        if result.error is not None
        else {"observed": dg.MetadataValue.null() if result.observed is None else result.observed}
    )
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=check.check_name,
        passed=result.passed,
        severity=severity[result.severity],
        description=result.description,
        metadata=metadata,
    )
