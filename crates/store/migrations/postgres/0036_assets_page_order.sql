-- The license list read a page at a time in index order, its deep pages and every sort included
-- (#15): the token's name is kept on the asset row (token names never change), so an order never
-- joins the tokens, and each sort has an index that holds the row's key, so skipping to page 500
-- reads 25,000 index entries instead of 25,000 rows with their token and metadata. The last
-- sort columns (adamId, pricing) make the order total, so no row is on two pages.
ALTER TABLE assets ADD COLUMN token_name TEXT NOT NULL DEFAULT '';
UPDATE assets SET token_name = t.name FROM tokens t WHERE t.id = assets.token_id;
DROP INDEX assets_by_name;
DROP INDEX assets_by_available;
CREATE INDEX assets_by_name ON assets (name_key, token_name, adam_id, pricing, token_id);
CREATE INDEX assets_by_token_name ON assets (token_name, name_key, adam_id, pricing, token_id);
CREATE INDEX assets_by_total ON assets (total DESC, name_key, token_name, adam_id, pricing, token_id);
CREATE INDEX assets_by_used ON assets (assigned DESC, name_key, token_name, adam_id, pricing, token_id);
CREATE INDEX assets_by_available ON assets (unlimited, available, name_key, token_name, adam_id, pricing, token_id);
-- "Low on licenses" (a tenth or less free) counted and listed from the few rows that are. Written
-- as the query writes it (SQLite matches a partial index's terms as written, and cannot match
-- `available * 10 <= total`, a comparison of two columns).
CREATE INDEX assets_low ON assets (name_key, token_name, adam_id, pricing, token_id)
    WHERE NOT unlimited AND total - available * 10 >= 0;
-- The search (a substring of name, bundle id or adamId) through a trigram index instead of a
-- LIKE over every row (pg_trgm, created for the devices' search in 0030).
CREATE INDEX assets_search ON assets USING gin (search_key gin_trgm_ops);
