/* SPDX-License-Identifier: ISC */
/*
 * store_pg_plan.c: what a page of the PostgreSQL engine does with each of
 * its runs (store_pg_page.c writes it): the runs in generations (the n-th
 * time a page lists an id, in the n-th, so that a run listed twice is
 * written as SQLite writes it, the second after the first), what the
 * mirror holds of each (read, or guessed from the source's last pages),
 * what each needs (store_rules.c decides), and the sets of them that one
 * statement writes at once.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_pg.h"

static int
id_cmp(const void *a, const void *b)
{
	const struct id_ref *x = a, *y = b;
	int c = strcmp(x->id, y->id);

	if (c != 0)
		return c;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* By id alone: a result's ids are each once (runs' unique key). */
static int
id_only_cmp(const void *a, const void *b)
{
	return strcmp(((const struct id_ref *)a)->id,
	    ((const struct id_ref *)b)->id);
}

void
pg_plan_free(struct plan *plan)
{
	free(plan->runs);
	free(plan->ids);
	free(plan->set);
	memset(plan, 0, sizeof(*plan));
}

/* The page's runs, their generations, and a later run's held: the one
 * before it with its id. */
int
pg_plan_init(struct plan *plan, const struct page *page)
{
	size_t n = page->nruns, i;

	memset(plan, 0, sizeof(*plan));
	plan->n = n;
	plan->runs = calloc(n ? n : 1, sizeof(*plan->runs));
	plan->ids = calloc(n ? n : 1, sizeof(*plan->ids));
	plan->set = calloc(n ? n : 1, sizeof(const struct run *));
	if (plan->runs == NULL || plan->ids == NULL || plan->set == NULL) {
		pg_plan_free(plan);
		log_error("out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		plan->runs[i].r = &page->runs[i];
		plan->ids[i].id = page->runs[i].external_id;
		plan->ids[i].i = i;
	}
	qsort(plan->ids, n, sizeof(*plan->ids), id_cmp);
	for (i = 0; i < n; i++) {
		struct plan_run *pr = &plan->runs[plan->ids[i].i];
		const struct plan_run *prev;

		if (i == 0 || strcmp(plan->ids[i - 1].id, plan->ids[i].id) != 0)
			continue;
		prev = &plan->runs[plan->ids[i - 1].i];
		pr->gen = prev->gen + 1;
		pr->held.found = 1;
		pr->held.status = prev->r->status;
		pr->held.raw = prev->r->raw;
		pr->held.raw_len = prev->r->raw_len;
	}
	plan->ngen = n > 0 ? 1 : 0;
	for (i = 0; i < n; i++)
		if (plan->runs[i].gen + 1 > plan->ngen)
			plan->ngen = plan->runs[i].gen + 1;
	return 0;
}

/* The held of the first run of each id, from res (PS_SEL_RUNS). */
int
pg_plan_held(struct plan *plan, const PGresult *res)
{
	int nrows = res != NULL ? PQntuples(res) : 0, row;
	struct id_ref *rows, key, *hit;
	size_t i;

	if ((rows = calloc(nrows > 0 ? (size_t)nrows : 1, sizeof(*rows))) ==
	    NULL) {
		log_error("out of memory");
		return -1;
	}
	for (row = 0; row < nrows; row++) {
		rows[row].id = PQgetvalue(res, row, 0);
		rows[row].i = (size_t)row;
	}
	qsort(rows, (size_t)nrows, sizeof(*rows), id_only_cmp);
	for (i = 0; i < plan->n; i++) {
		struct held_run *h = &plan->runs[i].held;

		if (plan->runs[i].gen > 0)
			continue;
		memset(h, 0, sizeof(*h));
		key.id = plan->runs[i].r->external_id;
		key.i = 0;
		hit = bsearch(&key, rows, (size_t)nrows, sizeof(*rows),
		    id_only_cmp);
		if (hit == NULL)
			continue;
		row = (int)hit->i;
		h->found = 1;
		h->status = pg_text(res, row, 1);
		h->raw = PQgetvalue(res, row, 2);
		h->raw_len = (size_t)PQgetlength(res, row, 2);
		h->gone = pg_flag(res, row, 3);
	}
	free(rows);
	return 0;
}

static int
same_text(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == NULL && b == NULL;
	return strcmp(a, b) == 0;
}

/* What each run needs (store_rules.c), counted in c, in the page's
 * order; the first run written with a field left out in *first. */
void
pg_plan_decide(struct plan *plan, int touch, struct pass_counts *c,
    const struct run **first)
{
	size_t i;

	for (i = 0; i < plan->n; i++) {
		struct plan_run *pr = &plan->runs[i];
		const struct held_run *h = &pr->held;
		int same = h->found && h->raw_len == pr->r->raw_len &&
		    memcmp(h->raw, pr->r->raw, h->raw_len) == 0;

		pr->w = store_run_decide(h->found, same, h->gone, touch, c);
		pr->change = pr->w == STORE_RUN_UPDATE &&
		    !same_text(h->status, pr->r->status);
		if ((pr->w == STORE_RUN_INSERT || pr->w == STORE_RUN_UPDATE) &&
		    pr->r->nproblems > 0) {
			c->runs_partial++;
			if (*first == NULL)
				*first = pr->r;
		}
	}
}

const struct pg_set *
pg_plan_set(struct plan *plan, int gen, enum pg_plan_which which,
    struct pg_set *set)
{
	size_t i;
	int in;

	set->runs = plan->set;
	set->n = 0;
	for (i = 0; i < plan->n; i++) {
		const struct plan_run *pr = &plan->runs[i];

		if (pr->gen != gen)
			continue;
		switch (which) {
		case W_TOUCH:
			in = pr->w == STORE_RUN_TOUCH;
			break;
		case W_CHANGE:
			in = pr->change;
			break;
		case W_UPDATE:
			in = pr->w == STORE_RUN_UPDATE;
			break;
		case W_INSERT:
			in = pr->w == STORE_RUN_INSERT;
			break;
		default:
			in = pr->w == STORE_RUN_INSERT ||
			    pr->w == STORE_RUN_UPDATE;
			break;
		}
		if (in)
			plan->set[set->n++] = pr->r;
	}
	return set;
}

/*
 * The guess at a page of a walk: a run one of the source's last pages
 * listed is held as this page lists it (a walk starts a page one run
 * early, runs new upstream push the ones it saw into the next page, runs
 * gone upstream make it step back); the rest are new.  Its parameters: $3 the ids guessed held, $4 their bytes, $5
 * how many (the gate checks all three).
 */
void
pg_plan_guess(struct plan *plan, const struct pg_last *last,
    struct pg_array *held, struct pg_array *raws)
{
	const char *id;
	size_t i;

	for (i = 0; i < plan->n; i++) {
		struct plan_run *pr = &plan->runs[i];

		id = pr->r->external_id;
		if (!pg_listed(last, id))
			continue;
		pr->held.found = 1;
		pr->held.status = pr->r->status;
		pr->held.raw = pr->r->raw;
		pr->held.raw_len = pr->r->raw_len;
		pa_text(held, id);
		pa_add(raws, pr->r->raw, pr->r->raw_len);
	}
}
