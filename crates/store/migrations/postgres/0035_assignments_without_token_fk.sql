-- The foreign key from assignments to tokens cost PostgreSQL a check per inserted row (4.5 s of a
-- million-row full sync, docs/performance.md). Deleting a token deletes its assignments itself
-- (`delete_token`), and every write of assignments first locks its token row against deletion
-- (`FOR KEY SHARE`, what the key did, once per transaction instead of once per row).
ALTER TABLE assignments DROP CONSTRAINT IF EXISTS assignments_token_id_fkey;
