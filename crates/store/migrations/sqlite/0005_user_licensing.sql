-- Whether this deployment's own claim gave the target its license: only such a license is given
-- back when the install fails (a license the holder had before stays).
ALTER TABLE deployment_targets ADD COLUMN claimed BOOLEAN NOT NULL DEFAULT FALSE;
-- When the user licenses of a person who left were given back (their Apple user retired).
ALTER TABLE people ADD COLUMN licenses_reclaimed_at INTEGER;
-- Steps walk targets of one status in member order.
CREATE INDEX deployment_targets_walk ON deployment_targets (deployment_id, status, member_id);
-- A departed holder's licenses across every token.
CREATE INDEX assignments_by_holder ON assignments (holder, holder_kind);
