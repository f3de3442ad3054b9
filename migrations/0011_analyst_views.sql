-- SPDX-License-Identifier: ISC
-- 0011_analyst_views: times BI tools read as times, one row per run with
-- every field, an honest finish time, one spelling of a trigger, and a
-- status history that measures time in a state (README "The mirror",
-- "BI access"; agentsyncd-schema(7)).
--
-- Declared types.  Metabase's SQLite driver types a column by its
-- declared type (TIMESTAMP -> DateTime, INT -> Integer, REAL -> Float),
-- read from PRAGMA table_info when it syncs a table or view and from
-- sqlite3_column_decltype() for a native query's result; Grafana's
-- frser-sqlite-datasource reads sqlite3_column_decltype().  SQLite 3.40
-- gives a view column a declared type only when it is a column of a
-- table, directly or as the one column of a scalar subquery or of a
-- compound's arm (measured: a CASE, CAST, coalesce() or an aggregate
-- has none; CAST(t AS TIMESTAMP) also turns '2025-06-01T...' into 2025).
-- PRAGMA table_info takes a compound view's first arm, column_decltype()
-- its last.  Hence:
-- - the time columns of the tables analysts read (runs, pull_requests,
--   run_status_changes, sync_runs) are declared TIMESTAMP: the tables
--   are rebuilt (https://sqlite.org/lang_altertable.html, "making other
--   kinds of table schema changes"), every column, name, order, row and
--   id kept.  TIMESTAMP has NUMERIC affinity, which leaves the ISO 8601
--   text the daemon writes as text;
-- - a computed column of a view is (SELECT expr UNION ALL SELECT c FROM
--   view_types WHERE 0): the value of expr, the declared type of c;
-- - an aggregate view is a compound whose first and last arms are
--   view_types WHERE 0 (no row): the filters of a query still reach
--   runs' indexes through it.
-- Migrations run with foreign keys off and are checked with
-- foreign_key_check before they commit (store.c): dropping a table
-- cascades to nothing.

DROP VIEW agent_runs;
DROP VIEW live_runs;
DROP VIEW runs_daily;
DROP VIEW pull_requests_with_runs;
DROP VIEW agent_outcomes;
DROP VIEW source_status;

-- No row, ever: only its columns' declared types are read.
CREATE TABLE view_types (
	ts			TIMESTAMP,
	int			INTEGER,
	real			REAL,
	text			TEXT,
	CHECK (0)
);

CREATE TABLE runs_new (
	id			INTEGER PRIMARY KEY,
	source			TEXT NOT NULL,
	kind			TEXT NOT NULL,	-- the adapter's name (source.h)
	external_id		TEXT NOT NULL,
	status			TEXT,
	state			TEXT NOT NULL CHECK (state IN ('pending', 'running',
				    'waiting', 'succeeded', 'failed', 'cancelled',
				    'unknown')),
	title			TEXT,
	web_url			TEXT,
	created_at		TIMESTAMP,
	updated_at		TIMESTAMP,
	raw_json		TEXT NOT NULL,
	first_seen_at		TIMESTAMP NOT NULL,
	last_seen_at		TIMESTAMP NOT NULL,
	changed_at		TIMESTAMP NOT NULL,
	deleted_upstream_at	TIMESTAMP,
	-- codegen
	organization_id		INTEGER,
	result			TEXT,
	summary			TEXT,
	source_type		TEXT,
	metadata		TEXT,
	-- cotool
	agent_id		TEXT,
	agent_name		TEXT,
	agent_type		TEXT,
	model_alias		TEXT,
	model_name		TEXT,
	total_tool_count	INTEGER,
	trigger_source		TEXT,
	trigger_name		TEXT,
	has_error		INTEGER,
	is_streaming		INTEGER,
	eval_score		REAL,
	eval_explanation	TEXT,
	critical_issue_category	TEXT,
	critical_issue_explanation TEXT,
	linked_alert_display_id	TEXT,
	linked_alert_title	TEXT,
	linked_alert_status	TEXT,
	-- 0008
	pull_request_count	INTEGER,
	tool_names_count	INTEGER,
	acceptance_criteria_count INTEGER,
	eval_bullet_count	INTEGER,
	has_critical_issue	INTEGER,
	has_linked_alert	INTEGER,
	finished_seen_at	TIMESTAMP,
	-- 0010
	last_seen_walk		INTEGER NOT NULL DEFAULT 0,
	UNIQUE (source, external_id)
);
INSERT INTO runs_new SELECT * FROM runs;
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;
CREATE INDEX runs_source_created ON runs (source, created_at,
    deleted_upstream_at);
CREATE INDEX runs_state ON runs (state, created_at);
CREATE INDEX runs_created ON runs (created_at);
CREATE INDEX runs_day ON runs (substr(created_at, 1, 10), created_at);

CREATE TABLE pull_requests_new (
	id			INTEGER PRIMARY KEY,
	source			TEXT NOT NULL,
	external_id		TEXT NOT NULL,
	title			TEXT,
	url			TEXT,
	head_branch_name	TEXT,
	created_at		TIMESTAMP,
	first_seen_at		TIMESTAMP NOT NULL,
	changed_at		TIMESTAMP NOT NULL,
	repository		TEXT,
	number			INTEGER,
	UNIQUE (source, external_id)
);
INSERT INTO pull_requests_new SELECT * FROM pull_requests;
DROP TABLE pull_requests;
ALTER TABLE pull_requests_new RENAME TO pull_requests;
CREATE INDEX pull_requests_repository ON pull_requests (repository, number);

CREATE TABLE sync_runs_new (
	id			INTEGER PRIMARY KEY,
	source			TEXT NOT NULL,
	mode			TEXT NOT NULL CHECK (mode IN ('backfill',
				    'incremental', 'full')),
	started_at		TIMESTAMP NOT NULL,
	finished_at		TIMESTAMP,
	requests		INTEGER NOT NULL DEFAULT 0,
	pages			INTEGER NOT NULL DEFAULT 0,
	runs_seen		INTEGER NOT NULL DEFAULT 0,
	runs_new		INTEGER NOT NULL DEFAULT 0,
	runs_changed		INTEGER NOT NULL DEFAULT 0,
	runs_rejected		INTEGER NOT NULL DEFAULT 0,
	runs_deleted		INTEGER NOT NULL DEFAULT 0,
	http_429		INTEGER NOT NULL DEFAULT 0,
	retries			INTEGER NOT NULL DEFAULT 0,
	outcome			TEXT NOT NULL DEFAULT 'running' CHECK (outcome IN
				    ('running', 'succeeded', 'failed',
				    'interrupted')),
	error			TEXT,
	passes			INTEGER NOT NULL DEFAULT 1,
	upstream_total		INTEGER,
	runs_partial		INTEGER NOT NULL DEFAULT 0
);
INSERT INTO sync_runs_new SELECT * FROM sync_runs;
DROP TABLE sync_runs;
ALTER TABLE sync_runs_new RENAME TO sync_runs;
CREATE INDEX sync_runs_source ON sync_runs (source, started_at);
CREATE INDEX sync_runs_finished ON sync_runs (finished_at);

-- The status history says whose it is (source, external_id: no join to
-- runs for a question about one run), upstream's time of the change
-- (Cotool updatedAt as served with the new status; NULL for Codegen,
-- which sends none), and starts with the first sighting (old_status and
-- old_state NULL), so that the time a run spent in each state, its first
-- included, is the gap to its next row.
CREATE TABLE run_status_changes_new (
	id			INTEGER PRIMARY KEY,
	run_id			INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	observed_at		TIMESTAMP NOT NULL,
	old_status		TEXT,
	new_status		TEXT,
	old_state		TEXT,
	new_state		TEXT,
	source			TEXT NOT NULL,
	external_id		TEXT NOT NULL,
	updated_at		TIMESTAMP
);
INSERT INTO run_status_changes_new (id, run_id, observed_at, old_status,
	new_status, old_state, new_state, source, external_id, updated_at)
	SELECT c.id, c.run_id, c.observed_at, c.old_status, c.new_status,
	    c.old_state, c.new_state, r.source, r.external_id, NULL
	FROM run_status_changes c JOIN runs r ON r.id = c.run_id;
DROP TABLE run_status_changes;
ALTER TABLE run_status_changes_new RENAME TO run_status_changes;
-- No index on (source, external_id): each new run's first sighting would
-- write it at a random place (Cotool ids are uuids), and it cost a
-- backfill of 20,000 + 20,000 runs 1.2 s of 3.9 s (1.3 s of CPU without
-- it, 1.9 s with).  A question about one run reads the history in order
-- of run_id through run_status_changes_run.
CREATE INDEX run_status_changes_run ON run_status_changes (run_id, observed_at);
-- Each run's first sighting, at first_seen_at: the status it had then is
-- the old side of its first change, or its status now when it never
-- changed; upstream's time only when the run was never rewritten since.
INSERT INTO run_status_changes (run_id, observed_at, old_status, new_status,
	old_state, new_state, source, external_id, updated_at)
	SELECT r.id, r.first_seen_at, NULL,
	    CASE WHEN f.id IS NULL THEN r.status ELSE f.old_status END, NULL,
	    CASE WHEN f.id IS NULL THEN r.state ELSE f.old_state END,
	    r.source, r.external_id,
	    CASE WHEN f.id IS NULL AND r.changed_at = r.first_seen_at
		THEN r.updated_at END
	FROM runs r LEFT JOIN run_status_changes f ON f.id =
	    (SELECT c.id FROM run_status_changes c WHERE c.run_id = r.id
		ORDER BY c.observed_at, c.id LIMIT 1);

-- Every column of runs but raw_json (in live_runs_json), for the runs of
-- configured sources not gone upstream.
CREATE VIEW live_runs AS
	SELECT id, source, kind, external_id, status, state, title, web_url,
	    created_at, updated_at, first_seen_at, last_seen_at, changed_at,
	    deleted_upstream_at, organization_id, result, summary,
	    source_type, metadata, agent_id, agent_name, agent_type,
	    model_alias, model_name, total_tool_count, trigger_source,
	    trigger_name, has_error, is_streaming, eval_score,
	    eval_explanation, critical_issue_category,
	    critical_issue_explanation, linked_alert_display_id,
	    linked_alert_title, linked_alert_status, pull_request_count,
	    tool_names_count, acceptance_criteria_count, eval_bullet_count,
	    has_critical_issue, has_linked_alert, finished_seen_at,
	    last_seen_walk
	FROM runs
	WHERE deleted_upstream_at IS NULL AND
	    source NOT IN (SELECT name FROM sources WHERE configured = 0);

CREATE VIEW live_runs_json AS
	SELECT id AS run_id, source, kind, external_id, raw_json
	FROM runs
	WHERE deleted_upstream_at IS NULL AND
	    source NOT IN (SELECT name FROM sources WHERE configured = 0);

-- One row per live run of either API, every field, NULL where the run's
-- API has no such field (README "agent_runs, column by column").
-- finished_at: upstream's time where there is one (Cotool updatedAt of a
-- finished run); else the time the mirror saw the run finish, only when
-- it saw it unfinished before (finished_seen_at > first_seen_at); else
-- NULL.  trigger: lower case for both APIs (runs keeps the raw value).
-- state_checked_at: the last time the mirror is sure it had upstream's
-- state: Cotool, the source's last successful pass (its walk by
-- updatedAt meets every change); Codegen, the later of last_seen_at and
-- the source's last complete full resync.
CREATE VIEW agent_runs AS
	SELECT id AS run_id, source, kind, external_id,
	    agent_name AS agent,
	    (SELECT lower(coalesce(source_type, trigger_source))
		UNION ALL SELECT text FROM view_types WHERE 0) AS trigger,
	    model_alias AS model, model_name, state, status, title,
	    created_at, updated_at, finished_seen_at, web_url,
	    pull_request_count, eval_score, has_error, has_critical_issue,
	    first_seen_at, last_seen_at,
	    (SELECT count(*) FROM run_field_problems f
		WHERE f.run_id = runs.id
		UNION ALL SELECT int FROM view_types WHERE 0)
		AS field_problems,
	    (SELECT CASE WHEN state IN ('succeeded', 'failed', 'cancelled')
		THEN CASE WHEN kind = 'cotool' THEN updated_at
		    WHEN finished_seen_at > first_seen_at
		    THEN finished_seen_at END END
		UNION ALL SELECT ts FROM view_types WHERE 0) AS finished_at,
	    (SELECT CASE WHEN state NOT IN ('succeeded', 'failed',
		    'cancelled') THEN NULL
		WHEN kind = 'cotool' THEN
		    CASE WHEN updated_at IS NOT NULL THEN 1 END
		WHEN finished_seen_at > first_seen_at THEN 0 END
		UNION ALL SELECT int FROM view_types WHERE 0)
		AS finished_at_exact,
	    (SELECT round((julianday(CASE WHEN state IN ('succeeded',
		    'failed', 'cancelled') THEN CASE WHEN kind = 'cotool'
		    THEN updated_at WHEN finished_seen_at > first_seen_at
		    THEN finished_seen_at END END) -
		julianday(created_at)) * 86400, 3)
		UNION ALL SELECT real FROM view_types WHERE 0)
		AS duration_seconds,
	    agent_id, agent_type,
	    trigger_name, total_tool_count AS tool_call_count,
	    tool_names_count, acceptance_criteria_count, eval_bullet_count,
	    is_streaming, eval_explanation, critical_issue_category,
	    critical_issue_explanation, has_linked_alert,
	    linked_alert_display_id, linked_alert_title, linked_alert_status,
	    organization_id, result, summary, changed_at,
	    (SELECT max(last_seen_at, coalesce(CASE WHEN kind = 'cotool'
		    THEN s.last_success_at ELSE s.last_full_resync_at END,
		    last_seen_at))
		FROM (SELECT 1) LEFT JOIN sync_state s
		    ON s.source = runs.source
		UNION ALL SELECT ts FROM view_types WHERE 0)
		AS state_checked_at,
	    (SELECT unixepoch(created_at)
		UNION ALL SELECT int FROM view_types WHERE 0)
		AS created_epoch,
	    (SELECT unixepoch(CASE WHEN state IN ('succeeded', 'failed',
		    'cancelled') THEN CASE WHEN kind = 'cotool'
		    THEN updated_at WHEN finished_seen_at > first_seen_at
		    THEN finished_seen_at END END)
		UNION ALL SELECT int FROM view_types WHERE 0)
		AS finished_epoch
	FROM runs
	WHERE deleted_upstream_at IS NULL AND
	    source NOT IN (SELECT name FROM sources WHERE configured = 0);

