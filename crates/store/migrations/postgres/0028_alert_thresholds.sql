-- `licenses.low` per app (#13): an app's own threshold of free licenses, over the global
-- ALLOT_ALERT_LOW_LICENSES.
CREATE TABLE alert_thresholds (
    adam_id   TEXT NOT NULL,
    pricing   TEXT NOT NULL,
    threshold BIGINT NOT NULL,
    PRIMARY KEY (adam_id, pricing)
);
