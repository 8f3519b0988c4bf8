-- The license list's search (name, bundle id or adamId) reads one lower-cased column of the asset
-- row instead of joining every row with its metadata (#14, #15). Kept with name_key.
ALTER TABLE assets ADD COLUMN search_key TEXT NOT NULL DEFAULT '';
UPDATE assets SET search_key = LOWER(COALESCE((SELECT m.name || '
' || COALESCE(m.bundle_id, '') FROM app_metadata m WHERE m.adam_id = assets.adam_id), '')) || '
' || assets.adam_id;