-- day: 'YYYY-MM-DD' as before; day_start the same instant as RFC 3339
-- text (Grafana's time columns) and day_epoch as Unix seconds.
CREATE VIEW runs_daily AS
	SELECT text AS day, ts AS day_start, int AS day_epoch,
	    text AS source, text AS kind, text AS state, int AS runs
	FROM view_types WHERE 0
	UNION ALL
	SELECT substr(created_at, 1, 10) AS day,
	    substr(created_at, 1, 10) || 'T00:00:00.000Z',
	    unixepoch(substr(created_at, 1, 10)), source, kind, state,
	    count(*)
	FROM runs
	WHERE deleted_upstream_at IS NULL AND
	    source NOT IN (SELECT name FROM sources WHERE configured = 0)
	GROUP BY day, source, kind, state
	UNION ALL
	SELECT text, ts, int, text, text, text, int FROM view_types WHERE 0;

-- pr_created_before_run: 1 when the pull request is older than the run
-- (the run is linked to it; it did not open it).
CREATE VIEW pull_requests_with_runs AS
	SELECT p.id AS pull_request_id, p.source, p.external_id AS pr_external_id,
	    p.title AS pr_title, p.url AS pr_url, p.repository, p.number,
	    p.head_branch_name, p.created_at AS pr_created_at, r.id AS run_id,
	    r.external_id AS run_external_id, rp.position AS position,
	    r.status AS run_status, r.state AS run_state,
	    r.web_url AS run_web_url, r.created_at AS run_created_at,
	    (SELECT p.created_at < r.created_at
		UNION ALL SELECT int FROM view_types WHERE 0)
		AS pr_created_before_run
	FROM pull_requests p
	JOIN run_pull_requests rp ON rp.pull_request_id = p.id
	JOIN runs r ON r.id = rp.run_id
	WHERE r.deleted_upstream_at IS NULL AND
	    p.source NOT IN (SELECT name FROM sources WHERE configured = 0);

-- trigger in lower case, as in agent_runs.  failure_rate: failed /
-- (succeeded + failed + cancelled): a cancelled run counts as finished,
-- not as failed.
CREATE VIEW agent_outcomes AS
	SELECT text AS source, text AS kind, text AS agent, text AS trigger,
	    int AS runs, int AS succeeded, int AS failed, int AS cancelled,
	    int AS unfinished, real AS failure_rate
	FROM view_types WHERE 0
	UNION ALL
	SELECT source, kind, agent_name AS agent,
	    lower(coalesce(source_type, trigger_source)) AS trigger,
	    count(*),
	    sum(state = 'succeeded'),
	    sum(state = 'failed'),
	    sum(state = 'cancelled'),
	    sum(state NOT IN ('succeeded', 'failed', 'cancelled')),
	    round(1.0 * sum(state = 'failed') /
	        nullif(sum(state IN ('succeeded', 'failed', 'cancelled')), 0),
	        4)
	FROM runs
	WHERE deleted_upstream_at IS NULL AND
	    source NOT IN (SELECT name FROM sources WHERE configured = 0)
	GROUP BY source, kind, agent, trigger
	UNION ALL
	SELECT text, text, text, text, int, int, int, int, int, real
	FROM view_types WHERE 0;

-- sync_state and sources keep their TEXT times (the daemon's cursor);
-- this view declares them.
CREATE VIEW source_status AS
	SELECT s.source, s.kind, s.backfill_done, s.high_water,
	    (SELECT s.last_success_at UNION ALL SELECT ts FROM view_types
		WHERE 0) AS last_success_at,
	    s.last_error,
	    (SELECT s.last_error_at UNION ALL SELECT ts FROM view_types
		WHERE 0) AS last_error_at,
	    (SELECT s.next_poll_at UNION ALL SELECT ts FROM view_types
		WHERE 0) AS next_poll_at,
	    (SELECT count(*) FROM runs r WHERE r.source = s.source
		UNION ALL SELECT int FROM view_types WHERE 0) AS runs,
	    (SELECT coalesce(src.configured, 1) UNION ALL SELECT int
		FROM view_types WHERE 0) AS configured,
	    (SELECT src.retired_at UNION ALL SELECT ts FROM view_types
		WHERE 0) AS retired_at,
	    (SELECT count(*) FROM runs r WHERE r.source = s.source AND
		r.deleted_upstream_at IS NULL
		UNION ALL SELECT int FROM view_types WHERE 0) AS live_runs,
	    (SELECT h.upstream_total FROM sync_runs h
		WHERE h.source = s.source AND h.upstream_total IS NOT NULL
		ORDER BY h.started_at DESC, h.id DESC LIMIT 1)
		AS upstream_total,
	    (SELECT (SELECT coalesce(h.finished_at, h.started_at)
		    FROM sync_runs h
		    WHERE h.source = s.source AND h.upstream_total IS NOT NULL
		    ORDER BY h.started_at DESC, h.id DESC LIMIT 1)
		UNION ALL SELECT ts FROM view_types WHERE 0)
		AS upstream_total_at
	FROM sync_state s LEFT JOIN sources src ON src.name = s.source;

-- The time each run spent in each state: one row per row of
-- run_status_changes of a live run, from it to the run's next (left_at
-- and seconds NULL: the state it is in now).  A state entered before the
-- mirror first saw the run starts at the first sighting.
CREATE VIEW run_state_spans AS
	SELECT int AS run_id, text AS source, text AS external_id,
	    text AS state, text AS status, ts AS entered_at, ts AS left_at,
	    real AS seconds, int AS first_sighting
	FROM view_types WHERE 0
	UNION ALL
	SELECT c.run_id, c.source, c.external_id, c.new_state, c.new_status,
	    c.observed_at,
	    lead(c.observed_at) OVER w,
	    round((julianday(lead(c.observed_at) OVER w) -
		julianday(c.observed_at)) * 86400, 3),
	    c.old_state IS NULL AND c.old_status IS NULL AND
		c.observed_at = r.first_seen_at
	FROM run_status_changes c JOIN runs r ON r.id = c.run_id
	WHERE r.deleted_upstream_at IS NULL AND
	    r.source NOT IN (SELECT name FROM sources WHERE configured = 0)
	WINDOW w AS (PARTITION BY c.run_id ORDER BY c.observed_at, c.id)
	UNION ALL
	SELECT int, text, text, text, text, ts, ts, real, int
	FROM view_types WHERE 0;
