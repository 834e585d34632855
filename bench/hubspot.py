"""Benchmark 7: HubSpot extraction of 50k deals from the stand-in (50 ms latency, 5 req/s).

A fresh worker process serves the HubSpot stand-in (standins/hubspot_standin.py) over the demo
CRM at scale 1 (exactly 50,000 deals) with 50 ms of latency per request and HubSpot's limit of
5 search requests in any one-second window, and extracts every deal with
``playbook_assets.connections.crm.hubspot.HubSpotCrm.search`` (pages of 200, no filters).
The ceiling is what the rate limit allows: 5 requests/s x 200 records = 1,000 records/s.
The stand-in's call log gives the largest number of search requests in any one-second
window and the 429s.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    PYTHON,
    Options,
    Row,
    demo_data_dir,
    median,
    peak_rss_mib,
    run_child,
    write_result,
)

RATE = 5
PAGE = 200
LATENCY = 0.05
TARGET_SHARE = 0.9
PROPERTIES = ["dealname", "amount", "dealstage", "closedate", "pipeline"]


def _worker(crm_path: str) -> dict[str, Any]:
    from playbook_assets.connections.crm.hubspot import HubSpotCrm
    from playbook_assets.core.spec import SearchConfig
    from standins.hubspot_standin import TOKEN, HubSpotStandIn

    with HubSpotStandIn(Path(crm_path), search_rate=RATE) as standin:
        standin.latency_seconds = LATENCY
        crm = HubSpotCrm(
            access_token=TOKEN, base_url=standin.base_url, requests_per_second=RATE, page_size=PAGE
        )
        request = SearchConfig.model_validate({"object": "deals", "properties": PROPERTIES})
        started = time.perf_counter()
        table = crm.search(request)
        seconds = time.perf_counter() - started
        searches = sorted(c.at for c in standin.calls if c.path.endswith("/search"))
        statuses = [c.status for c in standin.calls]
    busiest = 0
    start = 0
    for end, arrived in enumerate(searches):  # most search arrivals in any 1 s window
        while searches[start] <= arrived - 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    return {
        "seconds": seconds,
        "rows": table.num_rows,
        "requests": len(statuses),
        "searches": len(searches),
        "throttled": statuses.count(429),
        "busiest_second": busiest,
        "peak_mib": peak_rss_mib(),
    }


def run(options: Options) -> list[Row]:
    """Records/s against the rate-limit ceiling."""
    ceiling = RATE * PAGE
    case = f"50k deals, {LATENCY * 1000:.0f} ms latency, {RATE} req/s"
    baseline = f"ceiling {ceiling:,} records/s"
    target = f">= {TARGET_SHARE:.0%} of ceiling, limit never exceeded"
    crm = demo_data_dir(1) / "demo_crm.duckdb"
    repeats = options.repeats(5, 1)
    runs = [run_child([PYTHON, "-m", "bench.hubspot", str(crm)]).output for _ in range(repeats)]
    seconds = median([r["seconds"] for r in runs])
    rows = runs[0]["rows"]
    ideal = rows / ceiling
    share = ideal / seconds
    busiest = max(r["busiest_second"] for r in runs)
    throttled = sum(r["throttled"] for r in runs)
    return [
        Row(
            "HubSpot extraction",
            case,
            seconds,
            f"{baseline} ({rows:,} rows)",
            ideal,
            target,
            share >= TARGET_SHARE and busiest <= RATE and throttled == 0,
            max(r["peak_mib"] for r in runs),
            repeats,
            f"{rows / seconds:,.0f} records/s = {share:.0%} of ceiling; most searches in 1 s: "
            f"{busiest} (limit {RATE}); 429s: {throttled}; "
            f"{runs[0]['requests']} requests ({runs[0]['searches']} searches)",
        )
    ]


if __name__ == "__main__":
    write_result(_worker(sys.argv[1]))
