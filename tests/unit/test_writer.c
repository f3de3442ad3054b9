/* SPDX-License-Identifier: ISC */
/*
 * test_writer.c: the writer (writer.c) against a fake store, linked
 * without libev, libcurl or SQLite: when a batch opens and commits, that
 * every other write commits it first, and that a lost batch puts every
 * source in it back at its snapshot and tells each one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "writer.h"

/* The fake store: what was called, and what the next calls return. */
static struct {
	int batch;	    /* a batch transaction is open */
	int begins;	    /* store_batch_begin() calls */
	int commits;	    /* committed batches */
	int pages;	    /* store_page() calls */
	int other;	    /* other writes */
	int begin_rc;	    /* what store_batch_begin() returns */
	int commit_rc;	    /* ... store_batch_commit() */
	int page_rc;	    /* ... store_page() */
	int batch_at_other; /* a batch was open at an other write */
} fs;

int
store_batch_begin(struct store *store)
{
	(void)store;
	fs.begins++;
	if (fs.begin_rc != STORE_OK)
		return fs.begin_rc;
	fs.batch = 1;
	return STORE_OK;
}

int
store_batch_commit(struct store *store)
{
	(void)store;
	if (!fs.batch)
		return 0;
	fs.batch = 0;
	if (fs.commit_rc != 0)
		return -1;
	fs.commits++;
	return 0;
}

int
store_page(struct store *store, struct store_pass *pass,
    const struct page *page, const struct sync_state *next, unsigned flags,
    const char *now)
{
	(void)store;
	(void)page;
	(void)next;
	(void)flags;
	(void)now;
	fs.pages++;
	if (fs.page_rc == STORE_LOST)
		fs.batch = 0; /* rolled back whole */
	if (fs.page_rc == STORE_OK)
		pass->counts.pages++;
	return fs.page_rc;
}

static int
other(void)
{
	fs.other++;
	if (fs.batch)
		fs.batch_at_other = 1;
	return 0;
}

int
store_state_load(struct store *store, const char *source, const char *kind,
    const char *identity, struct sync_state *state)
{
	(void)store, (void)source, (void)kind, (void)identity, (void)state;
	return other();
}

int
store_pass_begin(struct store *store, struct store_pass *pass,
    enum walk_mode mode, const char *now)
{
	(void)store, (void)pass, (void)mode, (void)now;
	return other();
}

int
store_pass_end(struct store *store, const struct store_pass *pass,
    const struct sync_state *state, enum pass_outcome outcome,
    const char *error, const char *now)
{
	(void)store, (void)pass, (void)state, (void)outcome, (void)error;
	(void)now;
	return other();
}

int
store_set_next_poll(struct store *store, const char *source, const char *when)
{
	(void)store, (void)source, (void)when;
	return other();
}

int64_t
store_prune_history(struct store *store, const char *cutoff, int batch,
    int max_batches)
{
	(void)store, (void)cutoff, (void)batch, (void)max_batches;
	return other();
}

void
store_checkpoint(struct store *store, int truncate)
{
	(void)store, (void)truncate;
	(void)other();
}

void
store_checkpoint_over(struct store *store, long long bytes)
{
	(void)store, (void)bytes;
	(void)other();
}

int
store_sources_sync(struct store *store, const struct store_source *srcs,
    size_t n, const char *now, store_retired_fn *fn, void *arg)
{
	(void)store, (void)srcs, (void)n, (void)now, (void)fn, (void)arg;
	return other();
}

int
store_rename_source(struct store *store, const char *old, const char *new_name,
    char *why, size_t whylen)
{
	(void)store, (void)old, (void)new_name, (void)why, (void)whylen;
	return other();
}

int
store_forget_source(struct store *store, const char *source, int batch,
    const char *now, int64_t *deleted, char *why, size_t whylen)
{
	(void)store, (void)source, (void)batch, (void)now, (void)deleted;
	(void)why, (void)whylen;
	return other();
}

int
store_migrate(struct store *store)
{
	(void)store;
	return other();
}

int
store_claim(struct store *store, const char *source, char *holder, size_t len)
{
	(void)store, (void)source, (void)holder, (void)len;
	return other();
}

void
store_release(struct store *store, const char *source)
{
	(void)store, (void)source;
	(void)other();
}

/* A source as sync holds one: its state, its pass, its part. */
struct src {
	struct sync_state st;
	struct walk walk;
	struct store_pass pass;
	struct writer_part part;
	int lost; /* lost callbacks */
	int64_t offset_at_lost;
};

static void
lost_cb(void *arg)
{
	struct src *s = arg;

	s->lost++;
	s->offset_at_lost = s->st.walk_offset;
}

/* The timer the writer arms. */
static struct {
	int armed;
	double seconds;
} tm;

static void
arm(void *arg, double seconds)
{
	(void)arg;
	tm.armed = 1;
	tm.seconds = seconds;
}

static void
disarm(void *arg)
{
	(void)arg;
	tm.armed = 0;
}

static struct writer w;

static int
setup(void **state)
{
	(void)state;
	memset(&fs, 0, sizeof(fs));
	memset(&tm, 0, sizeof(tm));
	writer_init(&w, NULL);
	writer_set_timer(&w, &(struct writer_timer){ arm, disarm, NULL });
	return 0;
}

