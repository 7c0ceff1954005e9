-- A claim writes the queue row alone. While a job runs, its queue row holds the attempt under
-- way, when it started and the node running it; the transaction that ends the attempt (a result,
-- a failure, a suspension, a recovery, a cancellation) copies them to the job's row. The job's
-- row meanwhile shows the job as it was before the claim (available, the attempts before this
-- one); a released job goes back to exactly that.
--
-- Why: a run wrote five rows (the claim's queue and job rows, the result's queue and job rows,
-- its fuel in the ledger). The claim's update of `jobs` was a sixth of PostgreSQL's time a job;
-- a claim that wrote only the queue served 8-10% more jobs a second (BENCHMARKS.md).
ALTER TABLE queue ADD COLUMN attempt BIGINT NOT NULL DEFAULT 0;
ALTER TABLE queue ADD COLUMN started_at BIGINT;
UPDATE queue SET attempt = (SELECT j.attempt FROM jobs j WHERE j.id = queue.id),
    started_at = (SELECT j.started_at FROM jobs j WHERE j.id = queue.id);
-- Jobs that run as this migrates: their rows as a claim leaves them now.
UPDATE jobs SET state = 'available', attempt = attempt - 1 WHERE state = 'running';
-- Runs as they are now: every reader of a run's state, attempt, start or node reads this view,
-- never `jobs` (which is behind for a running job). A job that does not run matches no queue
-- row here, and its row in `jobs` is the whole truth.
CREATE VIEW runs AS
SELECT j.id, j.tenant_id, j.automation, j.agent, j.plugin, j.input, j.trigger_kind, j.priority,
       COALESCE(q.state, j.state) AS state, COALESCE(q.attempt, j.attempt) AS attempt, j.max_attempts, j.run_at,
       COALESCE(q.claimed_by, j.claimed_by) AS claimed_by, j.idempotency_key, j.output, j.error_kind, j.error,
       j.created_at, COALESCE(q.started_at, j.started_at) AS started_at, j.finished_at, j.logs, j.parent_id,
       j.root_id, j.depth, j.lineage, j.plugin_hash
FROM jobs j LEFT JOIN queue q ON q.id = j.id AND q.state = 'running';
