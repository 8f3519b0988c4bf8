-- What Apple's ASSET_MANAGEMENT notifications said about each holder of an event, kept until the
-- deployment step that waits on the event reads it: the step then needs no status poll.
CREATE TABLE event_results (
    event_id      TEXT NOT NULL,
    holder        TEXT NOT NULL,
    -- NULL: done as asked; else Apple's errorNumber for this holder.
    error_number  INTEGER,
    error_message TEXT,
    received_at   BIGINT NOT NULL,
    PRIMARY KEY (event_id, holder)
);
CREATE INDEX event_results_received ON event_results (received_at);