static void
src_init(struct src *s, int64_t offset)
{
	memset(s, 0, sizeof(*s));
	s->st.walk_offset = offset;
	writer_part_init(&s->part, &s->st, &s->walk, &s->pass.counts, lost_cb,
	    s);
}

/* One page of s as sync writes it: the walk moves, then the write. */
static enum write_rc
page(struct src *s, int batched, double now)
{
	struct sync_state next;
	enum write_rc rc;
	struct page p;

	memset(&p, 0, sizeof(p));
	rc = writer_begin_page(&w, &s->part, batched, now);
	if (rc != WRITE_OK)
		return rc;
	s->walk.pages++;
	next = s->st;
	next.walk_offset += 100;
	s->pass.counts.requests++;
	rc = writer_page(&w, batched, &s->pass, &p, &next, 0, "T");
	if (rc == WRITE_OK)
		s->st = next;
	return rc;
}

static void
test_batch_opens_and_commits_when_full(void **state)
{
	struct src a;
	int i;

	(void)state;
	src_init(&a, 0);
	assert_int_equal(page(&a, 1, 10.0), WRITE_OK);
	assert_int_equal(fs.begins, 1);
	assert_true(tm.armed);
	assert_true(tm.seconds == WRITER_BATCH_SECONDS);
	assert_true(a.part.in_batch);
	/* not full yet: nothing committed */
	assert_int_equal(writer_settle(&w, 0, 10.1), WRITE_OK);
	assert_int_equal(fs.commits, 0);
	for (i = 1; i < WRITER_BATCH_MAX_PAGES; i++)
		assert_int_equal(page(&a, 1, 10.2), WRITE_OK);
	assert_int_equal(fs.begins, 1); /* one batch for all of them */
	assert_int_equal(writer_settle(&w, 0, 10.2), WRITE_OK);
	assert_int_equal(fs.commits, 1);
	assert_false(tm.armed);
	assert_false(a.part.in_batch);
	/* a second one commits on time */
	assert_int_equal(page(&a, 1, 20.0), WRITE_OK);
	assert_int_equal(writer_settle(&w, 0, 20.0 + WRITER_BATCH_SECONDS),
	    WRITE_OK);
	assert_int_equal(fs.commits, 2);
	/* and a third as the walk's last page */
	assert_int_equal(page(&a, 1, 30.0), WRITE_OK);
	assert_int_equal(writer_settle(&w, 1, 30.0), WRITE_OK);
	assert_int_equal(fs.commits, 3);
	assert_int_equal(a.lost, 0);
}

/* An incremental page and every other write commit the batch first. */
static void
test_other_writes_commit_first(void **state)
{
	struct src a, b;
	struct sync_state st;
	struct store_pass pass;
	char why[64];
	int64_t n;

	(void)state;
	src_init(&a, 0);
	src_init(&b, 0);
	memset(&st, 0, sizeof(st));
	memset(&pass, 0, sizeof(pass));
	assert_int_equal(page(&a, 1, 1.0), WRITE_OK);
	assert_int_equal(page(&b, 0, 1.0), WRITE_OK);
	assert_int_equal(fs.commits, 1);
	assert_false(fs.batch);

#define OPEN_THEN(call)                                       \
	do {                                                  \
		assert_int_equal(page(&a, 1, 1.0), WRITE_OK); \
		assert_true(fs.batch);                        \
		assert_int_equal((int)(call), 0);             \
		assert_false(fs.batch);                       \
	} while (0)
	OPEN_THEN(writer_state_load(&w, "a", "k", "i", &st));
	OPEN_THEN(writer_pass_begin(&w, &pass, WALK_FULL, "T"));
	OPEN_THEN(writer_pass_end(&w, &pass, &st, PASS_SUCCEEDED, NULL, "T"));
	OPEN_THEN(writer_next_poll(&w, "a", "T"));
	OPEN_THEN(n = writer_prune_history(&w, "T", 1, 1));
	OPEN_THEN((writer_checkpoint(&w, 1), 0));
	OPEN_THEN((writer_checkpoint_over(&w, 1), 0));
	OPEN_THEN(writer_sources_sync(&w, NULL, 0, "T", NULL, NULL));
	OPEN_THEN(writer_rename_source(&w, "a", "b", why, sizeof(why)));
	OPEN_THEN(writer_forget_source(&w, "a", 1, "T", &n, why, sizeof(why)));
	OPEN_THEN(writer_migrate(&w));
	OPEN_THEN(writer_claim(&w, "a", why, sizeof(why)));
	OPEN_THEN((writer_release(&w, "a"), 0));
#undef OPEN_THEN
	assert_int_equal(fs.other, 13);
	assert_false(fs.batch_at_other);
	assert_int_equal(fs.commits, 14);
	assert_int_equal(a.lost, 0);
}

