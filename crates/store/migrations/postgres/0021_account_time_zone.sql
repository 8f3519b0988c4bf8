-- The time zone a console account reads times in (an IANA name such as Europe/Paris); NULL: the
-- browser's own, then UTC. Exports stay in UTC.
ALTER TABLE console_accounts ADD COLUMN time_zone TEXT;
-- "Counts as of": when each token last heard from Apple through a notification.
CREATE INDEX notifications_seen_token ON notifications_seen (token_id, received_at);
