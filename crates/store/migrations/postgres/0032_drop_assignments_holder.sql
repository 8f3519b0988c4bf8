-- Every assignment written by a sync updated three B-trees: the key, assignments_by_holder
-- (holder, holder_kind: a holder's licenses on every token) and assignments_holder (token_id,
-- holder_kind, holder), which no query reads — those by token also name the asset, and the
-- key's order serves them (#15).
DROP INDEX assignments_holder;
