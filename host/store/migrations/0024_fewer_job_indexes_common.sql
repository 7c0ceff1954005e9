-- Fewer index entries written per job on the queue's hottest path (claim, then record).
-- `jobs_running` (by lease) goes: `jobs_running_by_automation` holds the same running jobs by
-- tenant and automation, and the one reader by lease (lease recovery, once a second per node)
-- reads the running jobs' rows, at most the worker slots of all nodes. A claim and a recording
-- each wrote one entry less, and a heartbeat, which changes only the lease, now writes none.
DROP INDEX jobs_running;
