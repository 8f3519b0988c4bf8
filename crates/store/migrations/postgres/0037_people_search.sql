-- The people list (#15): searched by part of a name or e-mail through trigram indexes on the
-- lower-cased columns the search's LIKEs read (a LIKE '%…%' read every person), and its
-- unsearched pages read in name order from an index instead of sorting every person.
CREATE INDEX people_search_name ON people USING gin (LOWER(name) gin_trgm_ops);
CREATE INDEX people_search_email ON people USING gin (LOWER(COALESCE(email, '')) gin_trgm_ops);
CREATE INDEX people_by_name ON people (LOWER(name), id);
