"""The routes the bench measures and, for each, the shape of its PostgreSQL equivalent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL = ("clicks", "leads", "sales")


@dataclass(frozen=True)
class Overview:
    """Totals of the window and of the period before it."""

    kinds: tuple[str, ...] = ALL


@dataclass(frozen=True)
class Timeseries:
    """Per-bucket metrics of the window."""

    kinds: tuple[str, ...] = ALL


@dataclass(frozen=True)
class Breakdown:
    """Top values of a dimension (a column, or `campaign` through the links table)."""

    dimension: str
    kinds: tuple[str, ...] = ALL
    rank_by: str = "clicks"


@dataclass(frozen=True)
class Funnel:
    """Clicks, leads and sales of the window."""


Shape = Overview | Timeseries | Breakdown | Funnel


@dataclass(frozen=True)
class Route:
    """One measured request: the gateway path and query, the RPC serving it, its shape."""

    name: str
    rpc: str
    path: str  # may hold {link_id}: the top link of the window
    query: dict[str, Any]
    shape: Shape
    per_link: bool = field(default=False)

    def url_path(self, link_id: int) -> str:
        """The path with the link filled in."""
        return self.path.format(link_id=link_id)


ROUTES = (
    Route(
        "workspace overview 30d",
        "GetWorkspaceOverview",
        "/api/analytics/workspace/overview",
        {"days": 30},
        Overview(),
    ),
    Route(
        "workspace overview 90d",
        "GetWorkspaceOverview",
        "/api/analytics/workspace/overview",
        {"days": 90},
        Overview(),
    ),
    Route(
        "workspace timeseries 30d/day",
        "GetWorkspaceTimeseries",
        "/api/analytics/workspace/timeseries",
        {"days": 30, "granularity": "day"},
        Timeseries(),
    ),
    Route(
        "workspace timeseries 90d/day",
        "GetWorkspaceTimeseries",
        "/api/analytics/workspace/timeseries",
        {"days": 90, "granularity": "day"},
        Timeseries(),
    ),
    Route(
        "workspace regions 30d",
        "GetWorkspaceRegions",
        "/api/analytics/workspace/regions",
        {"days": 30},
        Breakdown("region"),
    ),
    Route(
        "workspace devices by=browser 30d",
        "GetWorkspaceDevices",
        "/api/analytics/workspace/devices",
        {"days": 30, "by": "browser"},
        Breakdown("browser"),
    ),
    Route(
        "campaigns ranking 30d",
        "GetCampaignRanking",
        "/api/analytics/workspace/campaigns/ranking",
        {"days": 30},
        Breakdown("campaign"),
    ),
    Route(
        "link summary 30d",
        "GetLinkSummary",
        "/api/analytics/{link_id}/summary",
        {"days": 30},
        Overview(),
        per_link=True,
    ),
    Route(
        "link geo 30d",
        "GetLinkGeo",
        "/api/analytics/{link_id}/geo",
        {"days": 30},
        Breakdown("country"),
        per_link=True,
    ),
    Route(
        "unified overview 30d",
        "GetOverview",
        "/api/analytics/overview",
        {"days": 30},
        Overview(),
    ),
    Route("funnel 30d", "GetFunnel", "/api/analytics/funnel", {"days": 30}, Funnel()),
    Route(
        "sales breakdown 30d",
        "GetSalesBreakdown",
        "/api/analytics/sales/breakdown",
        {"days": 30},
        Breakdown("country", rank_by="revenue"),
    ),
)
