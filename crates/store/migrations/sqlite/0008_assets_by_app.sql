-- Which tokens hold an app (deployments drawing from any token, plans): one lookup, not a read of
-- every token's assets.
CREATE INDEX assets_by_app ON assets (adam_id, pricing);
