-- The time zone a console account reads times in (an IANA name such as Europe/Paris); NULL: the
-- browser's own, then UTC. Exports stay in UTC.
ALTER TABLE console_accounts ADD COLUMN time_zone TEXT;
