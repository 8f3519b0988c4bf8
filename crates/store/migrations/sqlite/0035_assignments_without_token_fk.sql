-- PostgreSQL drops the foreign key from assignments to tokens here (its per-row check was the
-- cost of a full sync there). SQLite's check is cheap next to its write and dropping it would mean
-- rebuilding the table: it stays. The migration exists to keep both backends' numbers in step.
SELECT 1;
