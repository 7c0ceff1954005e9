-- The self-healing monitor's two tables with generated ids (the rest: 0017_monitor_common.sql).
--
-- health_snapshots: one row per monitor cycle, what it measured (JSON), kept for a retention period.
-- incidents: something the monitor noticed, what it did about it, and whether it is over. At most
-- one open incident per (tenant, kind, subject): noticing the same thing again updates it. An
-- incident about the platform as a whole has tenant '' (not a tenant's).
CREATE TABLE health_snapshots (
    id BIGSERIAL PRIMARY KEY,
    at    BIGINT NOT NULL,
    node  TEXT NOT NULL,
    data  TEXT NOT NULL
);
CREATE TABLE incidents (
    id BIGSERIAL PRIMARY KEY,
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
ALTER TABLE outbound_webhooks DROP CONSTRAINT outbound_webhooks_tenant_id_fkey;
