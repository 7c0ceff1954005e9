-- Per-automation concurrency: the most runs of an automation at once, across nodes (NULL: no
-- limit; `overlap: queue` stores 1). Claims count an automation's running jobs through the index.

ALTER TABLE automations ADD COLUMN max_running BIGINT;
CREATE INDEX jobs_running_by_automation ON jobs (tenant_id, automation) WHERE state = 'running';
