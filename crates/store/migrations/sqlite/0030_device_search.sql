-- Searching 500,000 devices by part of a serial number, name or model (#14, #15): a trigram
-- full-text index kept by triggers, instead of three LIKE '%…%' scans of every row. Searches of
-- one or two characters still scan (a trigram needs three).
CREATE VIRTUAL TABLE devices_search USING fts5(
    serial_number, name, model,
    content = 'devices', content_rowid = 'id', tokenize = 'trigram'
);
INSERT INTO devices_search (devices_search) VALUES ('rebuild');
CREATE TRIGGER devices_search_insert AFTER INSERT ON devices BEGIN
    INSERT INTO devices_search (rowid, serial_number, name, model)
    VALUES (new.id, new.serial_number, new.name, new.model);
END;
CREATE TRIGGER devices_search_delete AFTER DELETE ON devices BEGIN
    INSERT INTO devices_search (devices_search, rowid, serial_number, name, model)
    VALUES ('delete', old.id, old.serial_number, old.name, old.model);
END;
-- Only when the searched words change (check-ins and imports rewrite the same values).
CREATE TRIGGER devices_search_update AFTER UPDATE OF serial_number, name, model ON devices
WHEN old.serial_number IS NOT new.serial_number OR old.name IS NOT new.name OR old.model IS NOT new.model
BEGIN
    INSERT INTO devices_search (devices_search, rowid, serial_number, name, model)
    VALUES ('delete', old.id, old.serial_number, old.name, old.model);
    INSERT INTO devices_search (rowid, serial_number, name, model)
    VALUES (new.id, new.serial_number, new.name, new.model);
END;
