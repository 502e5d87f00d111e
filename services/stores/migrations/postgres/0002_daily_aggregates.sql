-- Daily aggregates that answer analytics while ClickHouse is unreachable, kept by the rollup job
-- (workers/rollups.py) from ClickHouse through the query engine.
--
-- One row per workspace-local day (in daily_aggregate_state.timezone), link and dimension value:
--   dimension ''         the day's totals (value '');
--   dimension 'country'  one row per country seen that day, and so on for each main dimension.
--   link_id 0            every link of the workspace together (workspace-wide queries read these
--                        rows: fewer of them, and unique visitors summed over days only).
-- Counts exclude bots; bot_* hold what bots add (with bots = clicks + bot_clicks), so
-- includeBots works. Visitors are exact per row; summed over days (and links) they over-count.
-- Only groups that had an event get a row.
CREATE TABLE daily_aggregates (
    workspace_id bigint NOT NULL,
    dimension    text NOT NULL CHECK (dimension IN ('', 'country', 'continent', 'region', 'city',
                                                    'device', 'browser', 'os', 'referrer',
                                                    'trigger')),
    day          date NOT NULL,
    link_id      bigint NOT NULL,
    value        text NOT NULL,
    clicks       bigint NOT NULL DEFAULT 0,
    bot_clicks   bigint NOT NULL DEFAULT 0,
    visitors     bigint NOT NULL DEFAULT 0,
    bot_visitors bigint NOT NULL DEFAULT 0,
    leads        bigint NOT NULL DEFAULT 0,
    bot_leads    bigint NOT NULL DEFAULT 0,
    sales        bigint NOT NULL DEFAULT 0,
    bot_sales    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, dimension, day, link_id, value)
);

-- Sales revenue of the same groups per sale currency, in its minor units (converted into the
-- display currency at read time); rows only where a currency had revenue.
CREATE TABLE daily_revenue (
    workspace_id bigint NOT NULL,
    dimension    text NOT NULL,
    day          date NOT NULL,
    link_id      bigint NOT NULL,
    value        text NOT NULL,
    currency     text NOT NULL,
    amount       bigint NOT NULL DEFAULT 0,
    bot_amount   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, dimension, day, link_id, value, currency)
);

-- Per workspace: the zone its days are in, the first day covered and when ClickHouse was last
-- read for it. refreshed_at is NULL while the first build runs (the fallback then answers 503).
-- Written before any aggregate row, so the job can drop the rows of a deleted workspace.
CREATE TABLE daily_aggregate_state (
    workspace_id bigint PRIMARY KEY,
    timezone     text NOT NULL,
    covered_from date NOT NULL,
    refreshed_at timestamptz,
    run_seconds  double precision NOT NULL DEFAULT 0
);
