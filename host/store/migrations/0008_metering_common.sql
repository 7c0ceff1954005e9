-- Cost metering: plans, budgets, price books, the ledger, budget counters, reservations and alerts.
-- Money is integer micro-dollars (1 USD = 1,000,000); tokens and fuel are integers.

-- The tenant's plan (starter, growth, scale) and its optional budgets: per calendar month (UTC)
-- and per root run. NULL: no budget.
ALTER TABLE tenants ADD COLUMN plan TEXT NOT NULL DEFAULT 'starter';
ALTER TABLE tenants ADD COLUMN budget_monthly BIGINT;
ALTER TABLE tenants ADD COLUMN budget_per_run BIGINT;
-- (An agent's fallback models and own monthly budget live in `agents.grants`.)

-- Every price book ever in force; the newest prices new calls. The book itself is the operator's
-- YAML, kept verbatim; the fuel price is copied out so the store can price a run's fuel when it
-- records the run, in the same transaction.
CREATE TABLE price_books (
    version           BIGINT PRIMARY KEY,
    body              TEXT NOT NULL,
    fuel_per_billion  BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    created_by        TEXT NOT NULL
);

-- Spend and in-flight reservations per budget scope and period: scope `tenant`, `agent:<name>` or
-- `run:<root run>`; period `YYYY-MM` (UTC) for monthly scopes, `all` for runs. A call's worst case
-- is added to `reserved` before it is made and moved to `spent` at its real cost after it.
CREATE TABLE budget_counters (
    tenant_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    period     TEXT NOT NULL,
    spent      BIGINT NOT NULL DEFAULT 0,
    reserved   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, scope, period)
);

-- Calls in flight. A reservation is settled or released by the call that made it; one left by a
-- crashed node is released when it expires.
CREATE TABLE reservations (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX reservations_by_expiry ON reservations (expires_at);

-- A budget crossing 50, 80 or 100% in a period, recorded once (the monitor delivers them).
CREATE TABLE budget_alerts (
    tenant_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    period     TEXT NOT NULL,
    threshold  BIGINT NOT NULL,
    spent      BIGINT NOT NULL,
    budget     BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, scope, period, threshold)
);
