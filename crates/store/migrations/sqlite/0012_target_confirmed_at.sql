-- When Apple (the license) or the device (the install) last confirmed a target's status, so every
-- status is shown with its age rather than as what Allot remembers doing.
ALTER TABLE deployment_targets ADD COLUMN confirmed_at BIGINT;
