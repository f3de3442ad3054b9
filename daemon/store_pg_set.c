/* SPDX-License-Identifier: ISC */
/*
 * store_pg_set.c: the PostgreSQL engine's fixed statements that write a
 * set of a page's runs at once, and their parameters: the touch of runs
 * unchanged, the status changes, the deletes of replaced child rows, the
 * pull requests, their links, the field problems and the rejects.  A
 * column of the set is one text[] parameter (store_pg_array.c); each
 * statement finds a run by its key (source, external_id), keeps the
 * page's order (WITH ORDINALITY), and writes only when the page's gate
 * says so (PG_GATE, store_pg_page.c).
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_pg.h"

/* The run whose key is x.k, in unnest's x: by its index, whatever the
 * planner guesses of unnest's rows. */
#define RUN_OF_X                                                             \
	"CROSS JOIN LATERAL (SELECT id, status, state, source, external_id " \
	"FROM runs WHERE source = $1 AND external_id = x.k OFFSET 0) r "
#define RUN_ID_OF_X \
	"(SELECT id FROM runs WHERE source = $1 AND external_id = x.k)"
/* The runs of the set $2 names, each by its key. */
#define RUNS_OF_KEYS                                                    \
	"run_id IN (SELECT (SELECT id FROM runs WHERE source = $1 AND " \
	"external_id = x.k) FROM unnest($2::text[]) x(k) OFFSET 0) AND " PG_GATE

static const char *const pg_set_sql[NPSETS] = {
	[PS_TOUCH_RUNS] = "UPDATE runs SET last_seen_at = $2::timestamptz, "
			  "last_seen_walk = $3::bigint, deleted_upstream_at = "
			  "NULL FROM (SELECT (SELECT id FROM runs WHERE source "
			  "= $1 AND external_id = x.k) AS id FROM "
			  "unnest($4::text[]) x(k) OFFSET 0) t WHERE runs.id = "
			  "t.id AND " PG_GATE,
	/* Taken before the update, so old_* come from the rows. */
	[PS_INS_CHANGES] = "INSERT INTO run_status_changes (run_id, "
			   "observed_at, old_status, new_status, old_state, "
			   "new_state, source, external_id, updated_at) "
			   "SELECT r.id, $2::timestamptz, r.status, x.status, "
			   "r.state, x.state, r.source, r.external_id, "
			   "x.updated_at::timestamptz FROM unnest($3::text[], "
			   "$4::text[], $5::text[], $6::text[]) WITH "
			   "ORDINALITY AS x(k, status, state, updated_at, "
			   "ord) " RUN_OF_X "WHERE " PG_GATE " ORDER BY x.ord",
	[PS_DEL_LINKS] = "DELETE FROM run_pull_requests WHERE " RUNS_OF_KEYS,
	[PS_DEL_PROBLEMS] =
	    "DELETE FROM run_field_problems WHERE " RUNS_OF_KEYS,
	/* Each pull request once (the caller's): PostgreSQL updates a row
	 * at most once a statement. */
	[PS_UPSERT_PRS] = "INSERT INTO pull_requests (source, external_id, "
			  "title, url, head_branch_name, created_at, "
			  "first_seen_at, changed_at, repository, number) "
			  "SELECT $1::text, x.k, x.title, x.url, x.head, "
			  "x.created::timestamptz, $2::timestamptz, "
			  "$2::timestamptz, x.repo, x.num::bigint FROM "
			  "unnest($3::text[], $4::text[], $5::text[], "
			  "$6::text[], $7::text[], $8::text[], $9::text[]) "
			  "WITH ORDINALITY AS x(k, title, url, head, created, "
			  "repo, num, ord) WHERE " PG_GATE " ORDER BY x.ord "
			  "" PR_UPSERT_SET
			  "WHERE pull_requests.title IS DISTINCT FROM "
			  "excluded.title OR pull_requests.url IS DISTINCT "
			  "FROM excluded.url OR pull_requests.head_branch_name "
			  "IS DISTINCT FROM excluded.head_branch_name OR "
			  "pull_requests.created_at IS DISTINCT FROM "
			  "excluded.created_at",
	[PS_INS_LINKS] = "INSERT INTO run_pull_requests (run_id, "
			 "pull_request_id, position) SELECT " RUN_ID_OF_X
			 ", (SELECT id FROM pull_requests WHERE source = $1 "
			 "AND external_id = x.pr), x.pos::bigint FROM "
			 "unnest($2::text[], $3::text[], $4::text[]) WITH "
			 "ORDINALITY AS x(k, pr, pos, ord) WHERE " PG_GATE
			 " ORDER BY x.ord ON CONFLICT DO NOTHING",
	[PS_INS_PROBLEMS] =
	    "INSERT INTO run_field_problems (run_id, "
	    "position, field, problem, value) SELECT " RUN_ID_OF_X
	    ", x.pos::bigint, x.field, x.problem, x.value FROM "
	    "unnest($2::text[], $3::text[], $4::text[], "
	    "$5::text[], $6::text[]) WITH ORDINALITY AS x(k, "
	    "pos, field, problem, value, ord) WHERE " PG_GATE " ORDER BY x.ord",
	[PS_INS_REJECTS] =
	    "INSERT INTO rejected_records (source, kind, "
	    "external_id, reason, raw_json, first_seen_at) "
	    "SELECT $1::text, $2::text, x.k, x.reason, x.raw, "
	    "$3::timestamptz FROM unnest($4::text[], $5::text[], "
	    "$6::text[]) WITH ORDINALITY AS x(k, reason, raw, "
	    "ord) WHERE " PG_GATE " ORDER BY x.ord "
	    "ON CONFLICT (source, reason, md5(raw_json)) "
	    "DO NOTHING",
};

