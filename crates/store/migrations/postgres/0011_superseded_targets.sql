-- A target that another deployment in force owns (see allot_domain::intent) is `superseded`; the
-- owner's id is kept so the API and console can name it.
ALTER TABLE deployment_targets ADD COLUMN superseded_by BIGINT;
CREATE INDEX deployment_targets_member ON deployment_targets (member_id);
