-- Runs under way are counted from the queue's partial indexes now.
DROP INDEX jobs_active;
-- The run totals are counted by the statements that finish runs (`count_finished`), not by
-- triggers: SQLite ran these for every row of every update of `jobs`, claims included, and they
-- cost more than the updates themselves.
DROP TRIGGER run_totals_insert;
DROP TRIGGER run_totals_leave;
DROP TRIGGER run_totals_enter;
