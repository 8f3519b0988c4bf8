-- The license list sorts 50,000 rows by the app's name (#14, #15): the lower-cased name (or the
-- adamId until the name is known) kept on each asset row, with an index to read them in order,
-- instead of joining the metadata and sorting on every page. Kept by upsert_assets and
-- upsert_metadata.
ALTER TABLE assets ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
UPDATE assets SET name_key = LOWER(COALESCE((SELECT m.name FROM app_metadata m WHERE m.adam_id = assets.adam_id), assets.adam_id));
CREATE INDEX assets_by_name ON assets (name_key, token_id, pricing);
