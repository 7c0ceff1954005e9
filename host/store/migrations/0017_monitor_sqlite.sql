-- The self-healing monitor's two tables with generated ids (the rest: 0017_monitor_common.sql).
--
-- health_snapshots: one row per monitor cycle, what it measured (JSON), kept for a retention period.
-- incidents: something the monitor noticed, what it did about it, and whether it is over. At most
-- one open incident per (tenant, kind, subject): noticing the same thing again updates it. An
-- incident about the platform as a whole has tenant '' (not a tenant's).
CREATE TABLE health_snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at    BIGINT NOT NULL,
    node  TEXT NOT NULL,
    data  TEXT NOT NULL
);
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    severity     TEXT NOT NULL,
    state        TEXT NOT NULL,
    summary      TEXT NOT NULL,
    action       TEXT,
    opened_at    BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    resolved_at  BIGINT,
    -- Where the incident was escalated (its resolution is posted there too).
    escalated_to TEXT
);

-- Escalations go out through the outbox too, and an incident of the platform as a whole belongs
-- to no tenant: deliveries keep their tenant ('' for the platform) without a foreign key, and
-- `secret` '' means the deployment's own escalation signing key rather than a tenant secret.
CREATE TABLE outbound_webhooks_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    run_id       BIGINT,
    url          TEXT NOT NULL,
    secret       TEXT NOT NULL,
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    next_at      BIGINT NOT NULL,
    last_status  BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    delivered_at BIGINT
);
INSERT INTO outbound_webhooks_new SELECT id, tenant_id, event_type, run_id, url, secret, payload, state, attempts, next_at,
    last_status, last_error, created_at, delivered_at FROM outbound_webhooks;
DROP TABLE outbound_webhooks;
ALTER TABLE outbound_webhooks_new RENAME TO outbound_webhooks;
CREATE INDEX outbound_webhooks_due ON outbound_webhooks (next_at) WHERE state = 'pending';
CREATE INDEX outbound_webhooks_by_run ON outbound_webhooks (tenant_id, run_id);
