
-- The ledger: one row per AI call (`ai`) and one per run for its fuel (`fuel`). Append-only:
-- triggers refuse every update and delete, so a billed amount can only be corrected by a new row.
-- No foreign key to tenants: billing records outlive a deleted tenant.
CREATE TABLE ledger (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    at                  BIGINT NOT NULL,
    day                 TEXT NOT NULL,
    month               TEXT NOT NULL,
    tenant_id           TEXT NOT NULL,
    kind                TEXT NOT NULL,
    agent               TEXT NOT NULL,
    automation          TEXT,
    run_id              TEXT NOT NULL,
    attempt             BIGINT NOT NULL,
    provider            TEXT,
    model               TEXT,
    input_tokens        BIGINT NOT NULL DEFAULT 0,
    output_tokens       BIGINT NOT NULL DEFAULT 0,
    cache_read_tokens   BIGINT NOT NULL DEFAULT 0,
    cache_write_tokens  BIGINT NOT NULL DEFAULT 0,
    usage_estimated     BIGINT NOT NULL DEFAULT 0,
    fuel                BIGINT NOT NULL DEFAULT 0,
    price_version       BIGINT NOT NULL,
    cost                BIGINT NOT NULL
);
CREATE INDEX ledger_by_month ON ledger (tenant_id, month);
CREATE INDEX ledger_by_run ON ledger (run_id);
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
