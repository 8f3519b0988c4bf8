-- People and devices that licenses go to, and the collections deployments target.

CREATE TABLE people (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Allot's stable id for the person at Apple: an opaque GUID, never the email (Apple's advice).
    client_user_id   TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    email            TEXT UNIQUE,
    managed_apple_id TEXT,
    removed_at       INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);

CREATE TABLE devices (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    serial_number     TEXT NOT NULL UNIQUE,
    -- The MDM's enrollment id (NanoMDM: the device UDID), where commands are sent.
    enrollment_id     TEXT UNIQUE,
    platform          TEXT NOT NULL,
    model             TEXT NOT NULL DEFAULT '',
    name              TEXT NOT NULL DEFAULT '',
    primary_person_id INTEGER REFERENCES people(id) ON DELETE SET NULL,
    enrolled          BOOLEAN NOT NULL DEFAULT TRUE,
    last_seen_at      INTEGER,
    unenrolled_at     INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX devices_primary_person ON devices (primary_person_id);

CREATE TABLE collections (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);

-- `member_id` is a person or a device, by the collection's kind.
CREATE TABLE collection_members (
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    member_id     INTEGER NOT NULL,
    PRIMARY KEY (collection_id, member_id)
);
