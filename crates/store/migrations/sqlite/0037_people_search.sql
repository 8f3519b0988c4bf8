-- The people list (#15): searched by part of a name or e-mail through a trigram full-text index
-- kept by triggers, as devices are (a LIKE '%…%' read all 50,000 people: 36 ms), and its
-- unsearched pages read in name order from an index instead of sorting every person.
CREATE VIRTUAL TABLE people_search USING fts5(
    name, email,
    content = 'people', content_rowid = 'id', tokenize = 'trigram'
);
INSERT INTO people_search (people_search) VALUES ('rebuild');
CREATE TRIGGER people_search_insert AFTER INSERT ON people BEGIN
    INSERT INTO people_search (rowid, name, email) VALUES (new.id, new.name, new.email);
END;
CREATE TRIGGER people_search_delete AFTER DELETE ON people BEGIN
    INSERT INTO people_search (people_search, rowid, name, email)
    VALUES ('delete', old.id, old.name, old.email);
END;
-- Only when the searched words change (imports rewrite the same values).
CREATE TRIGGER people_search_update AFTER UPDATE OF name, email ON people
WHEN old.name IS NOT new.name OR old.email IS NOT new.email
BEGIN
    INSERT INTO people_search (people_search, rowid, name, email)
    VALUES ('delete', old.id, old.name, old.email);
    INSERT INTO people_search (rowid, name, email) VALUES (new.id, new.name, new.email);
END;
CREATE INDEX people_by_name ON people (LOWER(name), id);
