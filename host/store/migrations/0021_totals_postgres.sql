
-- On PostgreSQL the triggers append deltas rather than update one row per key: nodes finish runs
-- of the same tenant at the same time, and one row per key would make their transactions queue
-- on its lock and, with several keys taken in different orders, deadlock. Readers sum the rows of
-- a key; `Store::fold_totals` (the engine's lease loop, every 10 s) folds a key's fresh deltas
-- into one row, so a key keeps a handful of rows. What is there already counts as folded.
ALTER TABLE ledger_totals ADD COLUMN fresh BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE ledger_totals ALTER COLUMN fresh SET DEFAULT true;
CREATE INDEX ledger_totals_by_tenant ON ledger_totals (tenant_id, month);
CREATE INDEX ledger_totals_fresh ON ledger_totals (tenant_id) WHERE fresh;
ALTER TABLE run_totals ADD COLUMN fresh BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE run_totals ALTER COLUMN fresh SET DEFAULT true;
CREATE INDEX run_totals_by_tenant ON run_totals (tenant_id, hour);
CREATE INDEX run_totals_fresh ON run_totals (tenant_id) WHERE fresh;

-- One statement-level trigger: a run completion batch's fuel rows become one delta per key.
CREATE FUNCTION ledger_totals_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_totals
        SELECT tenant_id, month, day, agent, COALESCE(automation, ''), COALESCE(model, ''), kind, COUNT(*),
               SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens),
               SUM(usage_estimated), SUM(fuel), SUM(cost), true
        FROM added GROUP BY tenant_id, month, day, agent, COALESCE(automation, ''), COALESCE(model, ''), kind;
    RETURN NULL;
END;
$$;
CREATE TRIGGER ledger_totals_add AFTER INSERT ON ledger REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_totals_add();

-- A statement's changes of state into and out of the finished states, one delta per key. The
-- trigger sees every UPDATE of jobs (PostgreSQL allows transition tables only without a column
-- list); leases and heartbeats change no state and add nothing.
CREATE FUNCTION run_totals_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO run_totals (tenant_id, hour, state, runs)
        SELECT tenant_id, hour, state, SUM(delta) FROM (
            SELECT n.tenant_id, n.created_at - n.created_at % 3600000000 AS hour, n.state, 1 AS delta
            FROM moved_to n JOIN moved_from o ON o.id = n.id
            WHERE n.state <> o.state AND n.state IN ('succeeded', 'dead', 'cancelled', 'failed', 'rejected')
            UNION ALL
            SELECT o.tenant_id, o.created_at - o.created_at % 3600000000, o.state, -1
            FROM moved_to n JOIN moved_from o ON o.id = n.id
            WHERE n.state <> o.state AND o.state IN ('succeeded', 'dead', 'cancelled', 'failed', 'rejected')
        ) AS d GROUP BY tenant_id, hour, state HAVING SUM(delta) <> 0;
    RETURN NULL;
END;
$$;
CREATE TRIGGER run_totals_move AFTER UPDATE ON jobs REFERENCING OLD TABLE AS moved_from NEW TABLE AS moved_to
    FOR EACH STATEMENT EXECUTE FUNCTION run_totals_move();
-- Runs are created queued; one created finished (none today) still counts.
CREATE FUNCTION run_totals_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO run_totals (tenant_id, hour, state, runs)
        VALUES (NEW.tenant_id, NEW.created_at - NEW.created_at % 3600000000, NEW.state, 1);
    RETURN NULL;
END;
$$;
CREATE TRIGGER run_totals_insert AFTER INSERT ON jobs FOR EACH ROW
    WHEN (NEW.state IN ('succeeded', 'dead', 'cancelled', 'failed', 'rejected')) EXECUTE FUNCTION run_totals_insert();