/* A commit that fails: both sources back at their snapshots, told. */
static void
test_lost_commit_puts_every_source_back(void **state)
{
	struct src a, b, c;

	(void)state;
	src_init(&a, 1000);
	src_init(&b, 5000);
	src_init(&c, 7000);
	assert_int_equal(page(&a, 1, 1.0), WRITE_OK);
	assert_int_equal(page(&b, 1, 1.0), WRITE_OK);
	assert_int_equal(page(&a, 1, 1.0), WRITE_OK);
	assert_int_equal(a.st.walk_offset, 1200);
	assert_int_equal(a.pass.counts.pages, 2);
	assert_int_equal(a.pass.counts.requests, 2);
	fs.commit_rc = -1;
	assert_int_equal(writer_commit(&w), WRITE_LOST);
	assert_false(tm.armed);
	/* back where each was before its first page in the batch */
	assert_int_equal(a.st.walk_offset, 1000);
	assert_int_equal(a.walk.pages, 0);
	assert_int_equal(a.pass.counts.pages, 0);
	assert_int_equal(b.st.walk_offset, 5000);
	assert_int_equal(b.walk.pages, 0);
	/* what was asked of upstream stays counted */
	assert_int_equal(a.pass.counts.requests, 2);
	assert_int_equal(b.pass.counts.requests, 1);
	/* each told once, after it was put back */
	assert_int_equal(a.lost, 1);
	assert_int_equal(b.lost, 1);
	assert_int_equal(a.offset_at_lost, 1000);
	assert_int_equal(a.part.lost_pages, 2);
	assert_int_equal(b.part.lost_pages, 1);
	assert_int_equal(a.part.losses, 1);
	assert_false(a.part.in_batch);
	/* the one that was not in it is untouched */
	assert_int_equal(c.lost, 0);
	assert_int_equal(c.st.walk_offset, 7000);
	/* losses count in a row: a commit that holds resets them */
	fs.commit_rc = 0;
	assert_int_equal(page(&a, 1, 2.0), WRITE_OK);
	assert_int_equal(writer_commit(&w), WRITE_OK);
	assert_int_equal(a.part.losses, 0);
	assert_int_equal(b.part.losses, 1); /* not in that batch */
}

/* A page that takes the batch with it (SQLite rolled it back). */
static void
test_page_that_loses_the_batch(void **state)
{
	struct src a, b;

	(void)state;
	src_init(&a, 100);
	src_init(&b, 200);
	assert_int_equal(page(&a, 1, 1.0), WRITE_OK);
	fs.page_rc = STORE_LOST;
	assert_int_equal(page(&b, 1, 1.0), WRITE_LOST);
	assert_int_equal(a.st.walk_offset, 100);
	assert_int_equal(b.st.walk_offset, 200);
	assert_int_equal(b.walk.pages, 0);
	assert_int_equal(a.lost, 1);
	assert_int_equal(b.lost, 1);
	assert_false(tm.armed);
	/* nothing open: the next batch begins anew */
	fs.page_rc = STORE_OK;
	assert_int_equal(page(&a, 1, 2.0), WRITE_OK);
	assert_int_equal(fs.begins, 2);
}

/* A failed page that leaves the batch: why, and nobody is put back. */
static void
test_page_failures_say_why(void **state)
{
	static const struct {
		int store_rc;
		enum write_rc rc;
	} rows[] = {
		{ STORE_FAILED, WRITE_ERROR },
		{ STORE_BUSY, WRITE_BUSY },
		{ STORE_GONE, WRITE_GONE },
	};
	struct src a;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		src_init(&a, 300);
		fs.page_rc = rows[i].store_rc;
		assert_int_equal(page(&a, 0, 1.0), rows[i].rc);
		assert_int_equal(a.st.walk_offset, 300);
		assert_int_equal(a.lost, 0);
	}
	/* a batch that cannot begin */
	fs.page_rc = STORE_OK;
	fs.begin_rc = STORE_BUSY;
	src_init(&a, 300);
	assert_int_equal(page(&a, 1, 1.0), WRITE_BUSY);
	assert_false(a.part.in_batch);
	assert_false(tm.armed);
}

/* A source that leaves (freed, or its rows gone) is not put back. */
static void
test_part_leaves(void **state)
{
	struct src a, b;

	(void)state;
	src_init(&a, 10);
	src_init(&b, 20);
	assert_int_equal(page(&a, 1, 1.0), WRITE_OK);
	assert_int_equal(page(&b, 1, 1.0), WRITE_OK);
	writer_part_leave(&w, &a.part);
	assert_false(a.part.in_batch);
	fs.commit_rc = -1;
	assert_int_equal(writer_commit(&w), WRITE_LOST);
	assert_int_equal(a.lost, 0);
	assert_int_equal(a.st.walk_offset, 110);
	assert_int_equal(b.lost, 1);
	assert_int_equal(b.st.walk_offset, 20);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_batch_opens_and_commits_when_full,
		    setup),
		cmocka_unit_test_setup(test_other_writes_commit_first, setup),
		cmocka_unit_test_setup(test_lost_commit_puts_every_source_back,
		    setup),
		cmocka_unit_test_setup(test_page_that_loses_the_batch, setup),
		cmocka_unit_test_setup(test_page_failures_say_why, setup),
		cmocka_unit_test_setup(test_part_leaves, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
