-- One instance steps a deployment at a time (several instances share a PostgreSQL database):
-- the others skip it until the lease is released or runs out.
ALTER TABLE deployments ADD COLUMN lease_owner TEXT;
ALTER TABLE deployments ADD COLUMN lease_until BIGINT;
