"""The demo CRM's tables, named by HubSpot object type with HubSpot property names: their
layout, and companies, deals and contacts (with their associations) generated from the
accounts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from playbook_assets.demo.accounts import Accounts
from playbook_assets.demo.arrays import (
    choice,
    dates,
    exact_decimal,
    if_else,
    join_text,
    log_uniform,
    lower,
    occurrence,
    pick_labels,
    random_stream,
    replace_regex,
    timestamps,
    with_number,
)
from playbook_assets.demo.vocabulary import (
    AE_OWNER_IDS,
    CONTACT_LIFECYCLE_STAGES,
    CSM_OWNER_IDS,
    DEAL_KINDS,
    DEAL_STAGES,
    DEAL_TYPES,
    FIRST_NAMES,
    FREE_EMAIL_DOMAINS,
    INDUSTRIES,
    JOB_TITLES,
    LAST_NAMES,
    LEAD_STATUSES,
    REF_DAY,
    STREAM_COMPANIES,
    STREAM_CONTACTS,
    STREAM_DEALS,
    US_PER_DAY,
    US_PER_SECOND,
)

CRM_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "companies": (
        ("hs_object_id", "BIGINT"),
        ("name", "VARCHAR"),
        ("domain", "VARCHAR"),
        ("industry", "VARCHAR"),
        ("annualrevenue", "DECIMAL(18,2)"),
        ("numberofemployees", "INTEGER"),
        ("lifecyclestage", "VARCHAR"),
        ("createdate", "TIMESTAMP"),
        ("hs_lastmodifieddate", "TIMESTAMP"),
        ("hubspot_owner_id", "BIGINT"),
    ),
    "deals": (
        ("hs_object_id", "BIGINT"),
        ("dealname", "VARCHAR"),
        ("amount", "DECIMAL(12,2)"),
        ("closedate", "DATE"),
        ("dealstage", "VARCHAR"),
        ("pipeline", "VARCHAR"),
        ("dealtype", "VARCHAR"),
        ("hs_is_closed", "BOOLEAN"),
        ("hubspot_owner_id", "BIGINT"),
        ("createdate", "TIMESTAMP"),
        ("hs_lastmodifieddate", "TIMESTAMP"),
    ),
    "deal_company": (("deal_id", "BIGINT"), ("company_id", "BIGINT")),
    "contacts": (
        ("hs_object_id", "BIGINT"),
        ("email", "VARCHAR"),
        ("firstname", "VARCHAR"),
        ("lastname", "VARCHAR"),
        ("jobtitle", "VARCHAR"),
        ("lifecyclestage", "VARCHAR"),
        ("hs_lead_status", "VARCHAR"),
        ("createdate", "TIMESTAMP"),
        ("lastmodifieddate", "TIMESTAMP"),
    ),
    "contact_company": (("contact_id", "BIGINT"), ("company_id", "BIGINT")),
}


def _domains(names: pa.Array) -> pa.Array:
    compact = replace_regex(lower(names), r"[^a-z0-9]+", "")
    return join_text(compact, ".com")


def generate_companies(accounts: Accounts, seed: int) -> pa.Table:
    """The ``companies`` table: one company per account, same id and name."""
    rng = random_stream(seed, STREAM_COMPANIES)
    n = accounts.size
    revenue_dollars = np.rint(accounts.employees * (120_000 + 180_000 * rng.random(n)))
    revenue_missing = rng.random(n) < 0.07
    lifecycle = np.where(accounts.health_score >= 98, "evangelist", "customer")
    created_us = (
        accounts.created_day.astype(np.int64) * US_PER_DAY
        + rng.integers(0, 86_400, n) * US_PER_SECOND
    )
    ref_us = REF_DAY * US_PER_DAY
    modified_us = created_us + np.floor(rng.random(n) * (ref_us - created_us)).astype(np.int64)
    return pa.table(
        {
            "hs_object_id": pa.array(accounts.account_id, pa.int64()),
            "name": accounts.name,
            "domain": _domains(accounts.name),
            "industry": pick_labels(INDUSTRIES, accounts.industry),
            "annualrevenue": exact_decimal(
                revenue_dollars.astype(np.int64) * 100, 18, revenue_missing
            ),
            "numberofemployees": pa.array(accounts.employees, pa.int32()),
            "lifecyclestage": pa.array(lifecycle, pa.string()),
            "createdate": timestamps(created_us),
            "hs_lastmodifieddate": timestamps(modified_us),
            "hubspot_owner_id": pa.array(
                np.array(CSM_OWNER_IDS, dtype=np.int64)[accounts.owner], pa.int64()
            ),
        }
    )


def generate_deals(accounts: Accounts, n: int, seed: int) -> tuple[pa.Table, pa.Table]:
    """``n`` deals and their ``deal_company`` associations."""
    rng = random_stream(seed, STREAM_DEALS)
    size = accounts.size
    kind = choice(rng, (0.45, 0.35, 0.20), n)  # new business, renewal, expansion
    is_renewal, is_expansion = kind == 1, kind == 2

    # Renewals cluster on accounts renewing in the next six months of the reference date;
    # expansions on accounts using (nearly) all their seats.
    renewing = np.flatnonzero(
        (accounts.renewal_day >= REF_DAY) & (accounts.renewal_day < REF_DAY + 182)
    )
    saturated = np.flatnonzero(accounts.seats_used >= 0.9 * accounts.seats_purchased)
    any_account = rng.integers(0, size, n)
    from_renewing = renewing[rng.integers(0, renewing.size, n)] if renewing.size else any_account
    from_saturated = (
        saturated[rng.integers(0, saturated.size, n)] if saturated.size else any_account
    )
    pick = rng.random(n)
    company = np.where(is_renewal & (pick < 0.5), from_renewing, any_account)
    company = np.where(is_expansion & (pick < 0.7), from_saturated, company)

    offset = np.where(
        is_renewal,
        accounts.renewal_day[company] - REF_DAY + rng.integers(-10, 11, n),
        np.where(is_expansion, rng.integers(-360, 180, n), rng.integers(-420, 180, n)),
    )
    closedate = (REF_DAY + offset).astype(np.int32)
    # An account has one current renewal deal: its others are earlier yearly cycles, closed.
    renewals = np.flatnonzero(is_renewal)
    _, first = np.unique(company[renewals], return_index=True)
    earlier_cycle = np.zeros(n, dtype=bool)
    earlier_cycle[renewals] = True
    earlier_cycle[renewals[first]] = False
    closedate = np.where(earlier_cycle, closedate - 365, closedate).astype(np.int32)
    future = closedate >= REF_DAY

    health = accounts.health[company]
    open_stage = choice(rng, (0.20, 0.25, 0.20, 0.20, 0.15), n)
    win_rate = np.where(
        is_renewal,
        np.array([0.92, 0.85, 0.60, 0.05])[health],
        np.where(is_expansion, 0.55, 0.30),
    )
    won = rng.random(n) < win_rate
    closed_stage = np.where(won, 5, 6).astype(np.int8)
    still_open = np.where(future, rng.random(n) < 0.85, rng.random(n) < 0.04) & ~earlier_cycle
    stage = np.where(still_open, open_stage, closed_stage).astype(np.int8)

    arr = accounts.arr_cents[company].astype(np.float64)
    new_ranges = np.array([[50_000, 600_000], [10_000, 120_000], [1_500, 25_000]], np.float64)
    segment = accounts.segment[company]
    new_amount = log_uniform(rng, new_ranges[segment, 0], new_ranges[segment, 1]) * 100
    amount_factor = rng.random(n)
    amount_cents = np.where(
        is_renewal,
        arr * (0.90 + 0.25 * amount_factor),
        np.where(is_expansion, arr * (0.10 + 0.35 * amount_factor), new_amount),
    )
    amount_cents = np.rint(amount_cents).astype(np.int64)
    amount_missing = (stage == 0) & (rng.random(n) < 0.15)

    csm_owner = np.array(CSM_OWNER_IDS, dtype=np.int64)[accounts.owner[company]]
    ae_owner = np.array(AE_OWNER_IDS, dtype=np.int64)[rng.integers(0, len(AE_OWNER_IDS), n)]
    owner = np.where(kind == 0, ae_owner, csm_owner)

    # Deals are created before they close and never after the reference date.
    created_day = np.minimum(
        closedate.astype(np.int64) - rng.integers(14, 200, n), REF_DAY - rng.integers(1, 120, n)
    )
    created_us = created_day * US_PER_DAY
    created_us += rng.integers(0, 86_400, n) * US_PER_SECOND
    end_us = np.minimum((closedate.astype(np.int64) + 1) * US_PER_DAY, REF_DAY * US_PER_DAY)
    span = np.maximum(end_us - created_us, 0)
    modified_us = created_us + np.floor(rng.random(n) * span).astype(np.int64)

    deal_id = np.arange(9_000_000_001, 9_000_000_001 + n, dtype=np.int64)
    company_id = accounts.account_id[company]
    dealname = join_text(
        accounts.name.take(pa.array(company)), " - ", pick_labels(DEAL_KINDS, kind), " 2026"
    )
    deals = pa.table(
        {
            "hs_object_id": pa.array(deal_id, pa.int64()),
            "dealname": dealname,
            "amount": exact_decimal(amount_cents, 12, amount_missing),
            "closedate": dates(closedate),
            "dealstage": pick_labels(DEAL_STAGES, stage),
            "pipeline": pa.array(np.full(n, "default", dtype=object), pa.string()),
            "dealtype": pick_labels(DEAL_TYPES, kind),
            "hs_is_closed": pa.array(stage >= 5, pa.bool_()),
            "hubspot_owner_id": pa.array(owner, pa.int64()),
            "createdate": timestamps(created_us),
            "hs_lastmodifieddate": timestamps(modified_us),
        }
    )
    deal_company = pa.table(
        {"deal_id": pa.array(deal_id, pa.int64()), "company_id": pa.array(company_id, pa.int64())}
    )
    return deals, deal_company


def generate_contacts(accounts: Accounts, n: int, seed: int) -> tuple[pa.Table, pa.Table]:
    """``n`` contacts and their ``contact_company`` associations."""
    rng = random_stream(seed, STREAM_CONTACTS)
    # Bigger companies have more contacts.
    weight = np.log1p(accounts.employees.astype(np.float64))
    cumulative = np.cumsum(weight)
    company = np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")
    company = np.minimum(company, accounts.size - 1)
    has_company = rng.random(n) >= 0.05

    first = rng.integers(0, len(FIRST_NAMES), n)
    last = rng.integers(0, len(LAST_NAMES), n)
    firstname = pick_labels(FIRST_NAMES, first)
    lastname = pick_labels(LAST_NAMES, last)
    company_domain = _domains(accounts.name).take(pa.array(company))
    free_domain = pick_labels(FREE_EMAIL_DOMAINS, rng.integers(0, len(FREE_EMAIL_DOMAINS), n))
    domain = if_else(pa.array(has_company), company_domain, free_domain)
    local = join_text(lower(firstname), ".", lower(lastname))
    # Names hold no digits, so "jane.doe2@..." never collides with a first occurrence.
    number = occurrence(join_text(local, "@", domain)) + 1
    email = join_text(with_number(local, number, ""), "@", domain)

    jobtitle_missing = rng.random(n) < 0.10
    jobtitle = pick_labels(JOB_TITLES, rng.integers(0, len(JOB_TITLES), n))
    stage = choice(rng, (0.08, 0.12, 0.10, 0.08, 0.10, 0.45, 0.04, 0.03), n)
    lead_status = rng.integers(0, len(LEAD_STATUSES), n)
    lead_status_missing = (stage >= 5) | (rng.random(n) < 0.20)

    created_us = (REF_DAY - rng.integers(1, 2_000, n)).astype(np.int64) * US_PER_DAY
    created_us += rng.integers(0, 86_400, n) * US_PER_SECOND
    ref_us = REF_DAY * US_PER_DAY
    modified_us = created_us + np.floor(rng.random(n) * (ref_us - created_us)).astype(np.int64)

    contact_id = np.arange(5_000_000_001, 5_000_000_001 + n, dtype=np.int64)
    contacts = pa.table(
        {
            "hs_object_id": pa.array(contact_id, pa.int64()),
            "email": email,
            "firstname": firstname,
            "lastname": lastname,
            "jobtitle": if_else(pa.array(jobtitle_missing), pa.scalar(None, pa.string()), jobtitle),
            "lifecyclestage": pick_labels(CONTACT_LIFECYCLE_STAGES, stage),
            "hs_lead_status": if_else(
                pa.array(lead_status_missing),
                pa.scalar(None, pa.string()),
                pick_labels(LEAD_STATUSES, lead_status),
            ),
            "createdate": timestamps(created_us),
            "lastmodifieddate": timestamps(modified_us),
        }
    )
    contact_company = pa.table(
        {
            "contact_id": pa.array(contact_id[has_company], pa.int64()),
            "company_id": pa.array(accounts.account_id[company[has_company]], pa.int64()),
        }
    )
    return contacts, contact_company
