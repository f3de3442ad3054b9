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

static void step(sqlite3 *db, sqlite3_stmt *st);

/* The typed columns of the insert below, ?12 to ?33, in its order. */
static const char *const typed[] = { "organization_id", "result", "summary",
	"source_type", "metadata", "agent_id", "agent_name", "agent_type",
	"model_alias", "model_name", "total_tool_count", "trigger_source",
	"trigger_name", "has_error", "is_streaming", "eval_score",
	"eval_explanation", "critical_issue_category",
	"critical_issue_explanation", "linked_alert_display_id",
	"linked_alert_title", "linked_alert_status" };
#define NTYPED (sizeof(typed) / sizeof(typed[0]))
/* The child tables, st[3..5]. */
static const char *const arrays[] = { "tool_names_count",
	"acceptance_criteria_count", "eval_bullet_count" };

/* The index of column name among t's fields, or -1. */
static int
field_of(const struct source_type *t, const char *name)
{
	size_t k;

	for (k = 0; k < t->nfields; k++)
		if (t->fields[k].column != NULL &&
		    strcmp(t->fields[k].column, name) == 0)
			return (int)k;
	return -1;
}

/* One value of a field of type t into parameter i (NULL when unset). */
static void
bind_value(sqlite3_stmt *st, int i, enum field_type t, const struct value *v)
{
	if (v == NULL || !v->set)
		sqlite3_bind_null(st, i);
	else if (t == FIELD_TEXT || t == FIELD_TIME || t == FIELD_JSON)
		text(st, i, v->v.s);
	else if (t == FIELD_REAL)
		sqlite3_bind_double(st, i, v->v.d);
	else
		sqlite3_bind_int64(st, i, v->v.i);
}

/* The field behind each of typed[] and arrays[] for adapter t. */
struct layout {
	int typed[NTYPED];
	int arrays[3];
};

static void
layout_of(const struct source_type *t, struct layout *l)
{
	size_t c;

	for (c = 0; c < NTYPED; c++)
		l->typed[c] = field_of(t, typed[c]);
	for (c = 0; c < 3; c++)
		l->arrays[c] = field_of(t, arrays[c]);
}

/* r's rows of array field k (or none) into st: run_id, position, cells. */
static void
bind_rows(sqlite3 *db, sqlite3_stmt *st, sqlite3_int64 id,
    const struct source_type *t, const struct run *r, int k)
{
	const struct field *f;
	const struct value *v;
	size_t j, c;

	if (k < 0 || r->values == NULL || !r->values[k].set)
		return;
	f = &t->fields[k];
	v = &r->values[k];
	for (j = 0; j < v->len; j++) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)j);
		if (f->type == FIELD_STRINGS)
			text(st, 3, v->v.strs[j]);
		else
			for (c = 0; c < f->nitems; c++)
				bind_value(st, 3 + (int)c, f->items[c].type,
				    &v->v.cells[j * f->nitems + c]);
		step(db, st);
	}
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
	struct layout lay[2]; /* codegen, cotool */
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
	layout_of(&source_codegen, &lay[0]);
	layout_of(&source_cotool, &lay[1]);
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
			for (k = 0; k < NTYPED; k++) {
				int f =
				    lay[in[i].type == &source_cotool].typed[k];

				bind_value(st[0], c++,
				    f < 0 ? FIELD_TEXT :
					    in[i].type->fields[f].type,
				    f < 0 || r->values == NULL ? NULL :
								 &r->values[f]);
			}
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
			for (k = 0; k < 3; k++)
				bind_rows(db, st[3 + k], id, in[i].type, r,
				    lay[in[i].type == &source_cotool]
					.arrays[k]);
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
