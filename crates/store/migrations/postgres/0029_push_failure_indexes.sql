-- The MDM connector's line on the Tokens, Devices and front pages counts devices whose push failed
-- (now and in the last hour): partial indexes over those few, instead of three scans of every
-- device (#14, #15: 100 ms of each of those pages at 500,000 devices).
CREATE INDEX devices_push_failing ON devices (push_next_at) WHERE push_error IS NOT NULL;
CREATE INDEX devices_push_failed_at ON devices (push_failed_at) WHERE push_failed_at IS NOT NULL;
