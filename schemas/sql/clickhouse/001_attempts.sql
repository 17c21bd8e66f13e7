-- One row per delivery attempt, as it arrives on hookline.attempts.
--
-- Replays of the topic insert the same (delivery_id, n) again:
-- ReplacingMergeTree folds such rows together in the background, and until it
-- has, readers deduplicate (LIMIT 1 BY n, or aggregates that ignore repeats).
-- Times are epoch milliseconds because 18.16 has no DateTime64; `at` (whole
-- seconds) exists for partitioning, so that retention drops whole days.
-- Headers are JSON objects kept as strings.
CREATE TABLE IF NOT EXISTS attempts (
    tenant              String,
    webhook_id          String,
    delivery_id         String,
    n                   UInt32,
    state               String,
    at                  DateTime,
    at_ms               Int64,
    delivery_created_ms Int64,
    event_ids           Array(String),
    event_type          String,
    status_code         Int32,
    duration_ms         Int64,
    error               String,
    url                 String,
    request_headers     String,
    request_body        String,
    response_headers    String,
    response_body       String,
    redelivery_of       String,
    replay_id           String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(at)
ORDER BY (tenant, webhook_id, delivery_id, n);

-- attempts is sorted by webhook first, which serves listing a webhook's
-- deliveries; this index finds a delivery's webhook from its id alone, so
-- that reading one delivery stays a primary-key lookup. It is partitioned
-- like attempts so that retention drops the same days from both.
CREATE TABLE IF NOT EXISTS delivery_index (
    tenant      String,
    delivery_id String,
    webhook_id  String,
    at          DateTime
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(at)
ORDER BY (tenant, delivery_id, webhook_id);

-- Filled by every insert into attempts, so the two cannot drift apart.
CREATE MATERIALIZED VIEW IF NOT EXISTS delivery_index_mv TO delivery_index AS
SELECT tenant, delivery_id, webhook_id, at FROM attempts;
