-- A standing intent for subscription seats: every person in a users collection holds a seat of
-- this subscription on this token; people who leave the collection give theirs back at the
-- period's end. `subscription_intent_users` are the people an intent gave a seat to.
CREATE TABLE subscription_intents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id      BIGINT NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    adam_id       BIGINT NOT NULL,
    collection_id BIGINT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    renewing      BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (token_id, adam_id, collection_id)
);
CREATE TABLE subscription_intent_users (
    intent_id      BIGINT NOT NULL REFERENCES subscription_intents(id) ON DELETE CASCADE,
    client_user_id TEXT NOT NULL,
    PRIMARY KEY (intent_id, client_user_id)
);
