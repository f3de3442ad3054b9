-- 0003_runs_kind_any_adapter: runs.kind holds the name of the source's
-- adapter.  0001 listed the two first ones in a CHECK, so a third API
-- would have needed a schema change; the adapter table (adapters.c) is now
-- the one place that says which kinds exist.  SQLite cannot drop a CHECK in
-- place: the table is rebuilt (https://sqlite.org/lang_altertable.html,
-- "making other kinds of table schema changes"), its indexes and the views
-- that read it made again as they were.  Migrations run with foreign keys
-- off and are checked with foreign_key_check before they commit (store.c),
-- so dropping the old table cascades to nothing.
DROP VIEW runs_daily;
DROP VIEW pull_requests_with_runs;
DROP VIEW agent_outcomes;
DROP VIEW source_status;

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
	created_at		TEXT,
	updated_at		TEXT,
	raw_json		TEXT NOT NULL,
	first_seen_at		TEXT NOT NULL,
	last_seen_at		TEXT NOT NULL,
	changed_at		TEXT NOT NULL,
	deleted_upstream_at	TEXT,
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
	UNIQUE (source, external_id)
);
INSERT INTO runs_new SELECT * FROM runs;
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;
CREATE INDEX runs_source_created ON runs (source, created_at);
CREATE INDEX runs_source_updated ON runs (source, updated_at);
CREATE INDEX runs_state ON runs (state, created_at);
CREATE INDEX runs_created ON runs (created_at);

CREATE VIEW runs_daily AS
	SELECT substr(created_at, 1, 10) AS day, source, kind, state,
	    count(*) AS runs
	FROM runs
	WHERE deleted_upstream_at IS NULL AND created_at IS NOT NULL
	GROUP BY day, source, kind, state;

CREATE VIEW pull_requests_with_runs AS
	SELECT p.id AS pull_request_id, p.source, p.external_id AS pr_external_id,
	    p.title AS pr_title, p.url AS pr_url, p.head_branch_name,
	    p.created_at AS pr_created_at, r.id AS run_id,
	    r.external_id AS run_external_id, r.status AS run_status,
	    r.state AS run_state, r.web_url AS run_web_url,
	    r.created_at AS run_created_at
	FROM pull_requests p
	JOIN run_pull_requests rp ON rp.pull_request_id = p.id
	JOIN runs r ON r.id = rp.run_id;

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
	WHERE deleted_upstream_at IS NULL
	GROUP BY source, kind, agent;

CREATE VIEW source_status AS
	SELECT s.source, s.kind, s.backfill_done, s.high_water,
	    s.last_success_at, s.last_error, s.last_error_at, s.next_poll_at,
	    (SELECT count(*) FROM runs r WHERE r.source = s.source) AS runs
	FROM sync_state s;
