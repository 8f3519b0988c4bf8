-- What an app's metadata says beyond its name: the minimum OS a device needs (from either of
-- Apple's metadata services), whether it is the organization's own custom app, which service
-- answered (`lookup`, §18.1, or `metadata-api`, §18.2) and in which storefront.
ALTER TABLE app_metadata ADD COLUMN minimum_os_version TEXT;
ALTER TABLE app_metadata ADD COLUMN custom_app BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE app_metadata ADD COLUMN source TEXT NOT NULL DEFAULT 'lookup';
ALTER TABLE app_metadata ADD COLUMN storefront TEXT;
