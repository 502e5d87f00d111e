-- Raw events. Times are UTC DateTime; sort keys start with the workspace. Leads and sales carry
-- the dimensions of the click they convert, so every event kind groups by the same dimensions.
CREATE TABLE IF NOT EXISTS clicks (
    event_id        UInt64,
    workspace_id    UInt64,
    link_id         UInt64,
    timestamp       DateTime,
    country         String,
    region          String,
    city            String,
    continent       String,
    device          String,
    browser         String,
    os              String,
    referrer        String,
    referrer_url    String,
    trigger         String,
    visitor_id      String,
    rule_id         UInt64,
    condition_id    UInt64,
    destination_url String,
    is_bot          UInt8,
    inserted_at     DateTime DEFAULT now()
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(timestamp)
ORDER BY (workspace_id, link_id, timestamp, event_id);

CREATE TABLE IF NOT EXISTS leads (
    event_id     UInt64,
    workspace_id UInt64,
    link_id      UInt64,
    click_id     UInt64,
    timestamp    DateTime,
    customer_id  String,
    event_name   String,
    country      String,
    region       String,
    city         String,
    continent    String,
    device       String,
    browser      String,
    os           String,
    referrer     String,
    trigger      String,
    visitor_id   String,
    is_bot       UInt8,
    inserted_at  DateTime DEFAULT now()
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(timestamp)
ORDER BY (workspace_id, link_id, timestamp, event_id);

CREATE TABLE IF NOT EXISTS sales (
    event_id     UInt64,
    workspace_id UInt64,
    link_id      UInt64,
    click_id     UInt64,
    timestamp    DateTime,
    customer_id  String,
    event_name   String,
    amount       Int64,
    currency     String,
    invoice_id   String,
    country      String,
    region       String,
    city         String,
    continent    String,
    device       String,
    browser      String,
    os           String,
    referrer     String,
    trigger      String,
    visitor_id   String,
    is_bot       UInt8,
    inserted_at  DateTime DEFAULT now()
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(timestamp)
ORDER BY (workspace_id, link_id, timestamp, event_id);
