-- A device's OS version as one number that orders like the version (17.4.1 → 17004001), so that
-- "needs iOS 17.2 or later" is one comparison in SQL over every target of a deployment. Filled
-- when a device says its version; older rows are filled once at start-up.
ALTER TABLE devices ADD COLUMN os_version_num BIGINT;
