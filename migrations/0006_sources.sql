-- 0006_sources: the database knows which sources are configured.
--
-- One row per source the daemon has ever been configured with.  At start
-- and on every reload the daemon marks the sources of its configuration
-- configured (configured_since: when it was last added) and the others
-- retired (configured = 0, retired_at).  A retired source's runs stay in
-- `runs` but the analysis views leave them out, so that a renamed source is
-- never counted twice.  `agentsyncd --rename-source OLD NEW` renames one in
-- place; `agentsyncd --forget-source NAME --yes` deletes one retired source
-- in bounded transactions, setting forgetting_since first (an interrupted
-- forget is finished by running it again).
CREATE TABLE sources (
	name			TEXT PRIMARY KEY,
	kind			TEXT NOT NULL,
	identity		TEXT NOT NULL,
	base_url		TEXT,
	org_id			INTEGER,
	configured		INTEGER NOT NULL DEFAULT 1
				    CHECK (configured IN (0, 1)),
	configured_since	TEXT,
	retired_at		TEXT,
	forgetting_since	TEXT
);

-- Every source that has synced so far: configured until the daemon's next
-- start says otherwise.
INSERT INTO sources (name, kind, identity, configured, configured_since)
	SELECT source, kind, identity, 1,
	    strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
	FROM sync_state;
-- Runs of a source without sync state (a hand-made database): kept known.
INSERT INTO sources (name, kind, identity, configured, configured_since)
	SELECT DISTINCT source, kind, '', 1,
	    strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
	FROM runs WHERE source NOT IN (SELECT name FROM sources);

-- The analysis views leave out runs of retired sources.
DROP VIEW runs_daily;
CREATE VIEW runs_daily AS
	SELECT substr(created_at, 1, 10) AS day, source, kind, state,
	    count(*) AS runs
	FROM runs
	WHERE deleted_upstream_at IS NULL AND created_at IS NOT NULL AND
	    source NOT IN (SELECT name FROM sources WHERE configured = 0)
	GROUP BY day, source, kind, state;

DROP VIEW pull_requests_with_runs;
CREATE VIEW pull_requests_with_runs AS
	SELECT p.id AS pull_request_id, p.source, p.external_id AS pr_external_id,
	    p.title AS pr_title, p.url AS pr_url, p.head_branch_name,
	    p.created_at AS pr_created_at, r.id AS run_id,
	    r.external_id AS run_external_id, r.status AS run_status,
	    r.state AS run_state, r.web_url AS run_web_url,
	    r.created_at AS run_created_at
	FROM pull_requests p
	JOIN run_pull_requests rp ON rp.pull_request_id = p.id
	JOIN runs r ON r.id = rp.run_id
	WHERE p.source NOT IN (SELECT name FROM sources WHERE configured = 0);

DROP VIEW agent_outcomes;
CREATE VIEW agent_outcomes AS
	SELECT source, kind,
	    coalesce(agent_name, source_type, '(none)') AS agent,
	    count(*) AS runs,
	    sum(state = 'succeeded') AS succeeded,
	    sum(state = 'failed') AS failed,
	    sum(state = 'cancelled') AS cancelled,
	    sum(state NOT IN ('succeeded', 'failed', 'cancelled')) AS unfinished,
	    round(1.0 * sum(state = 'failed') /
	        nullif(sum(state IN ('succeeded', 'failed', 'cancelled')), 0),
	        4) AS failure_rate
	FROM runs
	WHERE deleted_upstream_at IS NULL AND
	    source NOT IN (SELECT name FROM sources WHERE configured = 0)
	GROUP BY source, kind, agent;

-- Every mirrored run of a configured source that upstream still lists: the
-- table to count from.
CREATE VIEW live_runs AS
	SELECT * FROM runs
	WHERE deleted_upstream_at IS NULL AND
	    source NOT IN (SELECT name FROM sources WHERE configured = 0);

DROP VIEW source_status;
CREATE VIEW source_status AS
	SELECT s.source, s.kind, s.backfill_done, s.high_water,
	    s.last_success_at, s.last_error, s.last_error_at, s.next_poll_at,
	    (SELECT count(*) FROM runs r WHERE r.source = s.source) AS runs,
	    coalesce(src.configured, 1) AS configured, src.retired_at
	FROM sync_state s LEFT JOIN sources src ON src.name = s.source;
