-- What each deployment asks of the devices beyond the license (spec §17 InstallApplication keys)
-- and what happens to members that leave its collection; who created it, for the ledger.
ALTER TABLE deployments ADD COLUMN on_leave TEXT NOT NULL DEFAULT 'keep';
ALTER TABLE deployments ADD COLUMN install_options TEXT NOT NULL DEFAULT '{}';
ALTER TABLE deployments ADD COLUMN created_by TEXT;
-- A deployment deleted with "then revoke" or "then uninstall" is no longer in force (it owns no
-- target) but stays until it has given back what it holds; then it goes.
ALTER TABLE deployments ADD COLUMN ending TEXT;
-- A collection or token deleted with "then revoke" or "then uninstall" goes once the deployments
-- that used it have given back what they held.
ALTER TABLE collections ADD COLUMN deleting_at BIGINT;
ALTER TABLE tokens ADD COLUMN deleting_at BIGINT;

-- The store's current version of an app (offers[].version.externalId), to see that a device runs
-- an older one.
ALTER TABLE app_metadata ADD COLUMN external_version_id BIGINT;

-- The periodic ManagedApplicationList: at most one question outstanding per device, and what the
-- device last said of each managed app, with its time.
ALTER TABLE devices ADD COLUMN apps_command TEXT;
ALTER TABLE devices ADD COLUMN apps_asked_at BIGINT;
ALTER TABLE devices ADD COLUMN apps_reported_at BIGINT;
CREATE TABLE device_apps (
    device_id           BIGINT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    bundle_id           TEXT NOT NULL,
    status              TEXT NOT NULL,
    external_version_id BIGINT,
    reported_at         BIGINT NOT NULL,
    PRIMARY KEY (device_id, bundle_id)
);
CREATE INDEX devices_apps_due ON devices (apps_asked_at);

-- A push NanoMDM could not deliver (an iOS device checks in only when pushed): retried with
-- backoff until the device checks in or the attempts run out.
ALTER TABLE devices ADD COLUMN push_error TEXT;
ALTER TABLE devices ADD COLUMN push_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN push_next_at BIGINT;

-- DeviceInformation asked of an enrollment Allot does not know (its Authenticate webhook was
-- lost): at most one question a day per enrollment.
CREATE TABLE device_queries (
    enrollment_id TEXT PRIMARY KEY,
    command_uuid  TEXT NOT NULL,
    asked_at      BIGINT NOT NULL
);

-- What `ledger clean` asked Apple to take back, and who asked.
CREATE TABLE ledger_actions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    token_id     BIGINT NOT NULL,
    adam_id      TEXT NOT NULL,
    pricing      TEXT NOT NULL,
    holder_kind  TEXT NOT NULL,
    holder       TEXT NOT NULL,
    event_id     TEXT,
    outcome      TEXT NOT NULL
);
