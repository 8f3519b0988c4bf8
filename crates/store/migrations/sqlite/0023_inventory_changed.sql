-- Rule-based collections are evaluated again only when the inventory changed since: the newest
-- change of devices and of people, read through these indexes.
CREATE INDEX devices_updated ON devices (updated_at);
CREATE INDEX people_updated ON people (updated_at);
