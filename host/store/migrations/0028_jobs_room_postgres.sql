-- More room on each page of `jobs` for the new versions of its rows (migration 25 left half): a
-- recording's update of a run (its output, logs, node, times) is a HOT update only if the new
-- version fits on the row's own page, and with half a page free one in five did not (the queue
-- benchmark, `pg_stat_user_tables`: 54,192 of 66,750 updates HOT), so those wrote an entry into
-- every index of `jobs`. Pages written from now on are filled to 40%.
ALTER TABLE jobs SET (fillfactor = 40);
