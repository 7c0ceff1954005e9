-- `jobs_created` without `state` (as on SQLite since migration 24): no index of `jobs` may
-- mention a column that changes, or its updates stop being HOT.
DROP INDEX jobs_created;
CREATE INDEX jobs_created ON jobs (tenant_id, created_at);
-- Room on each page for the new versions of its rows (a claim and a result each write one): a
-- HOT update must find space on the row's own page. Pages written from now on are filled half.
ALTER TABLE jobs SET (fillfactor = 50);
-- The run totals are counted by the statements that finish runs (`count_finished`), not by
-- triggers, as on SQLite (whose row triggers cost more than the updates they watched).
DROP TRIGGER run_totals_move ON jobs;
DROP TRIGGER run_totals_insert ON jobs;
DROP FUNCTION run_totals_move();
DROP FUNCTION run_totals_insert();
