-- 0001_initial: the mirror's first schema.
-- Applied once, in one transaction, then never edited: later changes are
-- new numbered files.  Timestamps are UTC text 'YYYY-MM-DDTHH:MM:SS.sssZ'.

-- One row per upstream run.  Columns after raw_json hold the fields of one
-- API and are NULL for the other kind.
CREATE TABLE runs (
	id			INTEGER PRIMARY KEY,
	source			TEXT NOT NULL,
	kind			TEXT NOT NULL CHECK (kind IN ('codegen', 'cotool')),
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
CREATE INDEX runs_source_created ON runs (source, created_at);
CREATE INDEX runs_source_updated ON runs (source, updated_at);
CREATE INDEX runs_state ON runs (state, created_at);
CREATE INDEX runs_created ON runs (created_at);

CREATE TABLE pull_requests (
	id			INTEGER PRIMARY KEY,
	source			TEXT NOT NULL,
	external_id		TEXT NOT NULL,
	title			TEXT,
	url			TEXT,
	head_branch_name	TEXT,
	created_at		TEXT,
	first_seen_at		TEXT NOT NULL,
	changed_at		TEXT NOT NULL,
	UNIQUE (source, external_id)
);

CREATE TABLE run_pull_requests (
	run_id			INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	pull_request_id		INTEGER NOT NULL REFERENCES pull_requests (id) ON DELETE CASCADE,
	position		INTEGER NOT NULL,
	PRIMARY KEY (run_id, pull_request_id)
) WITHOUT ROWID;
CREATE INDEX run_pull_requests_pr ON run_pull_requests (pull_request_id);

-- Cotool detail, in upstream order.
CREATE TABLE run_tools (
	run_id			INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	position		INTEGER NOT NULL,
	name			TEXT,
	PRIMARY KEY (run_id, position)
) WITHOUT ROWID;
CREATE INDEX run_tools_name ON run_tools (name);

CREATE TABLE run_acceptance_criteria (
	run_id			INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	position		INTEGER NOT NULL,
	criterion		TEXT,
	met			INTEGER,
	explanation		TEXT,
	PRIMARY KEY (run_id, position)
) WITHOUT ROWID;

CREATE TABLE run_eval_bullets (
	run_id			INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	position		INTEGER NOT NULL,
	bullet			TEXT,
	PRIMARY KEY (run_id, position)
) WITHOUT ROWID;

-- Every status transition the daemon observes (not the first sighting).
CREATE TABLE run_status_changes (
	id			INTEGER PRIMARY KEY,
	run_id			INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	observed_at		TEXT NOT NULL,
	old_status		TEXT,
	new_status		TEXT,
	old_state		TEXT,
	new_state		TEXT
);
CREATE INDEX run_status_changes_run ON run_status_changes (run_id, observed_at);

-- One row per sync pass per source.
CREATE TABLE sync_runs (
	id			INTEGER PRIMARY KEY,
	source			TEXT NOT NULL,
	mode			TEXT NOT NULL CHECK (mode IN ('backfill',
				    'incremental', 'full')),
	started_at		TEXT NOT NULL,
	finished_at		TEXT,
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
	error			TEXT
);
CREATE INDEX sync_runs_source ON sync_runs (source, started_at);

-- Items of good pages that could not be normalized, kept with the reason.
CREATE TABLE rejected_records (
	id			INTEGER PRIMARY KEY,
	source			TEXT NOT NULL,
	kind			TEXT NOT NULL,
	external_id		TEXT,
	reason			TEXT NOT NULL,
	raw_json		TEXT NOT NULL,
	first_seen_at		TEXT NOT NULL,
	UNIQUE (source, reason, raw_json)
);

-- The walk state of each source: where a walk is, and what it has done.
CREATE TABLE sync_state (
	source			TEXT PRIMARY KEY,
	kind			TEXT NOT NULL,
	identity		TEXT NOT NULL,
	high_water		TEXT,
	backfill_done		INTEGER NOT NULL DEFAULT 0,
	walk_mode		TEXT,
	walk_offset		INTEGER,
	walk_anchor_id		TEXT,
	walk_anchor_key		TEXT,
	walk_total		INTEGER,
	walk_high_water		TEXT,
	walk_started_at		TEXT,
	walk_pages		INTEGER,
	last_full_resync_at	TEXT,
	last_success_at		TEXT,
	last_error		TEXT,
	last_error_at		TEXT,
	next_poll_at		TEXT
);

-- Views for BI tools.
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