/* Queue the preparation of every statement of pg_set_sql[]. */
int
pg_prepare_sets(struct pg_store *store)
{
	char name[8];
	size_t i;

	for (i = 0; i < NPSETS; i++) {
		pg_stmt_name(name, sizeof(name), 's', i);
		if (pg_pipe_send_prepare(store, name, pg_set_sql[i], 0, NULL) ==
		    -1)
			return -1;
	}
	return 0;
}

/* Bind a[0 .. n - 1] after p's parameters, send statement id, free a. */
static int
send_arrays(struct pg_store *store, enum pg_set_id id, struct pg_params *p,
    struct pg_array *a, size_t n)
{
	int rc;

	pp_arrays(p, a, n);
	rc = pg_pipe_send_text(store, pg_set_sql[id], NULL, p, NULL);
	pa_free_n(a, n);
	return rc;
}

/* $1 source, $2 the keys of set's runs: the parameters of a delete. */
void
pg_set_keys(struct pg_params *p, struct pg_array *keys,
    const struct pg_page_ctx *ctx, const struct pg_set *set)
{
	size_t i;

	pa_init(keys);
	for (i = 0; i < set->n; i++)
		pa_text(keys, set->runs[i]->external_id);
	pp_reset(p);
	pp_text(p, ctx->source);
	pp_array(p, keys);
}

/* last_seen_at and the walk of set's runs, unchanged otherwise. */
int
pg_send_touch(struct pg_store *store, const struct pg_page_ctx *ctx,
    const struct pg_set *set)
{
	struct pg_array keys;
	struct pg_params p;
	size_t i;

	if (set->n == 0)
		return 0;
	pa_init(&keys);
	for (i = 0; i < set->n; i++)
		pa_text(&keys, set->runs[i]->external_id);
	pp_reset(&p);
	pp_text(&p, ctx->source);
	pp_text(&p, ctx->now);
	pp_i64(&p, ctx->walk);
	return send_arrays(store, PS_TOUCH_RUNS, &p, &keys, 1);
}

/* The status changes of set's runs, before their update. */
int
pg_send_changes(struct pg_store *store, const struct pg_page_ctx *ctx,
    const struct pg_set *set)
{
	struct pg_array a[4];
	struct pg_params p;
	size_t i;

	if (set->n == 0)
		return 0;
	pa_init_n(a, 4);
	for (i = 0; i < set->n; i++) {
		const struct run *r = set->runs[i];

		pa_text(&a[0], r->external_id);
		pa_text(&a[1], r->status);
		pa_text(&a[2], run_state_name(r->state));
		pa_ts(&a[3], r->updated_at);
	}
	pp_reset(&p);
	pp_text(&p, ctx->source);
	pp_text(&p, ctx->now);
	return send_arrays(store, PS_INS_CHANGES, &p, a, 4);
}

/* The links and field problems of set's runs (replaced), and the rows
 * of their child tables. */
int
pg_send_deletes(struct pg_store *store, const struct pg_page_ctx *ctx,
    const struct pg_set *set)
{
	struct pg_array keys;
	struct pg_params p;
	int rc = 0;

	if (set->n == 0)
		return 0;
	pg_set_keys(&p, &keys, ctx, set);
	if (pg_pipe_send_text(store, pg_set_sql[PS_DEL_LINKS], NULL, &p,
		NULL) == -1 ||
	    pg_pipe_send_text(store, pg_set_sql[PS_DEL_PROBLEMS], NULL, &p,
		NULL) == -1)
		rc = -1;
	if (rc == 0 && pg_send_child_deletes(store, ctx, set, &p) == -1)
		rc = -1;
	pa_free(&keys);
	return rc;
}

/* A pull request of the set, and its place among them. */
struct pr_ref {
	const struct pull_request *pr;
	size_t seq;
};

