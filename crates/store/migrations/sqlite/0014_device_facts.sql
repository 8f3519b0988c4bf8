-- What each device last said of itself (Authenticate, or the periodic DeviceInformation): its OS
-- version, for the compatibility and declarative-management checks, and when it said it.
ALTER TABLE devices ADD COLUMN os_version TEXT;
ALTER TABLE devices ADD COLUMN info_reported_at BIGINT;
-- When a push to the device last failed, for "push failures in the last hour".
ALTER TABLE devices ADD COLUMN push_failed_at BIGINT;
