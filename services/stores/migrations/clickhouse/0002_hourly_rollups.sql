-- Hourly rollups (UTC hours) kept by materialized views; the engine reads them instead of the raw
-- tables when a query needs no dimension but the link, and its zone and range fall on whole hours.
CREATE TABLE IF NOT EXISTS clicks_hourly (
    workspace_id UInt64,
    hour         DateTime,
    link_id      UInt64,
    is_bot       UInt8,
    events       AggregateFunction(count),
    visitors     AggregateFunction(uniq, String)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (workspace_id, hour, link_id, is_bot);

CREATE MATERIALIZED VIEW IF NOT EXISTS clicks_hourly_mv TO clicks_hourly AS
SELECT workspace_id, toStartOfHour(timestamp) AS hour, link_id, is_bot,
       countState() AS events, uniqState(visitor_id) AS visitors
FROM clicks
GROUP BY workspace_id, hour, link_id, is_bot;

CREATE TABLE IF NOT EXISTS leads_hourly (
    workspace_id UInt64,
    hour         DateTime,
    link_id      UInt64,
    is_bot       UInt8,
    events       UInt64
) ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (workspace_id, hour, link_id, is_bot);

CREATE MATERIALIZED VIEW IF NOT EXISTS leads_hourly_mv TO leads_hourly AS
SELECT workspace_id, toStartOfHour(timestamp) AS hour, link_id, is_bot, count() AS events
FROM leads
GROUP BY workspace_id, hour, link_id, is_bot;

CREATE TABLE IF NOT EXISTS sales_hourly (
    workspace_id UInt64,
    hour         DateTime,
    link_id      UInt64,
    is_bot       UInt8,
    currency     String,
    events       UInt64,
    amount       Int64
) ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (workspace_id, hour, link_id, is_bot, currency);

CREATE MATERIALIZED VIEW IF NOT EXISTS sales_hourly_mv TO sales_hourly AS
SELECT workspace_id, toStartOfHour(timestamp) AS hour, link_id, is_bot, currency,
       count() AS events, sum(amount) AS amount
FROM sales
GROUP BY workspace_id, hour, link_id, is_bot, currency;

-- Events stored before the views existed (inserted_at is set by the server on insert).
INSERT INTO clicks_hourly
SELECT workspace_id, toStartOfHour(timestamp) AS hour, link_id, is_bot,
       countState(), uniqState(visitor_id)
FROM clicks
WHERE inserted_at < (SELECT min(metadata_modification_time) FROM system.tables
                     WHERE database = currentDatabase() AND name = 'clicks_hourly_mv')
GROUP BY workspace_id, hour, link_id, is_bot;

INSERT INTO leads_hourly
SELECT workspace_id, toStartOfHour(timestamp) AS hour, link_id, is_bot, count()
FROM leads
WHERE inserted_at < (SELECT min(metadata_modification_time) FROM system.tables
                     WHERE database = currentDatabase() AND name = 'leads_hourly_mv')
GROUP BY workspace_id, hour, link_id, is_bot;

INSERT INTO sales_hourly
SELECT workspace_id, toStartOfHour(timestamp) AS hour, link_id, is_bot, currency, count(), sum(amount)
FROM sales
WHERE inserted_at < (SELECT min(metadata_modification_time) FROM system.tables
                     WHERE database = currentDatabase() AND name = 'sales_hourly_mv')
GROUP BY workspace_id, hour, link_id, is_bot, currency;