static int
pr_cmp(const void *a, const void *b)
{
	const struct pr_ref *x = a, *y = b;
	int c = strcmp(x->pr->external_id, y->pr->external_id);

	if (c != 0)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * keep[seq]: 1 for the last time set's runs list each pull request
 * (seq counts them in the page's order).  PostgreSQL updates a row at
 * most once a statement, and the last wins, as when they are written one
 * by one (a pull request two runs list with two titles is written with
 * the later; its changed_at moves when that differs from what the mirror
 * held).
 */
static unsigned char *
prs_last(const struct pg_set *set, size_t n)
{
	struct pr_ref *refs = calloc(n, sizeof(*refs));
	unsigned char *keep = calloc(n, 1);
	size_t i, j, k = 0;

	if (refs == NULL || keep == NULL) {
		free(refs);
		free(keep);
		log_error("out of memory");
		return NULL;
	}
	for (i = 0; i < set->n; i++)
		for (j = 0; j < set->runs[i]->nprs; j++, k++) {
			refs[k].pr = &set->runs[i]->prs[j];
			refs[k].seq = k;
		}
	qsort(refs, n, sizeof(*refs), pr_cmp);
	for (k = 0; k < n; k++)
		if (k + 1 == n ||
		    strcmp(refs[k].pr->external_id,
			refs[k + 1].pr->external_id) != 0)
			keep[refs[k].seq] = 1;
	free(refs);
	return keep;
}

/* The pull requests of set's runs, each once (keep). */
static int
send_prs(struct pg_store *store, const struct pg_page_ctx *ctx,
    const struct pg_set *set, const unsigned char *keep)
{
	struct pg_array a[7];
	struct pg_params p;
	char repo[GITHUB_REPO_LEN];
	int64_t number;
	size_t i, j, k = 0;
	int github;

	pa_init_n(a, 7);
	for (i = 0; i < set->n; i++)
		for (j = 0; j < set->runs[i]->nprs; j++) {
			const struct pull_request *pr = &set->runs[i]->prs[j];

			if (!keep[k++])
				continue;
			github = github_pr_parse(pr->url, repo, &number) == 0;
			pa_text(&a[0], pr->external_id);
			pa_text(&a[1], pr->title);
			pa_text(&a[2], pr->url);
			pa_text(&a[3], pr->head_branch_name);
			pa_ts(&a[4], pr->created_at);
			pa_text(&a[5], github ? repo : NULL);
			pa_opt_int(&a[6], github, number);
		}
	pp_reset(&p);
	pp_text(&p, ctx->source);
	pp_text(&p, ctx->now);
	return send_arrays(store, PS_UPSERT_PRS, &p, a, 7);
}

/* The pull requests of set's runs (upserted), then their links. */
int
pg_send_prs(struct pg_store *store, const struct pg_page_ctx *ctx,
    const struct pg_set *set)
{
	unsigned char *keep;
	struct pg_array a[3];
	struct pg_params p;
	size_t i, j, n = 0;

	for (i = 0; i < set->n; i++)
		n += set->runs[i]->nprs;
	if (n == 0)
		return 0;
	if ((keep = prs_last(set, n)) == NULL)
		return -1;
	if (send_prs(store, ctx, set, keep) == -1) {
		free(keep);
		return -1;
	}
	free(keep);
	pa_init_n(a, 3);
	for (i = 0; i < set->n; i++)
		for (j = 0; j < set->runs[i]->nprs; j++) {
			pa_text(&a[0], set->runs[i]->external_id);
			pa_text(&a[1], set->runs[i]->prs[j].external_id);
			pa_i64(&a[2], (int64_t)j); /* distinct by id */
		}
	pp_reset(&p);
	pp_text(&p, ctx->source);
	return send_arrays(store, PS_INS_LINKS, &p, a, 3);
}

/* The field problems of set's runs. */
int
pg_send_problems(struct pg_store *store, const struct pg_page_ctx *ctx,
    const struct pg_set *set)
{
	struct pg_array a[5];
	struct pg_params p;
	size_t i, j;

	pa_init_n(a, 5);
	for (i = 0; i < set->n; i++)
		for (j = 0; j < set->runs[i]->nproblems; j++) {
			const struct field_problem *fp =
			    &set->runs[i]->problems[j];

			pa_text(&a[0], set->runs[i]->external_id);
			pa_i64(&a[1], (int64_t)j);
			pa_text(&a[2], fp->field);
			pa_text(&a[3], fp->problem);
			pa_text(&a[4], fp->value);
		}
	if (a[0].n == 0)
		return 0;
	pp_reset(&p);
	pp_text(&p, ctx->source);
	return send_arrays(store, PS_INS_PROBLEMS, &p, a, 5);
}

/* The page's rejected items, each kept once. */
int
pg_send_rejects(struct pg_store *store, const struct pg_page_ctx *ctx,
    const char *kind, const struct page *page)
{
	struct pg_array a[3];
	struct pg_params p;
	size_t i;

	if (page->nrejects == 0)
		return 0;
	pa_init_n(a, 3);
	for (i = 0; i < page->nrejects; i++) {
		const struct reject *rj = &page->rejects[i];

		pa_text(&a[0], rj->external_id);
		pa_text(&a[1], rj->reason);
		pa_add(&a[2], rj->raw, rj->raw_len);
	}
	pp_reset(&p);
	pp_text(&p, ctx->source);
	pp_text(&p, kind);
	pp_text(&p, ctx->now);
	return send_arrays(store, PS_INS_REJECTS, &p, a, 3);
}
