-- What the monitor needs to heal more by itself, and to reach the people it cannot.
--
-- jobs.plugin_hash: the version (SHA-256 of the component) of the plugin a failed attempt ran,
-- so that a version that traps run after run is told apart from the one before it.
ALTER TABLE jobs ADD COLUMN plugin_hash TEXT;
-- jobs.shed_from: when a job held back by load shedding was due. A shed job waits `scheduled`;
-- when shedding ends it is due again at this time, so it keeps its place (its rank key is not
-- touched).
ALTER TABLE jobs ADD COLUMN shed_from BIGINT;
CREATE INDEX jobs_shed ON jobs (shed_from) WHERE shed_from IS NOT NULL;

-- Plugin versions the monitor quarantined: runs of them fail at once (kept in the dead-letter
-- state, to be retried) instead of trapping again. A new version is not affected; an operator
-- lifts a quarantine.
CREATE TABLE plugin_quarantine (
    plugin  TEXT NOT NULL,
    hash    TEXT NOT NULL,
    reason  TEXT NOT NULL,
    since   BIGINT NOT NULL,
    PRIMARY KEY (plugin, hash)
);

-- The tenant's own contact for incidents that concern it (JSON: { email, webhook: { url, secret } }).
ALTER TABLE tenants ADD COLUMN contact TEXT;
