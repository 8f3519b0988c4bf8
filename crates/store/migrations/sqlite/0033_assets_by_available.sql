-- The front page's "apps low on licenses" (the license list sorted by free licenses, #14, #15):
-- read in that order and stopped after ten, instead of sorting 50,000 rows.
CREATE INDEX assets_by_available ON assets (unlimited, available, name_key);
