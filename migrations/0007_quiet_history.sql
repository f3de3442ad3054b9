-- 0007_quiet_history: idle polls fold into one row, and the pass history
-- has a retention.
--
-- passes: how many passes a sync_runs row stands for.  An incremental pass
-- that succeeded and found nothing (no run new, changed, gone or rejected)
-- is folded into the row before it when that row is such a pass too:
-- passes + 1, finished_at moved on, its requests, pages, runs_seen, 429s
-- and retries added.  A day of idle polls at the default interval is one
-- row, not 1,440; every pass that changed something keeps its own row.
ALTER TABLE sync_runs ADD COLUMN passes INTEGER NOT NULL DEFAULT 1;
-- history_retention prunes by finished_at.
CREATE INDEX sync_runs_finished ON sync_runs (finished_at);
-- When the source last committed a page (a long walk makes progress
-- between successes): --status and metrics judge staleness by it.
ALTER TABLE sync_state ADD COLUMN last_progress_at TEXT;
