-- What a change of a setting was, before and after (an account's role or scope, a key's, an alert
-- endpoint's events, a time zone), in words; never a secret (#13).
ALTER TABLE audit_log ADD COLUMN detail TEXT;
