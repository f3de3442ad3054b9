-- 0002_walk_degraded: remember, with the walk's cursor, that a walk went on
-- past a page boundary it could not verify (upstream kept changing under
-- it).  Such a full walk must not mark runs deleted upstream: it may have
-- missed them.  Kept in memory only before, a kill and resume forgot it.
ALTER TABLE sync_state ADD COLUMN walk_degraded INTEGER NOT NULL DEFAULT 0;
