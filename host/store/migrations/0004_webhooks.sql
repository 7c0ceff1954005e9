-- Webhook triggers: the signing secret of each webhook automation, and every delivery accepted
-- (by its webhook-id), so a replayed delivery is refused rather than run twice.

CREATE TABLE webhook_secrets (
    tenant_id   TEXT NOT NULL,
    automation  TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, automation),
    FOREIGN KEY (tenant_id, automation) REFERENCES automations (tenant_id, name) ON DELETE CASCADE
);

CREATE TABLE webhook_deliveries (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    automation   TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    job_id       BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, automation, message_id)
);
