-- On PostgreSQL the ledger's running totals are now written by the two statements that write the
-- ledger, as part of them: `Store::settle` (an AI call's row and its delta) and the fuel rows of
-- a recording (`insert_fuel`, one delta per key). The statement-level trigger cost every AI call
-- about 0.1 ms (its transition table and PL/pgSQL) on the path whose added latency the gateway
-- keeps under 1 ms; the store test of the running totals checks both writers against the ledger.
-- SQLite keeps its row triggers (upserts, in process, cheap).
DROP TRIGGER ledger_totals_add ON ledger;
DROP FUNCTION ledger_totals_add();
