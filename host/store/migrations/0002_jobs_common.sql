-- The job queue (shared part; the table itself differs only in its id column, see 0002_jobs_*.sql).
--
-- States: scheduled (waits for run_at) → available → running → succeeded | failed (will retry:
-- back to scheduled) | dead (attempts exhausted; retry by hand) | cancelled.
--
-- rank_key orders available work within a tenant: priority × PRIORITY_STEP_MICROS − run_at, so a
-- higher priority runs first but every job gains one priority level per step of waiting (aging):
-- low priorities are never starved, and the order is a plain index scan.

CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_available ON jobs (tenant_id, rank_key DESC, id) WHERE state = 'available';
CREATE INDEX jobs_scheduled ON jobs (run_at) WHERE state = 'scheduled';
CREATE INDEX jobs_running ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_by_tenant ON jobs (tenant_id, id);

-- Per-tenant counters, kept in the same transactions that change job states. Claims walk this
-- small table round-robin (least recently served first) instead of scanning every job.
CREATE TABLE queue_tenants (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    available  BIGINT NOT NULL,
    running    BIGINT NOT NULL,
    served_at  BIGINT NOT NULL
);
