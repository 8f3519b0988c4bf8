-- NanoMDM's webhook events already applied, by event_id, kept for a window: a signed body sent
-- again (a replay) is refused instead of applied twice.
CREATE TABLE mdm_events (
    event_id    TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);
CREATE INDEX mdm_events_by_time ON mdm_events (received_at);
-- The created_at of the newest event applied to a device: an older one that arrives late does
-- not undo newer state (a late CheckOut after a newer Authenticate).
ALTER TABLE devices ADD COLUMN last_event_at BIGINT;
