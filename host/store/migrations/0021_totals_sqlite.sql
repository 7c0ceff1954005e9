
-- SQLite keeps one row per key, updated in place by the triggers: its single writer makes the
-- upsert free of contention.
CREATE UNIQUE INDEX ledger_totals_key ON ledger_totals (tenant_id, month, day, agent, automation, model, kind);
CREATE TRIGGER ledger_totals_add AFTER INSERT ON ledger BEGIN
    INSERT INTO ledger_totals VALUES (NEW.tenant_id, NEW.month, NEW.day, NEW.agent, COALESCE(NEW.automation, ''),
        COALESCE(NEW.model, ''), NEW.kind, 1, NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens,
        NEW.cache_write_tokens, NEW.usage_estimated, NEW.fuel, NEW.cost)
    ON CONFLICT (tenant_id, month, day, agent, automation, model, kind) DO UPDATE SET
        entries = entries + 1, input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        usage_estimated = usage_estimated + excluded.usage_estimated, fuel = fuel + excluded.fuel,
        cost = cost + excluded.cost;
END;

CREATE UNIQUE INDEX run_totals_key ON run_totals (tenant_id, hour, state);
CREATE TRIGGER run_totals_insert AFTER INSERT ON jobs
    WHEN NEW.state IN ('succeeded', 'dead', 'cancelled', 'failed', 'rejected') BEGIN
    INSERT INTO run_totals VALUES (NEW.tenant_id, NEW.created_at - NEW.created_at % 3600000000, NEW.state, 1)
    ON CONFLICT (tenant_id, hour, state) DO UPDATE SET runs = runs + 1;
END;
CREATE TRIGGER run_totals_leave AFTER UPDATE OF state ON jobs
    WHEN OLD.state <> NEW.state AND OLD.state IN ('succeeded', 'dead', 'cancelled', 'failed', 'rejected') BEGIN
    UPDATE run_totals SET runs = runs - 1
    WHERE tenant_id = OLD.tenant_id AND hour = OLD.created_at - OLD.created_at % 3600000000 AND state = OLD.state;
END;
CREATE TRIGGER run_totals_enter AFTER UPDATE OF state ON jobs
    WHEN OLD.state <> NEW.state AND NEW.state IN ('succeeded', 'dead', 'cancelled', 'failed', 'rejected') BEGIN
    INSERT INTO run_totals VALUES (NEW.tenant_id, NEW.created_at - NEW.created_at % 3600000000, NEW.state, 1)
    ON CONFLICT (tenant_id, hour, state) DO UPDATE SET runs = runs + 1;
END;

-- Runs still under way, counted since a time without reading the tenant's finished history (the
-- dashboard's overview counts finished runs from `run_totals`, these from this index). The state
-- is in the index so the count reads no row, and so the planner prefers it to `jobs_created`.
-- (PostgreSQL has none: the queue's own partial indexes answer it there, and one more index on
-- the queue's hottest rows cost its queue about a third of its throughput; see BENCHMARKS.md.)
CREATE INDEX jobs_active ON jobs (tenant_id, created_at, state)
    WHERE state IN ('scheduled', 'available', 'running', 'awaiting_approval');
