"""How many clicks each workspace of the multi-tenant dataset holds: one whale, a power-law tail.

The whale holds WHALE_SHARE of the clicks; the others follow a log-linear curve through ANCHORS
(rank → size), scaled so the total is exact: at 50M clicks over 10,000 workspaces that is a
whale of 20M, about a hundred workspaces of 100k+ and nearly all of the rest under 10k (median
around 40). Links, campaigns, folders and visitors per workspace grow with its size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WHALE_SHARE = 0.4
# (rank among the non-whale workspaces, relative size); sizes between anchors are log-linear.
ANCHORS = ((1, 400_000.0), (100, 100_000.0), (400, 10_000.0), (10_000, 8.0))
MAX_LINKS = 1000
# Clicks are generated in chunks of at most this many rows (one ARRAY JOIN row each).
CHUNK = 65_536


@dataclass(frozen=True)
class Tenant:
    """One workspace of the dataset: id, clicks, ids of its first link, campaign and folder."""

    workspace_id: int
    clicks: int
    first_click: int  # global index of its first click
    links: int
    first_link: int
    campaigns: int
    first_campaign: int
    folders: int
    first_folder: int

    @property
    def visitors(self) -> int:
        """Size of its visitor pool (a visitor clicks about three times)."""
        return max(1, self.clicks // 3)


def _curve(rank: int) -> float:
    for (r0, s0), (r1, s1) in zip(ANCHORS, ANCHORS[1:], strict=False):
        if rank <= r1:
            t = (math.log(rank) - math.log(r0)) / (math.log(r1) - math.log(r0))
            return math.exp(math.log(s0) + t * (math.log(s1) - math.log(s0)))
    return ANCHORS[-1][1]


def sizes(total: int, workspaces: int) -> list[int]:
    """Clicks per workspace, largest first (the whale), summing to exactly total."""
    if workspaces < 2:
        return [total]
    whale = round(total * WHALE_SHARE)
    raw = [_curve(rank) for rank in range(1, workspaces)]
    scale = (total - whale) / sum(raw)
    rest = [max(1, round(x * scale)) for x in raw]
    rest[0] += total - whale - sum(rest)  # rounding goes to the largest non-whale
    return [whale, *rest]


def tenants(total: int, workspaces: int) -> list[Tenant]:
    """The dataset's workspaces (ids 1..workspaces, the whale first) with their catalog sizes."""
    made = []
    click = link = campaign = folder = 0
    for i, clicks in enumerate(sizes(total, workspaces)):
        links = max(1, min(MAX_LINKS, round(math.sqrt(clicks) / 4)))
        campaigns = max(1, min(50, links // 10))
        folders = max(1, min(20, links // 20))
        made.append(
            Tenant(
                workspace_id=i + 1,
                clicks=clicks,
                first_click=click,
                links=links,
                first_link=link + 1,
                campaigns=campaigns,
                first_campaign=campaign + 1,
                folders=folders,
                first_folder=folder + 1,
            )
        )
        click += clicks
        link += links
        campaign += campaigns
        folder += folders
    return made


def chunks(tenants_: list[Tenant]) -> list[tuple[int, int, int]]:
    """(workspace id, first global click index, clicks) rows of at most CHUNK clicks."""
    rows = []
    for t in tenants_:
        for start in range(0, t.clicks, CHUNK):
            rows.append((t.workspace_id, t.first_click + start, min(CHUNK, t.clicks - start)))
    return rows


def closest(tenants_: list[Tenant], clicks: int) -> Tenant:
    """The non-whale workspace whose size is closest to clicks (the lowest id on ties)."""
    return min(tenants_[1:], key=lambda t: (abs(t.clicks - clicks), t.workspace_id))
