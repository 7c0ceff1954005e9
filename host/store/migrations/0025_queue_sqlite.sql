-- The queue beside the jobs (see 0025_queue_common.sql); on SQLite its id is the rowid.
CREATE TABLE queue (
    id           INTEGER PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    automation   TEXT,
    priority     BIGINT NOT NULL,
    state        TEXT NOT NULL,
    rank_key     BIGINT NOT NULL,
    run_at       BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    claimed_by   TEXT,
    lease_until  BIGINT,
    parked       BIGINT NOT NULL DEFAULT 0,
    shed_from    BIGINT,
    finished_at  BIGINT
);
