-- Searching 500,000 devices by part of a serial number, name or model (#14, #15): trigram indexes
-- (pg_trgm, a trusted extension shipped with PostgreSQL) on the lower-cased columns, which the
-- search's LOWER(…) LIKE '%…%' conditions use, instead of scanning every row.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX devices_search_serial ON devices USING gin (LOWER(serial_number) gin_trgm_ops);
CREATE INDEX devices_search_name ON devices USING gin (LOWER(name) gin_trgm_ops);
CREATE INDEX devices_search_model ON devices USING gin (LOWER(model) gin_trgm_ops);
