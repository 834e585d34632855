"""A playbook check's outcome as Dagster records it: an asset check evaluation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from playbook_assets.core.checks import CheckResult


def asset_check_result(
    key: dg.AssetKey, per_unit: Mapping[str, CheckResult]
) -> dg.AssetCheckResult:
    """A check's result as Dagster shows it; over a range, passed when every partition
    passed, with what each partition observed."""
    first = next(iter(per_unit.values()))
    severity = (
        dg.AssetCheckSeverity.ERROR
        if first.check.severity == "error"
        else dg.AssetCheckSeverity.WARN
    )
    if len(per_unit) == 1:
        metadata: dict[str, Any] = (
            {"error": first.error}
            if first.error is not None
            else {"observed": dg.MetadataValue.null() if first.observed is None else first.observed}
        )
    else:
        metadata = {
            "observed_by_partition": dg.MetadataValue.json(
                {unit: result.observed for unit, result in per_unit.items()}
            )
        }
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=first.check.check_name,
        passed=all(result.passed for result in per_unit.values()),
        severity=severity,
        description=first.description,
        metadata=metadata,
    )
