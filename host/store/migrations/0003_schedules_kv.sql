-- Durable schedules and tenant key-value state.

-- The high-water mark of each time-triggered automation: the last tick handled (fired, skipped
-- or missed). Nodes advance it with a compare-and-set, so each tick is handled by exactly one node
-- and a restart neither skips nor repeats one.
CREATE TABLE schedule_state (
    tenant_id   TEXT NOT NULL,
    automation  TEXT NOT NULL,
    last_tick   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, automation),
    FOREIGN KEY (tenant_id, automation) REFERENCES automations (tenant_id, name) ON DELETE CASCADE
);

-- What happened at each tick, so a client can see why something did or did not run.
CREATE TABLE tick_events (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    automation  TEXT NOT NULL,
    tick        BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    job_id      BIGINT,
    reason      TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, automation, tick)
);

-- wasi:keyvalue buckets. The bucket name carries the tenant (`tenant:<id>`); the runtime lets a
-- plugin open only its own.
CREATE TABLE kv (
    bucket      TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (bucket, key)
);
