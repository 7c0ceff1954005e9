-- Outbound webhooks (approved output today; escalations later). A delivery is written in the
-- same transaction as the event it announces, so a crash loses none. A sender claims due ones,
-- signs them (Standard Webhooks, with the tenant secret named by `secret`) and retries with
-- backoff until the receiver answers 2xx or the attempts run out. Its id is the webhook-id a
-- receiver deduplicates by, the same on every attempt.
CREATE TABLE outbound_webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    event_type   TEXT NOT NULL,
    run_id       BIGINT,
    url          TEXT NOT NULL,
    secret       TEXT NOT NULL,
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    next_at      BIGINT NOT NULL,
    last_status  BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX outbound_webhooks_due ON outbound_webhooks (next_at) WHERE state = 'pending';
CREATE INDEX outbound_webhooks_by_run ON outbound_webhooks (tenant_id, run_id);
