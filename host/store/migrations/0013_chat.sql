-- Chat with an agent: a thread belongs to one agent and one user (the key that opened it); its
-- messages are numbered in order.
CREATE TABLE chat_threads (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id         BIGINT NOT NULL,
    agent      TEXT NOT NULL,
    owner      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE chat_messages (
    tenant_id TEXT NOT NULL,
    thread_id BIGINT NOT NULL,
    seq       BIGINT NOT NULL,
    role      TEXT NOT NULL,
    content   TEXT NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, thread_id, seq),
    FOREIGN KEY (tenant_id, thread_id) REFERENCES chat_threads (tenant_id, id) ON DELETE CASCADE
);
