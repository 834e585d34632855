"""The accounts both demo files share: the warehouse's ``analytics.accounts`` and the CRM's
companies are generated from the same random stream, so their ids and names agree."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from playbook_assets.demo.arrays import (
    choice,
    choice_by_row,
    dates,
    exact_decimal,
    log_uniform,
    pick_labels,
    random_stream,
    with_number,
)
from playbook_assets.demo.vocabulary import (
    ARR_RANGES,
    CSM_EMAILS,
    HEALTH_SCORE_RANGES,
    HEALTH_SHARES,
    HEALTH_STATUSES,
    INDUSTRIES,
    NAME_NOUNS,
    NAME_PREFIXES,
    NAME_SUFFIXES,
    PLANS,
    REF_DAY,
    REGIONS,
    SEGMENT_SHARES,
    SEGMENTS,
    STREAM_ACCOUNTS,
)


@dataclass(frozen=True)
class Accounts:
    """Every account's generated attributes as numpy columns (codes into the vocabulary)."""

    account_id: np.ndarray
    name: pa.Array
    segment: np.ndarray
    industry: np.ndarray
    region: np.ndarray
    employees: np.ndarray
    health_score: np.ndarray
    health: np.ndarray
    arr_cents: np.ndarray
    owner: np.ndarray
    renewal_day: np.ndarray
    created_day: np.ndarray
    plan: np.ndarray
    seats_purchased: np.ndarray
    seats_used: np.ndarray

    @property
    def size(self) -> int:
        """How many accounts."""
        return int(self.account_id.shape[0])

    def table(self) -> pa.Table:
        """The accounts as the warehouse table ``analytics.accounts``."""
        return pa.table(
            {
                "account_id": pa.array(self.account_id, pa.int64()),
                "account_name": self.name,
                "segment": pick_labels(SEGMENTS, self.segment),
                "industry": pick_labels(INDUSTRIES, self.industry),
                "region": pick_labels(REGIONS, self.region),
                "employees": pa.array(self.employees, pa.int32()),
                "health_score": pa.array(self.health_score, pa.int32()),
                "health_status": pick_labels(HEALTH_STATUSES, self.health),
                "arr": exact_decimal(self.arr_cents, 12),
                "owner_email": pick_labels(CSM_EMAILS, self.owner),
                "renewal_date": dates(self.renewal_day),
                "created_at": dates(self.created_day),
                "plan": pick_labels(PLANS, self.plan),
                "seats_purchased": pa.array(self.seats_purchased, pa.int32()),
                "seats_used": pa.array(self.seats_used, pa.int32()),
            }
        )


def _company_names(rng: np.random.Generator, n: int) -> pa.Array:
    """Unique company names: word combinations drawn without replacement, numbered past that."""
    combos = pa.array(
        [
            f"{prefix} {noun} {suffix}".rstrip()
            for prefix in NAME_PREFIXES
            for noun in NAME_NOUNS
            for suffix in NAME_SUFFIXES
        ],
        pa.string(),
    )
    total = len(combos)
    rounds = -(-n // total)
    picks = np.concatenate([rng.permutation(total) for _ in range(rounds)])[:n]
    copy_number = np.arange(n) // total + 1  # no base name ends with a digit, so " 2" is unique
    return with_number(combos.take(pa.array(picks)), copy_number, " ")


def generate_accounts(n: int, seed: int) -> Accounts:
    """``n`` accounts from the accounts' random stream of ``seed``."""
    rng = random_stream(seed, STREAM_ACCOUNTS)
    name = _company_names(rng, n)
    segment = choice(rng, SEGMENT_SHARES, n)
    industry = rng.integers(0, len(INDUSTRIES), n).astype(np.int8)
    region = choice(rng, (0.45, 0.30, 0.17, 0.08), n)

    employee_ranges = np.array([[1_000, 50_000], [200, 2_000], [5, 200]], dtype=np.float64)
    employees = np.floor(
        log_uniform(rng, employee_ranges[segment, 0], employee_ranges[segment, 1])
    ).astype(np.int32)

    health = choice(rng, HEALTH_SHARES, n)
    score_ranges = np.array(HEALTH_SCORE_RANGES, dtype=np.int32)
    low, high = score_ranges[health, 0], score_ranges[health, 1]
    health_score = (low + np.floor(rng.random(n) * (high - low + 1))).astype(np.int32)

    arr_ranges = np.array(ARR_RANGES, dtype=np.float64)
    arr_low, arr_high, arr_median = (arr_ranges[segment, i] for i in range(3))
    arr = np.exp(np.log(arr_median) + 0.6 * rng.standard_normal(n))
    fallback = log_uniform(rng, arr_low, arr_high)
    arr = np.where((arr < arr_low) | (arr > arr_high), fallback, arr)
    arr_cents = np.clip(np.rint(arr * 100), arr_low * 100, arr_high * 100).astype(np.int64)

    owner = rng.integers(0, len(CSM_EMAILS), n).astype(np.int8)
    # Renewals spread over the 18 months around the reference date.
    renewal_day = (REF_DAY + rng.integers(-270, 276, n)).astype(np.int32)
    created_day = (renewal_day - 365 * rng.integers(1, 7, n)).astype(np.int32)

    plan_shares = np.array([[0.05, 0.25, 0.70], [0.20, 0.65, 0.15], [0.75, 0.23, 0.02]])
    plan = choice_by_row(rng, plan_shares, segment)

    seat_ranges = np.array([[150, 2_000], [30, 300], [3, 40]], dtype=np.float64)
    seats_purchased = np.floor(
        log_uniform(rng, seat_ranges[segment, 0], seat_ranges[segment, 1])
    ).astype(np.int32)
    seats_purchased = np.maximum(np.minimum(seats_purchased, employees), 1).astype(np.int32)
    utilisation_ranges = np.array([[0.70, 1.00], [0.55, 0.90], [0.25, 0.60], [0.00, 0.25]])
    util_low, util_high = utilisation_ranges[health, 0], utilisation_ranges[health, 1]
    utilisation = util_low + rng.random(n) * (util_high - util_low)
    # Expansion candidates: healthy or neutral accounts using (nearly) all their seats.
    expansion = (health <= 1) & (rng.random(n) < 0.12)
    utilisation = np.where(expansion, 0.95 + rng.random(n) * 0.30, utilisation)
    seats_used = np.floor(seats_purchased * utilisation).astype(np.int32)

    return Accounts(
        account_id=np.arange(1_000_001, 1_000_001 + n, dtype=np.int64),
        name=name,
        segment=segment,
        industry=industry,
        region=region,
        employees=employees,
        health_score=health_score,
        health=health,
        arr_cents=arr_cents,
        owner=owner,
        renewal_day=renewal_day,
        created_day=created_day,
        plan=plan,
        seats_purchased=seats_purchased,
        seats_used=seats_used,
    )
