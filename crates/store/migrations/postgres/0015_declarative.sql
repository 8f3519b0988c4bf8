-- Declarative app management (com.apple.configuration.app.managed): a target delivered by a
-- declaration rather than by InstallApplication, so it is never sent the command as well.
ALTER TABLE deployment_targets ADD COLUMN declarative BOOLEAN NOT NULL DEFAULT FALSE;
-- The declarations token a device was last told of (DeclarativeManagement command): a change of
-- its declarations is pushed once.
ALTER TABLE devices ADD COLUMN declarations_token TEXT;
-- What the device's status reports (app.managed.list) last said of each declared app.
CREATE TABLE device_dm_apps (
    device_id              BIGINT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    bundle_id              TEXT NOT NULL,
    declaration_identifier TEXT,
    state                  TEXT NOT NULL,
    reasons                TEXT,
    external_version_id    BIGINT,
    reported_at            BIGINT NOT NULL,
    PRIMARY KEY (device_id, bundle_id)
);
-- A device whose declarations may have changed since it was last told: the next pass compares
-- its declarations token and sends DeclarativeManagement if it moved (crash-safe: cleared only
-- once told).
ALTER TABLE devices ADD COLUMN declarations_dirty_at BIGINT;
CREATE INDEX devices_declarations_dirty ON devices (declarations_dirty_at);
-- Declarative targets changed by set-based statements (superseded, resumed, left) are found by
-- their update time, so their devices are told.
CREATE INDEX deployment_targets_declarative ON deployment_targets (updated_at) WHERE declarative;
