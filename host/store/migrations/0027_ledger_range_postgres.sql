-- The ledger's rows of a month are found by a BRIN range index over `at` (rows are appended in
-- time order, so each range of pages covers a short stretch of time) instead of the B-tree on
-- (tenant_id, month). Every run writes a fuel row, on the path that records results: each B-tree
-- entry cost the insert about 1.2 µs (EXPLAIN ANALYZE, 250 rows a statement), a BRIN range
-- nothing until it is summarised. `ledger_of_month` bounds `at` by the month as well as naming
-- it. Ranges are summarised as autovacuum gets to them; a range not yet summarised is read
-- whole, so a month's read stays correct either way.
DROP INDEX ledger_by_month;
CREATE INDEX ledger_at ON ledger USING brin (at) WITH (autosummarize = on);
