"""Every route of the two API seeds, as the seeds spell them (shared by the contract tests)."""

from __future__ import annotations

SEED_000 = """
GET /api/analytics/workspace/overview
GET /api/analytics/workspace/timeseries
GET /api/analytics/workspace/regions
GET /api/analytics/workspace/continents
GET /api/analytics/workspace/devices
GET /api/analytics/workspace/triggers
GET /api/analytics/workspace/top-folders
GET /api/analytics/workspace/top-tags
GET /api/analytics/workspace/campaigns/ranking
GET /api/analytics/workspace/budgets
GET /api/analytics/workspace/usage
GET /api/analytics/:linkId/summary
GET /api/analytics/:linkId/timeseries
GET /api/analytics/:linkId/geo
GET /api/analytics/:linkId/cities
GET /api/analytics/:linkId/regions
GET /api/analytics/:linkId/continents
GET /api/analytics/:linkId/devices
GET /api/analytics/:linkId/referrers
GET /api/analytics/:linkId/triggers
GET /api/analytics/:linkId/rules
GET /api/analytics/:linkId/rules/:ruleId/conditions
GET /api/analytics/:linkId/traffic-flow
GET /api/analytics/:linkId/click-paths
GET /api/analytics/overview
GET /api/analytics/conversions/details
GET /api/analytics/leads
GET /api/analytics/leads/timeseries
GET /api/analytics/leads/breakdown
GET /api/analytics/sales
GET /api/analytics/sales/timeseries
GET /api/analytics/sales/breakdown
GET /api/analytics/composite
GET /api/analytics/funnel
GET /api/analytics/live
GET /api/analytics/live/ws
GET /api/analytics/live/stats
GET /api/analytics/export
POST /api/analytics/batch
GET /api/analytics/audit-log
GET /api/analytics/embed
"""

SEED_004 = "POST /v1/analytics"


def seed_routes() -> list[tuple[str, str]]:
    """(method, OpenAPI-style path) of every seed route: `:linkId` becomes `{link_id}`."""
    routes = []
    for line in [*SEED_000.strip().splitlines(), SEED_004]:
        method, path = line.split()
        path = path.replace(":linkId", "{link_id}").replace(":ruleId", "{rule_id}")
        routes.append((method, path))
    return routes
