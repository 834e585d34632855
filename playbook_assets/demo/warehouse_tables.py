"""The demo warehouse's tables (schema ``analytics``): their layout, and product usage and
support tickets generated from the accounts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from playbook_assets.demo.accounts import Accounts
from playbook_assets.demo.arrays import choice_by_row, dates, pick_labels, random_stream
from playbook_assets.demo.vocabulary import (
    EPOCH,
    REF_DAY,
    STREAM_TICKETS,
    STREAM_USAGE,
    TICKET_PRIORITIES,
    TICKET_STATUSES,
    USAGE_MONTHS,
)

WAREHOUSE_SCHEMA = "analytics"

# Column name -> DuckDB type of every table, in column order.
WAREHOUSE_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "accounts": (
        ("account_id", "BIGINT"),
        ("account_name", "VARCHAR"),
        ("segment", "VARCHAR"),
        ("industry", "VARCHAR"),
        ("region", "VARCHAR"),
        ("employees", "INTEGER"),
        ("health_score", "INTEGER"),
        ("health_status", "VARCHAR"),
        ("arr", "DECIMAL(12,2)"),
        ("owner_email", "VARCHAR"),
        ("renewal_date", "DATE"),
        ("created_at", "DATE"),
        ("plan", "VARCHAR"),
        ("seats_purchased", "INTEGER"),
        ("seats_used", "INTEGER"),
    ),
    "product_usage": (
        ("account_id", "BIGINT"),
        ("month", "DATE"),
        ("active_users", "INTEGER"),
        ("logins", "INTEGER"),
        ("feature_adoption_pct", "DOUBLE"),
        ("api_calls", "BIGINT"),
    ),
    "support_tickets": (
        ("ticket_id", "BIGINT"),
        ("account_id", "BIGINT"),
        ("opened_at", "DATE"),
        ("priority", "VARCHAR"),
        ("status", "VARCHAR"),
        ("csat", "INTEGER"),
    ),
}


def generate_product_usage(accounts: Accounts, seed: int) -> pa.Table:
    """Monthly usage of every account over ``USAGE_MONTHS``."""
    rng = random_stream(seed, STREAM_USAGE)
    n, months = accounts.size, len(USAGE_MONTHS)
    month_index = np.arange(months, dtype=np.float64)[None, :]
    # Monthly trend of active users per health status: at-risk and churned accounts decline.
    slope = np.array([0.02, 0.0, -0.09, -0.16])[accounts.health][:, None]
    base = accounts.seats_used * (0.60 + 0.35 * rng.random(n))
    noise = 1.0 + 0.03 * rng.standard_normal((n, months))
    active = np.floor(base[:, None] * np.maximum(1.0 + slope * month_index, 0.0) * noise)
    active = np.maximum(active, 0).astype(np.int32)
    logins = np.floor(active * (6.0 + 16.0 * rng.random((n, months)))).astype(np.int32)
    adoption_trend = np.array([0.5, 0.0, -1.5, -3.0])[accounts.health][:, None]
    adoption = (
        accounts.health_score[:, None] * 0.75
        + 10.0
        + adoption_trend * month_index
        + 6.0 * rng.standard_normal((n, months))
    )
    adoption = np.round(np.clip(adoption, 0.0, 100.0), 1)
    plan_factor = np.array([0.3, 1.0, 3.0])[accounts.plan][:, None]
    api_calls = np.floor(active * (20.0 + 380.0 * rng.random((n, months))) * plan_factor)
    month_days = np.array([(m - EPOCH).days for m in USAGE_MONTHS], dtype=np.int32)
    return pa.table(
        {
            "account_id": pa.array(np.repeat(accounts.account_id, months), pa.int64()),
            "month": dates(np.tile(month_days, n)),
            "active_users": pa.array(active.ravel(), pa.int32()),
            "logins": pa.array(logins.ravel(), pa.int32()),
            "feature_adoption_pct": pa.array(adoption.ravel(), pa.float64()),
            "api_calls": pa.array(api_calls.ravel().astype(np.int64), pa.int64()),
        }
    )


def generate_support_tickets(accounts: Accounts, seed: int) -> pa.Table:
    """Support tickets of the last year; at-risk accounts open more."""
    rng = random_stream(seed, STREAM_TICKETS)
    rate = (
        np.array([0.8, 1.5, 3.5, 2.0])[accounts.health]
        * np.array([2.0, 1.3, 0.8])[accounts.segment]
    )
    counts = rng.poisson(rate)
    account_index = np.repeat(np.arange(accounts.size), counts)
    total = int(account_index.shape[0])
    health = accounts.health[account_index]
    age = rng.integers(0, 365, total)
    priority_shares = np.array(
        [
            [0.45, 0.35, 0.15, 0.05],
            [0.35, 0.40, 0.18, 0.07],
            [0.15, 0.30, 0.33, 0.22],
            [0.20, 0.35, 0.30, 0.15],
        ]
    )
    priority = choice_by_row(rng, priority_shares, health)
    status_shares = np.array([[0.50, 0.30, 0.20], [0.15, 0.15, 0.70], [0.02, 0.03, 0.95]])
    age_band = np.where(age < 14, 0, np.where(age < 60, 1, 2))
    status = choice_by_row(rng, status_shares, age_band)
    csat_mean = np.array([4.4, 3.8, 2.8, 2.2])[health]
    csat = np.clip(np.rint(csat_mean + 0.8 * rng.standard_normal(total)), 1, 5).astype(np.int32)
    csat_missing = (status != 2) | (rng.random(total) >= 0.75)
    return pa.table(
        {
            "ticket_id": pa.array(np.arange(7_000_001, 7_000_001 + total), pa.int64()),
            "account_id": pa.array(accounts.account_id[account_index], pa.int64()),
            "opened_at": dates(REF_DAY - 1 - age),
            "priority": pick_labels(TICKET_PRIORITIES, priority),
            "status": pick_labels(TICKET_STATUSES, status),
            "csat": pa.array(csat, pa.int32(), mask=csat_missing),
        }
    )
