-- 0009_run_indexes: each index on runs serves queries that are run.
--
-- Measured on a mirror of 1,000,000 runs per source with the plans SQLite
-- makes without ANALYZE, which the daemon never runs (scripts/
-- bench_queries.py; tests/integration/test_query_plans.py keeps the
-- plans; README, "Analyst queries at a million runs per source").
--
-- runs_source_updated (source, updated_at): no query of the daemon or of
-- the README filters or sorts on updated_at.  The planner took it as "an
-- index on source", for counts per source and for the order of GROUP BY
-- source, and as it holds nothing else those queries need, read every
-- run from the table for them.  Each run paid for it at each write.
DROP INDEX runs_source_updated;

-- runs_source_created gains deleted_upstream_at: the live runs of a
-- source (the metrics file after every pass, --status, source_status,
-- every view's filter) are counted from the index alone, where each run
-- was read from the table before.  (source, created_at) still serves the
-- re-check of unfinished runs and one source's window of a view.
DROP INDEX runs_source_created;
CREATE INDEX runs_source_created ON runs (source, created_at,
    deleted_upstream_at);

-- runs_daily's day is substr(created_at, 1, 10): a filter on it
-- (WHERE day >= date('now', '-14 days')) reaches runs as a filter on
-- that expression, which no index held, so it read every run.  created_at
-- is in the index too: a query that groups by that same expression with
-- a filter on created_at (the planner walks this index for the order)
-- checks the filter in the index and reads only the runs it keeps.
CREATE INDEX runs_day ON runs (substr(created_at, 1, 10), created_at);
