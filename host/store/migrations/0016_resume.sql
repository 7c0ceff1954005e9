-- A running job that waits for its child runs (delegation) is "parked": it keeps its lease and its
-- state, but it does not count against the tenant's limit of running jobs, so the children it
-- waits for can be claimed even when the limit is 1. `queue_tenants.running` counts running jobs
-- that are not parked; every path that ends a running job lowers it only for an unparked one.
ALTER TABLE jobs ADD COLUMN parked BIGINT NOT NULL DEFAULT 0;

-- The replies of a run's AI calls, by the call's number in the run: a run that runs again (a
-- retry, or a resume after a person answered its approval request) gets the same answer to the
-- same request without paying for it twice. Written in the transaction that bills the call.
CREATE TABLE ai_replies (
    tenant_id     TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    request_hash  TEXT NOT NULL,
    reply         TEXT NOT NULL,
    at            BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, run_id, seq)
);

-- Approval requests a plugin made (the `approval` import), by their number in the run. The run
-- waits in `awaiting_approval` holding no worker; the decision is written here and the run runs
-- again, and this time the request is answered with it.
CREATE TABLE approval_asks (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    run_id      BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    asked_at    BIGINT NOT NULL,
    decision    TEXT,
    text        TEXT,
    decided_by  TEXT,
    decided_at  BIGINT,
    PRIMARY KEY (tenant_id, run_id, seq)
);
