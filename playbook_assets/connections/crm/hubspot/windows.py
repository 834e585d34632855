"""How a HubSpot search is read: past HubSpot's 10,000 results a search, in windows sorted by
``hs_object_id``, each ending by count at the cap (HubSpot links to a page past it and answers
that page 400), the next continuing at ``hs_object_id > last id``; groups over HubSpot's
limits searched one at a time and united by id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from playbook_assets.connections.crm.hubspot.request_body import (
    SEARCH_RESULT_CAP,
    Groups,
    after_id,
    check_limits,
    fits,
    id_sort,
)
from playbook_assets.connections.crm.hubspot_filters import ID
from playbook_assets.core.spec import SearchConfig

# One search page: the request body -> HubSpot's answer.
Page = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Search:
    """What every page of one search asks for."""

    object_type: str
    properties: list[str]
    sorts: list[dict[str, str]]
    window: bool  # read past the result cap in hs_object_id windows
    stop_at: int | None
    page_size: int

    def size(self, collected: int, in_window: int) -> int:
        """The next page's size: up to the stop, and ending a window exactly at the cap."""
        size = self.page_size
        if self.stop_at is not None:
            size = max(1, min(size, self.stop_at - collected))
        if self.window:  # never a page past the cap: HubSpot answers it 400
            size = min(size, SEARCH_RESULT_CAP - in_window)
        return size

    def done(self, collected: int) -> bool:
        """Whether the search has read as many records as it needs."""
        return self.stop_at is not None and collected >= self.stop_at


def plan(request: SearchConfig, object_type: str, names: list[str], page_size: int) -> Search:
    """HubSpot sorts by one property: a single sort with a limit under the cap is sent;
    otherwise records are read by id (in windows) and sorted afterwards."""
    single_sort = len(request.sorts) == 1
    if not request.sorts:
        sorts, window, stop_at = [id_sort()], True, request.limit
    elif single_sort and request.limit is not None and request.limit <= SEARCH_RESULT_CAP:
        sort = request.sorts[0]
        sorts = [{"propertyName": sort.property, "direction": sort.direction}]
        window, stop_at = False, request.limit
    else:
        sorts, window, stop_at = [id_sort()], True, None
    return Search(object_type, names, sorts, window, stop_at, page_size)


def collect(groups: Groups, search: Search, page: Page) -> list[dict[str, Any]]:
    """Every record of the searches (deduplicated by id), windowed past the result cap;
    groups over HubSpot's limits are searched one at a time."""
    extra = 1 if search.window else 0
    plans = [groups] if fits(groups, extra) else [[group] for group in groups]
    records: dict[str, dict[str, Any]] = {}
    for plan in plans:
        check_limits(plan)
        collected = 0
        last_id: str | None = None
        while True:  # windows
            window_groups = plan if last_id is None else after_id(plan, last_id)
            in_window, total, last = _read_window(page, search, window_groups, collected, records)
            collected += in_window
            last_id = last or last_id
            if search.done(collected) or not search.window or not in_window:
                break
            if in_window >= total:
                break
    return [{**props, ID: record_id} for record_id, props in records.items()]


def _read_window(
    page: Page,
    search: Search,
    groups: Groups,
    collected: int,
    records: dict[str, dict[str, Any]],
) -> tuple[int, int, str | None]:
    """One window's pages into ``records``: how many it read, HubSpot's total, the last id."""
    after: str | None = None
    in_window, total, last_id = 0, 0, None
    while True:
        body: dict[str, Any] = {
            "filterGroups": [{"filters": g} for g in groups],
            "properties": search.properties,
            "sorts": search.sorts,
            "limit": search.size(collected + in_window, in_window),
        }
        if after is not None:
            body["after"] = after
        answer = page(body)
        results = answer.get("results") or []
        total = int(answer.get("total") or 0)
        for result in results:
            last_id = str(result["id"])
            records.setdefault(last_id, result.get("properties") or {})
        in_window += len(results)
        after = ((answer.get("paging") or {}).get("next") or {}).get("after")
        if search.done(collected + in_window) or after is None or not results:
            break
        if search.window and in_window >= SEARCH_RESULT_CAP:
            break  # HubSpot still links to the next page here and answers it 400
    return in_window, total, last_id
