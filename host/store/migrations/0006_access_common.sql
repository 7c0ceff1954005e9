-- Who may do what, and what they did: API keys, partners, tenant secrets, the audit log, run logs.
--
-- A key's secret is never stored: `hash` is the SHA-256 of the whole key as shown once at
-- creation; `id` is its public part (also inside the key), used to find the row.

ALTER TABLE tenants ADD COLUMN partner TEXT;
-- Incremented by every apply that changes the tenant's configuration, so an API edit of one agent
-- or automation (read the configuration, change one object, apply) cannot undo a concurrent one.
ALTER TABLE tenants ADD COLUMN config_version BIGINT NOT NULL DEFAULT 0;
-- What an agent's plugin is granted beyond its model: outbound hosts and secrets (JSON object).
ALTER TABLE agents ADD COLUMN grants TEXT NOT NULL DEFAULT '{}';
-- The run's log lines (JSON array), written with its result.
ALTER TABLE jobs ADD COLUMN logs TEXT;

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    hash          TEXT NOT NULL,
    role          TEXT NOT NULL,
    tenant_id     TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    partner       TEXT,
    label         TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);
CREATE INDEX api_keys_by_partner ON api_keys (partner);

-- Sealed with the deployment's secret key (XChaCha20-Poly1305, the tenant and name as associated
-- data, so a sealed value copied to another row does not open).
CREATE TABLE secrets (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    sealed      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
