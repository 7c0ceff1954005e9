-- The audit log: one row per change, kept when its tenant is deleted (no foreign key).
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         BIGINT NOT NULL,
    tenant_id  TEXT,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_by_tenant ON audit_log (tenant_id, id);
