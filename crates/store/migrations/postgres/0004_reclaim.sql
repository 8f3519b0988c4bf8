-- When the licenses of a device that left management were given back to Apple.
ALTER TABLE devices ADD COLUMN licenses_reclaimed_at BIGINT;
