-- Running totals behind the dashboard's day and month summaries, so a page reads a few hundred
-- rows whatever a tenant's volume. Kept by triggers (0021_totals_sqlite.sql and
-- 0021_totals_postgres.sql) in the transaction of the write they count, so they cannot drift from
-- the ledger and the runs; the triggers, not the code paths that write, own them, so no way of
-- finishing a run (completion, failure, cancellation, approval, a dead-letter retry) can forget
-- them. Both start from what is there already.
--
-- ledger_totals: the ledger summed per tenant, month, day, agent, automation ('' for a run
-- started by hand), model ('' for fuel) and kind.
CREATE TABLE ledger_totals (
    tenant_id           TEXT NOT NULL,
    month               TEXT NOT NULL,
    day                 TEXT NOT NULL,
    agent               TEXT NOT NULL,
    automation          TEXT NOT NULL,
    model               TEXT NOT NULL,
    kind                TEXT NOT NULL,
    entries             BIGINT NOT NULL,
    input_tokens        BIGINT NOT NULL,
    output_tokens       BIGINT NOT NULL,
    cache_read_tokens   BIGINT NOT NULL,
    cache_write_tokens  BIGINT NOT NULL,
    usage_estimated     BIGINT NOT NULL,
    fuel                BIGINT NOT NULL,
    cost                BIGINT NOT NULL
);
CREATE INDEX ledger_totals_by_month ON ledger_totals (month);
INSERT INTO ledger_totals
    SELECT tenant_id, month, day, agent, COALESCE(automation, ''), COALESCE(model, ''), kind, COUNT(*),
           SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens),
           SUM(usage_estimated), SUM(fuel), SUM(cost)
    FROM ledger GROUP BY tenant_id, month, day, agent, COALESCE(automation, ''), COALESCE(model, ''), kind;

-- run_totals: finished runs (succeeded, dead, cancelled, failed, rejected) per tenant, hour of
-- creation (microseconds, UTC) and state. A run counts in its state while it is in it: a
-- dead-letter retry takes it out again.
CREATE TABLE run_totals (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    hour       BIGINT NOT NULL,
    state      TEXT NOT NULL,
    runs       BIGINT NOT NULL
);
INSERT INTO run_totals
    SELECT tenant_id, created_at - created_at % 3600000000, state, COUNT(*) FROM jobs
    WHERE state IN ('succeeded', 'dead', 'cancelled', 'failed', 'rejected')
    GROUP BY tenant_id, created_at - created_at % 3600000000, state;
