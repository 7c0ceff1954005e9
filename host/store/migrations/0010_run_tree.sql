-- Delegation: a job a run delegated knows its parent, the root of its tree, its depth and the
-- agents above it (a JSON array, root first), so the engine can bound depth and refuse cycles
-- without walking the tree, and the API can show the tree.
ALTER TABLE jobs ADD COLUMN parent_id BIGINT;
ALTER TABLE jobs ADD COLUMN root_id BIGINT;
ALTER TABLE jobs ADD COLUMN depth BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN lineage TEXT;
CREATE INDEX jobs_parent ON jobs (tenant_id, parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX jobs_root ON jobs (tenant_id, root_id) WHERE root_id IS NOT NULL;
