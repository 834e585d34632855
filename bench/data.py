"""Synthetic Arrow tables for the transform and artifact benchmarks (deterministic)."""

from __future__ import annotations

from typing import Any

STAGES = ("appointment", "qualified", "presentation", "decision", "contract", "closedwon")
SEGMENTS = ("enterprise", "mid_market", "smb", "startup")
REGIONS = ("amer", "emea", "apac", "latam", "anz")


def _labels(pa: Any, pc: Any, labels: tuple[str, ...], codes: Any) -> Any:
    return pc.take(pa.array(labels, pa.string()), pa.array(codes))


def deals_and_accounts(rows: int, seed: int = 7) -> tuple[Any, Any]:
    """A deals table (``rows`` rows, 7 columns) and an accounts table (``rows`` rows, 6
    columns); every deal's ``company_id`` is an account id or (5%) matches none."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    compute: Any = pc  # binary_join_element_wise is missing from the stubs
    rng = np.random.default_rng(seed)
    company = rng.integers(0, rows, rows)
    company[rng.random(rows) < 0.05] = -1
    deals = pa.table(
        {
            "deal_id": pa.array(np.arange(rows, dtype=np.int64)),
            "company_id": pa.array(company),
            "amount": pa.array(np.round(rng.lognormal(10, 1.2, rows), 2)),
            "stage": _labels(pa, pc, STAGES, rng.integers(0, len(STAGES), rows)),
            "segment": _labels(pa, pc, SEGMENTS, rng.integers(0, len(SEGMENTS), rows)),
            "closedate": pa.array(rng.integers(19000, 21000, rows).astype("int32"), pa.date32()),
            "is_open": pa.array(rng.random(rows) < 0.6),
        }
    )
    ids = rng.permutation(rows).astype(np.int64)
    accounts = pa.table(
        {
            "account_id": pa.array(ids),
            "account_name": compute.binary_join_element_wise(
                "Account ", pc.cast(pa.array(ids), pa.string()), ""
            ),
            "health_score": pa.array(rng.integers(0, 101, rows)),
            "region": _labels(pa, pc, REGIONS, rng.integers(0, len(REGIONS), rows)),
            "arr": pa.array(np.round(rng.lognormal(11, 1.0, rows), 2)),
            "owner_email": _labels(
                pa, pc, tuple(f"rep{i}@example.com" for i in range(50)), rng.integers(0, 50, rows)
            ),
        }
    )
    return deals, accounts
