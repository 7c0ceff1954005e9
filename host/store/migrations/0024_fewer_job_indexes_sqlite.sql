-- On SQLite `jobs_created` leaves the state out: SQLite rewrites an entry of an index only when
-- a column of that index changes, so a run's every change of state (queued, running, finished)
-- rewrote it. The dashboard's count of the runs of the partial hour before its totals reads those
-- rows instead (at most an hour of one tenant's runs). PostgreSQL writes an entry in every
-- non-partial index at each update of a row whatever changed, so there it keeps the state.
DROP INDEX jobs_created;
CREATE INDEX jobs_created ON jobs (tenant_id, created_at);
