-- 0008_fidelity: a run is never dropped over one field, null and empty stay
-- apart, upstream's totals are kept, and the views say what they hold.
--
-- A field of the wrong type (an id sent as "77", a count of 2.5, a list
-- where an object belongs) no longer sends its whole run to
-- rejected_records: the run is stored, the field's column is NULL, and
-- run_field_problems says which field and what was wrong.  Only a run
-- without a usable id is rejected whole.

CREATE TABLE run_field_problems (
	run_id			INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	position		INTEGER NOT NULL,	-- 0.. in the order found
	field			TEXT NOT NULL,	-- 'totalToolCount',
						-- 'github_pull_requests[2].id'
	problem			TEXT NOT NULL,	-- 'is not an integer (below 2^53)'
	value			TEXT,		-- the value, compact JSON as
						-- cJSON prints it (at most 200
						-- bytes, then '...')
	PRIMARY KEY (run_id, position)
) WITHOUT ROWID;
CREATE INDEX run_field_problems_field ON run_field_problems (field);

-- NULL: upstream sent null, left the field out, or sent something unusable
-- (then run_field_problems says so).  A number: the child rows written
-- (0 for []).  "Not evaluated" and "evaluated, nothing found" stay apart.
ALTER TABLE runs ADD COLUMN pull_request_count INTEGER;	-- codegen
ALTER TABLE runs ADD COLUMN tool_names_count INTEGER;	-- cotool
ALTER TABLE runs ADD COLUMN acceptance_criteria_count INTEGER;
ALTER TABLE runs ADD COLUMN eval_bullet_count INTEGER;
-- 1: an object was sent (even {}); 0: null or left out; NULL: unusable.
ALTER TABLE runs ADD COLUMN has_critical_issue INTEGER;
ALTER TABLE runs ADD COLUMN has_linked_alert INTEGER;
-- The first time the mirror saw the run in a terminal state (succeeded,
-- failed, cancelled).  Equal to first_seen_at when the run was already
-- finished when first seen.
ALTER TABLE runs ADD COLUMN finished_seen_at TEXT;

-- From the mirror's own rows: raw_json is the whole truth of a run.
UPDATE runs SET
	pull_request_count = CASE
	    WHEN json_type(raw_json, '$.github_pull_requests') = 'array'
	    THEN (SELECT count(*) FROM run_pull_requests rp
		WHERE rp.run_id = runs.id) END
	WHERE kind = 'codegen' AND json_valid(raw_json);
UPDATE runs SET
	tool_names_count = CASE
	    WHEN json_type(raw_json, '$.toolNames') = 'array'
	    THEN (SELECT count(*) FROM run_tools t WHERE t.run_id = runs.id) END,
	acceptance_criteria_count = CASE
	    WHEN json_type(raw_json, '$.acceptanceCriteriaResults') = 'array'
	    THEN (SELECT count(*) FROM run_acceptance_criteria c
		WHERE c.run_id = runs.id) END,
	eval_bullet_count = CASE
	    WHEN json_type(raw_json, '$.evalBulletSummary') = 'array'
	    THEN (SELECT count(*) FROM run_eval_bullets b
		WHERE b.run_id = runs.id) END,
	has_critical_issue = CASE
	    coalesce(json_type(raw_json, '$.criticalIssue'), 'null')
	    WHEN 'object' THEN 1 WHEN 'null' THEN 0 END,
	has_linked_alert = CASE
	    coalesce(json_type(raw_json, '$.linkedAlert'), 'null')
	    WHEN 'object' THEN 1 WHEN 'null' THEN 0 END
	WHERE kind = 'cotool' AND json_valid(raw_json);
-- First seen finished: first_seen_at; else the first observed change to a
-- terminal state (run_status_changes has every change since 0001).
UPDATE runs SET finished_seen_at = CASE
	WHEN coalesce((SELECT c.old_state FROM run_status_changes c
		WHERE c.run_id = runs.id ORDER BY c.observed_at, c.id LIMIT 1),
	    state) IN ('succeeded', 'failed', 'cancelled')
	THEN first_seen_at
	ELSE (SELECT min(c.observed_at) FROM run_status_changes c
		WHERE c.run_id = runs.id AND
		    c.new_state IN ('succeeded', 'failed', 'cancelled')) END;

-- Pull requests an analyst can group: 'owner/name' and the number, from
-- a github.com pull request URL (NULL for any other URL).
ALTER TABLE pull_requests ADD COLUMN repository TEXT;
ALTER TABLE pull_requests ADD COLUMN number INTEGER;
UPDATE pull_requests SET repository = github_pr_repository(url),
	number = github_pr_number(url)
	WHERE url IS NOT NULL;
