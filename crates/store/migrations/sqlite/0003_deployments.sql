-- Deployments and the state of each of their targets. `assets.reserved` counts licenses claimed
-- at Apple but not yet confirmed: new claims may take only `available - reserved`, checked and
-- reserved in one statement, so deployments racing for the last licenses never over-assign.

ALTER TABLE assets ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0;

CREATE TABLE deployments (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    adam_id       TEXT NOT NULL,
    pricing       TEXT NOT NULL,
    -- Tokens to draw from, in the administrator's order (JSON); empty: every usable token.
    token_ids     TEXT NOT NULL,
    collection_id INTEGER NOT NULL REFERENCES collections(id),
    action        TEXT NOT NULL,
    on_shortage   TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE deployment_targets (
    deployment_id INTEGER NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    member_id     INTEGER NOT NULL,
    label         TEXT NOT NULL,
    status        TEXT NOT NULL,
    license       TEXT,
    holder        TEXT,
    enrollment_id TEXT,
    token_id      INTEGER,
    event_id      TEXT,
    command_uuid  TEXT,
    detail        TEXT,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (deployment_id, member_id)
);
CREATE INDEX deployment_targets_command ON deployment_targets (command_uuid);
