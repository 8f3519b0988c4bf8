-- People who sign in to the web console. Passwords are argon2 hashes (PHC strings).
CREATE TABLE console_accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    -- `admin` or `read_only`.
    role          TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

-- Signed-in sessions: the cookie's value is kept only as its SHA-256.
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES console_accounts(id) ON DELETE CASCADE,
    -- Every form of the session carries it (with SameSite cookies, against cross-site posts).
    csrf       TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

-- License counts over time, one row per asset whenever a sync finds them changed (charts).
CREATE TABLE license_history (
    token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    adam_id  TEXT NOT NULL,
    pricing  TEXT NOT NULL,
    at       INTEGER NOT NULL,
    total    INTEGER NOT NULL,
    assigned INTEGER NOT NULL,
    PRIMARY KEY (token_id, adam_id, pricing, at)
);
