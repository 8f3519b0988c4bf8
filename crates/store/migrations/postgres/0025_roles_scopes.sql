-- Roles scoped to locations (#13). `read_only` is now called `viewer`, beside a new `operator`.
-- Each console account and API key may be scoped to some tokens: JSON
-- {"tokens": [ids], "categories": [names]}; NULL: every token. Accounts can be disabled (their
-- sessions end) and remember their last sign-in.
UPDATE console_accounts SET role = 'viewer' WHERE role = 'read_only';
UPDATE api_keys SET role = 'viewer' WHERE role = 'read_only';
ALTER TABLE console_accounts ADD COLUMN scope TEXT;
ALTER TABLE console_accounts ADD COLUMN disabled_at BIGINT;
ALTER TABLE console_accounts ADD COLUMN last_sign_in_at BIGINT;
ALTER TABLE api_keys ADD COLUMN scope TEXT;
