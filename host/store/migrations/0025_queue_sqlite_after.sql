-- Runs under way are counted from the queue's partial indexes now.
DROP INDEX jobs_active;
