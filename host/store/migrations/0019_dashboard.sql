-- Indexes behind the dashboard's summaries, so each is a range or point lookup however many runs
-- a tenant has: runs created since a time, counted by state without reading the rows (the state
-- is in the index); an agent's latest run (the largest id for the agent); runs waiting for
-- approval, counted.
CREATE INDEX jobs_created ON jobs (tenant_id, created_at, state);
CREATE INDEX jobs_by_agent ON jobs (tenant_id, agent, id);
CREATE INDEX jobs_awaiting ON jobs (tenant_id) WHERE state = 'awaiting_approval';
