-- `jobs_created` without `state` (as on SQLite since migration 24): no index of `jobs` may
-- mention a column that changes, or its updates stop being HOT.
DROP INDEX jobs_created;
CREATE INDEX jobs_created ON jobs (tenant_id, created_at);
-- Room on each page for the new versions of its rows (a claim and a result each write one): a
-- HOT update must find space on the row's own page. Pages written from now on are filled half.
ALTER TABLE jobs SET (fillfactor = 50);
