-- The self-healing monitor's records (after 0017_monitor_<backend>.sql).
--
-- nodes: every serving node says it is alive (seen_at) every few seconds; one not seen for a while
-- is dead, and the monitor forgets it. leases: a named role only one node holds at a time (the
-- monitor's cycle), renewed before `until` and taken over when it lapses.
CREATE TABLE nodes (
    id          TEXT PRIMARY KEY,
    started_at  BIGINT NOT NULL,
    seen_at     BIGINT NOT NULL
);
CREATE TABLE leases (
    name    TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    until   BIGINT NOT NULL
);
CREATE INDEX health_snapshots_at ON health_snapshots (at);
CREATE UNIQUE INDEX incidents_open ON incidents (tenant_id, kind, subject) WHERE state = 'open';
CREATE INDEX incidents_by_tenant ON incidents (tenant_id, id);
-- Finished runs that failed for good, by time: the monitor looks at the new ones each cycle.
CREATE INDEX jobs_dead ON jobs (finished_at) WHERE state = 'dead';
-- Why the monitor switched an automation off (NULL when a person did, or it is on).
ALTER TABLE automations ADD COLUMN paused_reason TEXT;
