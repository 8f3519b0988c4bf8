-- API keys can be revoked (kept, for the record of who had access) and the one configured by
-- ALLOT_ADMIN_API_KEY is marked, so that changing the setting revokes the key it replaces.
ALTER TABLE api_keys ADD COLUMN revoked_at BIGINT;
ALTER TABLE api_keys ADD COLUMN from_config BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE api_keys SET from_config = TRUE WHERE name = 'admin (ALLOT_ADMIN_API_KEY)';
