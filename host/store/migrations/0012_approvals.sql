-- Approvals: an automation may hold each run's output for a person's decision (its delivery spec,
-- JSON, or NULL for none); each decision is recorded once per run, with who decided, when, the
-- output as the agent wrote it when the reviewer edited it, and the reason of a rejection.
ALTER TABLE automations ADD COLUMN approval TEXT;
CREATE TABLE approvals (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    run_id          BIGINT NOT NULL,
    decision        TEXT NOT NULL,
    decided_by      TEXT NOT NULL,
    decided_at      BIGINT NOT NULL,
    original_output TEXT,
    reason          TEXT,
    delivered_row   BIGINT,
    PRIMARY KEY (tenant_id, run_id)
);
