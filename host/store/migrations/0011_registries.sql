-- Data registries: each tenant's declared tables (their fields as JSON), their rows (a JSON object
-- each), and one row per value of a unique field, whose primary key is what makes it unique on
-- both backends.
CREATE TABLE registries (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    fields     TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
CREATE TABLE registry_rows (
    tenant_id  TEXT NOT NULL,
    registry   TEXT NOT NULL,
    id         BIGINT NOT NULL,
    data       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, registry, id),
    FOREIGN KEY (tenant_id, registry) REFERENCES registries (tenant_id, name) ON DELETE CASCADE
);
CREATE TABLE registry_unique (
    tenant_id TEXT NOT NULL,
    registry  TEXT NOT NULL,
    field     TEXT NOT NULL,
    value     TEXT NOT NULL,
    row_id    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, registry, field, value),
    FOREIGN KEY (tenant_id, registry) REFERENCES registries (tenant_id, name) ON DELETE CASCADE
);
