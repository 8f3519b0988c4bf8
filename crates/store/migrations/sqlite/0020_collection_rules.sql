-- Rule-based collections: the rule (JSON, `allot_domain::MembershipRule`; NULL for a static
-- collection) is evaluated in SQL and its members written into collection_members by set-based
-- statements (on save, and at every reconcile pass), so deployments read members one way.
ALTER TABLE collections ADD COLUMN rule TEXT;
ALTER TABLE collections ADD COLUMN rule_evaluated_at BIGINT;
-- A person's department, from the CSV import or the API, for rules.
ALTER TABLE people ADD COLUMN department TEXT;
CREATE INDEX devices_platform ON devices (platform);
CREATE INDEX people_department ON people (LOWER(department));
