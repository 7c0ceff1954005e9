-- Each budget counter keeps the limit it was last reserved against (NULL: counted, not limited),
-- so one statement can check and hold every budget of a call, and the settling statement can
-- record the alert thresholds its spend crossed without another read.
ALTER TABLE budget_counters ADD COLUMN budget BIGINT;
