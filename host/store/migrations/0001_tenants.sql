-- Tenants, their agents and their automations. Shared by SQLite and PostgreSQL: integer columns
-- are BIGINT (SQLite gives them integer affinity), times are microseconds since the Unix epoch in
-- UTC, JSON documents are TEXT.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE agents (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    plugin        TEXT NOT NULL,
    model         TEXT,
    instructions  TEXT,
    config        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE automations (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    agent         TEXT NOT NULL,
    trigger_spec  TEXT NOT NULL,
    input         TEXT NOT NULL,
    enabled       BIGINT NOT NULL,
    priority      BIGINT NOT NULL,
    overlap       TEXT NOT NULL,
    catch_up      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name),
    FOREIGN KEY (tenant_id, agent) REFERENCES agents (tenant_id, name)
);