CREATE INDEX pull_requests_repository ON pull_requests (repository, number);
-- A pull request listed twice in one run had a gap in its run's positions:
-- number each run's links again, 0, 1, 2, ... in their order (computed
-- from the table as it was, before any row changes).
UPDATE run_pull_requests SET position = n.p
	FROM (SELECT run_id, pull_request_id, row_number() OVER
		(PARTITION BY run_id ORDER BY position) - 1 AS p
	    FROM run_pull_requests) AS n
	WHERE n.run_id = run_pull_requests.run_id AND
	    n.pull_request_id = run_pull_requests.pull_request_id AND
	    n.p <> run_pull_requests.position;

-- Upstream's total on the pass's last page (NULL when none was seen), and
-- how many runs the pass stored with a field left out.
ALTER TABLE sync_runs ADD COLUMN upstream_total INTEGER;
ALTER TABLE sync_runs ADD COLUMN runs_partial INTEGER NOT NULL DEFAULT 0;

-- Runs with no created_at are counted too (day NULL): the days add up to
-- live_runs.
DROP VIEW runs_daily;
CREATE VIEW runs_daily AS
	SELECT substr(created_at, 1, 10) AS day, source, kind, state,
	    count(*) AS runs
	FROM runs
	WHERE deleted_upstream_at IS NULL AND
	    source NOT IN (SELECT name FROM sources WHERE configured = 0)
	GROUP BY day, source, kind, state;

-- Runs deleted upstream are left out, as in every other view; the
-- repository, number and position are there to group by.
DROP VIEW pull_requests_with_runs;
CREATE VIEW pull_requests_with_runs AS
	SELECT p.id AS pull_request_id, p.source, p.external_id AS pr_external_id,
	    p.title AS pr_title, p.url AS pr_url, p.repository, p.number,
	    p.head_branch_name, p.created_at AS pr_created_at, r.id AS run_id,
	    r.external_id AS run_external_id, rp.position AS position,
	    r.status AS run_status, r.state AS run_state,
	    r.web_url AS run_web_url, r.created_at AS run_created_at
	FROM pull_requests p
	JOIN run_pull_requests rp ON rp.pull_request_id = p.id
	JOIN runs r ON r.id = rp.run_id
	WHERE r.deleted_upstream_at IS NULL AND
	    p.source NOT IN (SELECT name FROM sources WHERE configured = 0);

-- agent is the agent (Cotool agentName; Codegen has none: NULL), trigger
-- what started the run (Codegen source_type, Cotool triggerSource).
DROP VIEW agent_outcomes;
CREATE VIEW agent_outcomes AS
	SELECT source, kind, agent_name AS agent,
	    coalesce(source_type, trigger_source) AS trigger,
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
	GROUP BY source, kind, agent, trigger;

-- One row per live run of either API, columns aligned (README "The
-- mirror" says which upstream field feeds each column).
CREATE VIEW agent_runs AS
	SELECT id AS run_id, source, kind, external_id,
	    agent_name AS agent,
	    coalesce(source_type, trigger_source) AS trigger,
	    model_alias AS model, model_name, state, status, title,
	    created_at, updated_at, finished_seen_at, web_url,
	    pull_request_count, eval_score, has_error, has_critical_issue,
	    first_seen_at, last_seen_at,
	    (SELECT count(*) FROM run_field_problems f
		WHERE f.run_id = runs.id) AS field_problems
	FROM runs
	WHERE deleted_upstream_at IS NULL AND
	    source NOT IN (SELECT name FROM sources WHERE configured = 0);

-- Completeness: live_runs against the total upstream last reported.
DROP VIEW source_status;
CREATE VIEW source_status AS
	SELECT s.source, s.kind, s.backfill_done, s.high_water,
	    s.last_success_at, s.last_error, s.last_error_at, s.next_poll_at,
	    (SELECT count(*) FROM runs r WHERE r.source = s.source) AS runs,
	    coalesce(src.configured, 1) AS configured, src.retired_at,
	    (SELECT count(*) FROM runs r WHERE r.source = s.source AND
		r.deleted_upstream_at IS NULL) AS live_runs,
	    (SELECT h.upstream_total FROM sync_runs h
		WHERE h.source = s.source AND h.upstream_total IS NOT NULL
		ORDER BY h.started_at DESC, h.id DESC LIMIT 1)
		AS upstream_total,
	    (SELECT coalesce(h.finished_at, h.started_at) FROM sync_runs h
		WHERE h.source = s.source AND h.upstream_total IS NOT NULL
		ORDER BY h.started_at DESC, h.id DESC LIMIT 1)
		AS upstream_total_at
	FROM sync_state s LEFT JOIN sources src ON src.name = s.source;
