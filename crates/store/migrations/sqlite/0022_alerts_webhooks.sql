-- Alerts and outgoing webhooks (#13). An alert is raised once per dedupe key (an episode: "the
-- token of location X expires within 7 days", "app Y went low on licenses at time T"); raising
-- it writes the event and one delivery per subscribed endpoint in one transaction (the outbox), so
-- a crash never loses a delivery and a restart never raises it twice.
CREATE TABLE webhook_endpoints (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    url         TEXT NOT NULL,
    -- Event names separated by commas, or '*' for every event.
    events      TEXT NOT NULL,
    -- The signing secret, sealed with the server's secret key.
    secret      BLOB NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_by  TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE alert_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The event id receivers see (a UUID), stable across retries.
    event_id    TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    dedupe_key  TEXT NOT NULL UNIQUE,
    -- One line for people.
    summary     TEXT NOT NULL,
    -- The event's data (JSON).
    data        TEXT NOT NULL,
    raised_at   BIGINT NOT NULL,
    -- Set when the condition is over (the front page shows open alerts).
    resolved_at BIGINT
);
CREATE INDEX alert_events_open ON alert_events (resolved_at, raised_at);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id     INTEGER NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    alert_id        INTEGER NOT NULL REFERENCES alert_events(id) ON DELETE CASCADE,
    -- pending, delivered or failed (gave up after a day).
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_attempt_at BIGINT,
    -- The receiver's HTTP status, or the error when there was none.
    last_status     BIGINT,
    last_error      TEXT,
    delivered_at    BIGINT,
    created_at      BIGINT NOT NULL,
    UNIQUE (endpoint_id, alert_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
