-- Times are Unix milliseconds; lists are JSON text.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE tokens (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT NOT NULL UNIQUE,
    description         TEXT NOT NULL DEFAULT '',
    categories          TEXT NOT NULL DEFAULT '[]',
    apple_account       TEXT NOT NULL DEFAULT '',
    program             TEXT NOT NULL,
    uid                 TEXT NOT NULL UNIQUE,
    org_name            TEXT NOT NULL,
    location_name       TEXT NOT NULL DEFAULT '',
    country             TEXT NOT NULL DEFAULT '',
    secret              BLOB NOT NULL,
    notification_secret BLOB,
    expires_at          INTEGER NOT NULL,
    claim               TEXT NOT NULL,
    other_mdm           TEXT,
    auth_error          INTEGER,
    last_error          TEXT,
    last_error_at       INTEGER,
    assignments_version TEXT,
    users_version       TEXT,
    last_delta_sync_at  INTEGER,
    last_full_sync_at   INTEGER,
    sync_serial         INTEGER NOT NULL DEFAULT 0,
    lease_owner         TEXT,
    lease_until         INTEGER,
    full_sync_wanted    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

CREATE TABLE assets (
    token_id          INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    adam_id           TEXT NOT NULL,
    pricing           TEXT NOT NULL,
    product_type      TEXT NOT NULL,
    total             INTEGER NOT NULL,
    assigned          INTEGER NOT NULL,
    available         INTEGER NOT NULL,
    retired           INTEGER NOT NULL,
    device_assignable BOOLEAN NOT NULL,
    revocable         BOOLEAN NOT NULL,
    unlimited         BOOLEAN NOT NULL,
    platforms         TEXT NOT NULL,
    generation        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (token_id, adam_id, pricing)
);

CREATE TABLE assignments (
    token_id    INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    adam_id     TEXT NOT NULL,
    pricing     TEXT NOT NULL,
    holder_kind TEXT NOT NULL,
    holder      TEXT NOT NULL,
    generation  INTEGER NOT NULL,
    PRIMARY KEY (token_id, adam_id, pricing, holder_kind, holder)
) WITHOUT ROWID;
CREATE INDEX assignments_holder ON assignments (token_id, holder_kind, holder);

CREATE TABLE apple_users (
    token_id       INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    client_user_id TEXT NOT NULL,
    status         TEXT NOT NULL,
    email          TEXT,
    invite_code    TEXT,
    id_hash        TEXT,
    generation     INTEGER NOT NULL,
    PRIMARY KEY (token_id, client_user_id)
);

CREATE TABLE app_metadata (
    adam_id          TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    bundle_id        TEXT,
    icon_url         TEXT,
    platforms        TEXT NOT NULL,
    version          TEXT,
    kind             TEXT,
    artist           TEXT,
    genre            TEXT,
    device_licensing BOOLEAN NOT NULL,
    fetched_at       INTEGER NOT NULL
);

CREATE TABLE notifications_seen (
    notification_id TEXT PRIMARY KEY,
    token_id        INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    received_at     INTEGER NOT NULL
);

CREATE TABLE sync_runs (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id            INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    kind                TEXT NOT NULL,
    reason              TEXT NOT NULL,
    status              TEXT NOT NULL,
    started_at          INTEGER NOT NULL,
    finished_at         INTEGER,
    pages               INTEGER NOT NULL DEFAULT 0,
    pages_total         INTEGER NOT NULL DEFAULT 0,
    assets_changed      INTEGER NOT NULL DEFAULT 0,
    assignments_added   INTEGER NOT NULL DEFAULT 0,
    assignments_removed INTEGER NOT NULL DEFAULT 0,
    users_changed       INTEGER NOT NULL DEFAULT 0,
    error               TEXT
);
CREATE INDEX sync_runs_token ON sync_runs (token_id, id);

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
