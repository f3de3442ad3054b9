/* SPDX-License-Identifier: ISC */
/*
 * floor.c: the honest limit of agentsyncd's design, for `make bench`.
 *
 *   floor DB KIND:FILE...
 *
 * Two timings over the same pages the daemon fetched: (1) cJSON alone
 * parsing every page, (2) SQLite alone inserting the same rows (runs with
 * every column and raw_json, pull requests, links, Cotool child rows) into
 * the same schema and indexes, with statements prepared once and one
 * transaction per page.  The rows are normalized before the clock starts.
 * Prints "parse_seconds=... insert_seconds=... pages=... runs=...".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "bench.h"
#include "log.h"
#include "source.h"
#include "store.h"

struct input {
	const struct source_type *type;
	char *body;
	size_t len;
	struct page page;
};

static void
text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL || *s == '\0')
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static void
step(sqlite3 *db, sqlite3_stmt *st)
{
	if (sqlite3_step(st) != SQLITE_DONE) {
		fprintf(stderr, "floor: %s\n", sqlite3_errmsg(db));
		exit(1);
	}
	sqlite3_reset(st);
}

int
main(int argc, char *argv[])
{
	static const char *sql[] = {
		"INSERT INTO runs (source, kind, external_id, status, state, "
		"title, web_url, created_at, updated_at, raw_json, "
		"first_seen_at, last_seen_at, changed_at, organization_id, "
		"result, summary, source_type, metadata, agent_id, agent_name, "
		"agent_type, model_alias, model_name, total_tool_count, "
		"trigger_source, trigger_name, has_error, is_streaming, "
		"eval_score, eval_explanation, critical_issue_category, "
		"critical_issue_explanation, linked_alert_display_id, "
		"linked_alert_title, linked_alert_status) VALUES (?1, ?2, ?3, "
		"?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?11, ?12, ?13, ?14, "
		"?15, "
		"?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, "
		"?28, ?29, ?30, ?31, ?32, ?33) "
		"ON CONFLICT (source, external_id) DO NOTHING",
		"INSERT INTO pull_requests (source, external_id, title, url, "
		"head_branch_name, created_at, first_seen_at, changed_at) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) "
		"ON CONFLICT (source, external_id) DO NOTHING",
		"INSERT OR IGNORE INTO run_pull_requests (run_id, "
		"pull_request_id, position) VALUES (?1, (SELECT id FROM "
		"pull_requests WHERE source = ?2 AND external_id = ?3), ?4)",
		"INSERT OR IGNORE INTO run_tools (run_id, position, name) "
		"VALUES (?1, ?2, ?3)",
		"INSERT OR IGNORE INTO run_acceptance_criteria (run_id, "
		"position, criterion, met, explanation) "
		"VALUES (?1, ?2, ?3, ?4, ?5)",
		"INSERT OR IGNORE INTO run_eval_bullets (run_id, position, "
		"bullet) VALUES (?1, ?2, ?3)",
	};
	const char *ts = "2026-01-01T00:00:00.000Z";
	struct input *in;
	struct store *store;
	sqlite3_stmt *st[6];
	sqlite3 *db;
	double t0, parse_s, insert_s;
	size_t n, i, j, k, runs = 0;
	char err[200];
	cJSON *tree;

	if (argc < 3) {
		fprintf(stderr, "usage: floor DB KIND:FILE...\n");
		return 64;
	}
	log_set_level(LOG_LEVEL_ERROR);
	n = (size_t)argc - 2;
	in = calloc(n, sizeof(*in));
	for (i = 0; i < n; i++) {
		const char *a = argv[i + 2];

		in[i].type = strncmp(a, "codegen:", 8) == 0 ? &source_codegen :
							      &source_cotool;
		in[i].body = bench_slurp("floor", strchr(a, ':') + 1,
		    &in[i].len);
	}

	/* (1) cJSON alone. */
	t0 = bench_now();
	for (i = 0; i < n; i++) {
		tree = cJSON_ParseWithLength(in[i].body, in[i].len + 1);
		if (tree == NULL) {
			fprintf(stderr, "floor: page %zu is not JSON\n", i);
			exit(1);
		}
		cJSON_Delete(tree);
	}
	parse_s = bench_now() - t0;

	/* (2) SQLite alone: rows normalized first, off the clock. */
	for (i = 0; i < n; i++) {
		if (in[i].type->parse_page(in[i].body, in[i].len, 100,
			&in[i].page, err, sizeof(err)) == -1) {
			fprintf(stderr, "floor: page %zu: %s\n", i, err);
			exit(1);
		}
	}
	store = store_open(argv[1], 0); /* the same schema */
	if (store == NULL)
		exit(1);
	store_close(store);
	if (sqlite3_open(argv[1], &db) != SQLITE_OK ||
	    sqlite3_exec(db,
		"PRAGMA journal_mode = WAL; PRAGMA synchronous = "
		"NORMAL; PRAGMA foreign_keys = ON",
		NULL, NULL, NULL) != SQLITE_OK)
		exit(1);
	for (k = 0; k < 6; k++)
		if (sqlite3_prepare_v2(db, sql[k], -1, &st[k], NULL) !=
		    SQLITE_OK) {
			fprintf(stderr, "floor: %s\n", sqlite3_errmsg(db));
			exit(1);
		}
	t0 = bench_now();
	for (i = 0; i < n; i++) {
		const char *src = in[i].type->name;

		sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		for (j = 0; j < in[i].page.nruns; j++) {
			const struct run *r = &in[i].page.runs[j];
			sqlite3_int64 id;
			int c = 1;

			text(st[0], c++, src);
			text(st[0], c++, src);
			text(st[0], c++, r->external_id);
			text(st[0], c++, r->status);
			text(st[0], c++, run_state_name(r->state));
			text(st[0], c++, r->title);
			text(st[0], c++, r->web_url);
			text(st[0], c++, r->created_at);
			text(st[0], c++, r->updated_at);
			sqlite3_bind_text(st[0], c++, r->raw, (int)r->raw_len,
			    SQLITE_STATIC);
			text(st[0], c++, ts);
			if (r->organization_id.set)
				sqlite3_bind_int64(st[0], c,
				    r->organization_id.v);
			c++;
			text(st[0], c++, r->result);
			text(st[0], c++, r->summary);
			text(st[0], c++, r->source_type);
			text(st[0], c++, r->metadata);
			text(st[0], c++, r->agent_id);
			text(st[0], c++, r->agent_name);
			text(st[0], c++, r->agent_type);
			text(st[0], c++, r->model_alias);
			text(st[0], c++, r->model_name);
			if (r->total_tool_count.set)
				sqlite3_bind_int64(st[0], c,
				    r->total_tool_count.v);
			c++;
			text(st[0], c++, r->trigger_source);
			text(st[0], c++, r->trigger_name);
			if (r->has_error.set)
				sqlite3_bind_int(st[0], c, r->has_error.v);
			c++;
			if (r->is_streaming.set)
				sqlite3_bind_int(st[0], c, r->is_streaming.v);
			c++;
			if (r->eval_score.set)
				sqlite3_bind_double(st[0], c, r->eval_score.v);
			c++;
			text(st[0], c++, r->eval_explanation);
			text(st[0], c++, r->critical_issue_category);
			text(st[0], c++, r->critical_issue_explanation);
			text(st[0], c++, r->linked_alert_display_id);
			text(st[0], c++, r->linked_alert_title);
			text(st[0], c++, r->linked_alert_status);
			step(db, st[0]);
			sqlite3_clear_bindings(st[0]);
			/* Codegen pages overlap by one run: a run already
			 * stored has its rows already. */
			if (sqlite3_changes(db) == 0)
				continue;
			id = sqlite3_last_insert_rowid(db);
			runs++;
			for (k = 0; k < r->nprs; k++) {
				const struct pull_request *p = &r->prs[k];

				text(st[1], 1, src);
				text(st[1], 2, p->external_id);
				text(st[1], 3, p->title);
				text(st[1], 4, p->url);
				text(st[1], 5, p->head_branch_name);
				text(st[1], 6, p->created_at);
				text(st[1], 7, ts);
				step(db, st[1]);
				sqlite3_bind_int64(st[2], 1, id);
				text(st[2], 2, src);
				text(st[2], 3, p->external_id);
				sqlite3_bind_int64(st[2], 4, (sqlite3_int64)k);
				step(db, st[2]);
			}
			for (k = 0; k < r->ntool_names; k++) {
				sqlite3_bind_int64(st[3], 1, id);
				sqlite3_bind_int64(st[3], 2, (sqlite3_int64)k);
				text(st[3], 3, r->tool_names[k]);
				step(db, st[3]);
			}
			for (k = 0; k < r->ncriteria; k++) {
				sqlite3_bind_int64(st[4], 1, id);
				sqlite3_bind_int64(st[4], 2, (sqlite3_int64)k);
				text(st[4], 3, r->criteria[k].criterion);
				if (r->criteria[k].met.set)
					sqlite3_bind_int(st[4], 4,
					    r->criteria[k].met.v);
				else
					sqlite3_bind_null(st[4], 4);
				text(st[4], 5, r->criteria[k].explanation);
				step(db, st[4]);
			}
			for (k = 0; k < r->neval_bullets; k++) {
				sqlite3_bind_int64(st[5], 1, id);
				sqlite3_bind_int64(st[5], 2, (sqlite3_int64)k);
				text(st[5], 3, r->eval_bullets[k]);
				step(db, st[5]);
			}
		}
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	insert_s = bench_now() - t0;
	printf("parse_seconds=%.4f insert_seconds=%.4f pages=%zu runs=%zu\n",
	    parse_s, insert_s, n, runs);
	for (k = 0; k < 6; k++)
		sqlite3_finalize(st[k]);
	sqlite3_close(db);
	for (i = 0; i < n; i++) {
		page_free(&in[i].page);
		free(in[i].body);
	}
	free(in);
	return 0;
}
