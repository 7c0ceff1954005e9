-- The queue: a row per job the queue still has in hand, beside its row in `jobs`: waiting
-- (scheduled, available), running, held for a person (awaiting_approval) or dead-lettered (dead).
-- A job that succeeded, was cancelled or rejected has none. `jobs.state` stays the whole truth
-- and changes in the same transaction as the queue row; the queue holds what choosing and
-- watching work needs (rank, due time, lease, node) under the partial indexes that used to be on
-- `jobs`. `claimed_by` is set on a queue row exactly while its job runs (a run keeps its last
-- node in `jobs`).
--
-- Why: on PostgreSQL an UPDATE that changes a column any index mentions (in its key or in a
-- partial index's predicate) writes a new entry into every index of the table; one that changes
-- none is a HOT update, which writes no index at all. `jobs` had a dozen indexes and the queue's
-- partial indexes on `state`, so each run's claim and result wrote about fifteen index entries.
-- Now no index of `jobs` mentions a column that changes after the insert, its updates are HOT
-- (0025_queue_postgres_after.sql leaves room on its pages for them), and the queue's few indexes
-- take the churn: a claim writes two entries and a result none (it deletes the row).
INSERT INTO queue (id, tenant_id, automation, priority, state, rank_key, run_at, created_at, claimed_by, lease_until,
                   parked, shed_from, finished_at)
    SELECT id, tenant_id, automation, priority, state, rank_key, run_at, created_at,
           CASE WHEN state = 'running' THEN claimed_by END, lease_until, parked, shed_from, finished_at
    FROM jobs WHERE state IN ('scheduled', 'available', 'running', 'awaiting_approval', 'dead');

-- Claims: a tenant's available work in rank order (see `rank_key` in 0002_jobs_common.sql).
CREATE INDEX queue_available ON queue (tenant_id, rank_key DESC, id) WHERE state = 'available';
-- The stager: retries and future work by due time.
CREATE INDEX queue_scheduled ON queue (run_at) WHERE state = 'scheduled';
-- Per-automation concurrency (`max_running`) and lease recovery (every running job).
CREATE INDEX queue_running ON queue (tenant_id, automation) WHERE state = 'running';
-- The approvals inbox.
CREATE INDEX queue_awaiting ON queue (tenant_id, id) WHERE state = 'awaiting_approval';
-- The monitor's look at runs that failed for good since its last cycle.
CREATE INDEX queue_dead ON queue (finished_at) WHERE state = 'dead';
-- Load shedding's held jobs.
CREATE INDEX queue_shed ON queue (shed_from) WHERE shed_from IS NOT NULL;

DROP INDEX jobs_available;
DROP INDEX jobs_scheduled;
DROP INDEX jobs_running_by_automation;
DROP INDEX jobs_dead;
DROP INDEX jobs_shed;
DROP INDEX jobs_awaiting;
-- These live in the queue only now.
ALTER TABLE jobs DROP COLUMN rank_key;
ALTER TABLE jobs DROP COLUMN lease_until;
ALTER TABLE jobs DROP COLUMN parked;
ALTER TABLE jobs DROP COLUMN shed_from;

-- A tenant's running jobs are counted as the runs its claims started (`queue_tenants`, written by
-- claims) less the runs that stopped counting (`queue_left`, written by everything that ends or
-- parks a run). A recording then never takes the row a claim needs: on PostgreSQL a claim skips a
-- tenant whose row another transaction holds, and the recorder held it at every commit.
ALTER TABLE queue_tenants RENAME COLUMN running TO started;
CREATE TABLE queue_left (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    runs       BIGINT NOT NULL
);
