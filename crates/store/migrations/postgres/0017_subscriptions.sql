-- Subscriptions (Apple's §15): a token whose location we manage subscriptions for, the
-- subscriptions Apple sold into it with their seat counts split renewing/expiring, and who holds
-- a seat. `leaving` marks a seat we asked Apple to take back at the period's end (Apple's lists do
-- not say it).
CREATE TABLE subscription_management (
    token_id   BIGINT PRIMARY KEY REFERENCES tokens(id) ON DELETE CASCADE,
    enabled_at BIGINT NOT NULL,
    synced_at  BIGINT
);
CREATE TABLE subscriptions (
    token_id           BIGINT NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    adam_id            BIGINT NOT NULL,
    parent_adam_id     BIGINT NOT NULL,
    status             TEXT NOT NULL,
    period_end         TEXT,
    assigned_renewing  BIGINT NOT NULL,
    assigned_expiring  BIGINT NOT NULL,
    available_renewing BIGINT NOT NULL,
    available_expiring BIGINT NOT NULL,
    total_renewing     BIGINT NOT NULL,
    total_expiring     BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (token_id, adam_id)
);
CREATE TABLE subscription_seats (
    token_id       BIGINT NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    adam_id        BIGINT NOT NULL,
    client_user_id TEXT NOT NULL,
    renewing       BOOLEAN NOT NULL,
    leaving        BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (token_id, adam_id, client_user_id)
);
