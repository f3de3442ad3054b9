/* SPDX-License-Identifier: ISC */
/*
 * test_metrics.c: the metrics file is written through a temporary of its
 * own (issue 25, item 5): a PATH.tmp left by someone else, a file or a
 * symbolic link, is neither truncated, followed nor removed; the file is
 * mode 0644 whatever the umask; no temporary is left, written or failed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics.h"

struct dir {
	char path[64];
	char prom[96]; /* DIR/agentsyncd.prom */
	char tmp[128]; /* DIR/agentsyncd.prom.tmp, the old fixed name */
};

static void
dir_make(struct dir *d)
{
	snprintf(d->path, sizeof(d->path), "/tmp/agentsyncd-metrics-XXXXXX");
	assert_non_null(mkdtemp(d->path));
	snprintf(d->prom, sizeof(d->prom), "%s/agentsyncd.prom", d->path);
	snprintf(d->tmp, sizeof(d->tmp), "%s.tmp", d->prom);
}

/* The names in the directory, sorted, joined by spaces. */
static void
dir_list(const struct dir *d, char *out, size_t len)
{
	struct dirent **ents;
	int i, n = scandir(d->path, &ents, NULL, alphasort);

	assert_true(n >= 0);
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.') {
			strncat(out, ents[i]->d_name, len - strlen(out) - 1);
			strncat(out, " ", len - strlen(out) - 1);
		}
		free(ents[i]);
	}
	free(ents);
}

static void
put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void
get(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(out, 1, len - 1, f);
	out[n] = '\0';
	fclose(f);
}

static int
write_one(const char *path)
{
	struct metrics_source m;
	mode_t old = umask(077);
	int rc;

	memset(&m, 0, sizeof(m));
	m.name = "cg";
	m.kind = "codegen";
	m.poll_interval = 60;
	m.runs = 7;
	m.last_success = m.last_progress = m.last_pass_seconds = -1;
	m.last_pass_ok = -1;
	m.upstream_total = -1;
	m.next_poll_seconds = -1;
	rc = metrics_write(path, &m, 1);
	umask(old);
	return rc;
}

static void
dir_remove(const struct dir *d, const char *extra)
{
	char p[192];

	if (extra != NULL) {
		snprintf(p, sizeof(p), "%s/%s", d->path, extra);
		unlink(p);
	}
	unlink(d->tmp);
	unlink(d->prom);
	rmdir(d->prom);
	assert_int_equal(rmdir(d->path), 0);
}

static void
test_stale_tmp_is_not_reused(void **state)
{
	char buf[4096];
	struct stat sb;
	struct dir d = { 0 };

	(void)state;
	dir_make(&d);
	put(d.tmp, "someone else's\n");
	assert_int_equal(write_one(d.prom), 0);
	get(d.tmp, buf, sizeof(buf));
	assert_string_equal(buf, "someone else's\n");
	get(d.prom, buf, sizeof(buf));
	assert_non_null(strstr(buf,
	    "agentsyncd_runs{source=\"cg\",kind="
	    "\"codegen\"} 7\n"));
	assert_int_equal(stat(d.prom, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0644); /* umask 077 */
	/* written again over the first: still no temporary left */
	assert_int_equal(write_one(d.prom), 0);
	dir_list(&d, buf, sizeof(buf));
	assert_string_equal(buf, "agentsyncd.prom agentsyncd.prom.tmp ");
	dir_remove(&d, NULL);
}

static void
test_symlink_at_tmp_is_not_in_the_way(void **state)
{
	char buf[4096], victim[128];
	struct dir d = { 0 };

	(void)state;
	dir_make(&d);
	snprintf(victim, sizeof(victim), "%s/victim", d.path);
	put(victim, "keep\n");
	assert_int_equal(symlink(victim, d.tmp), 0);
	if (write_one(d.prom) != 0)
		fail_msg("a symbolic link at PATH.tmp stopped the metrics: %m");
	get(victim, buf, sizeof(buf));
	assert_string_equal(buf, "keep\n");
	get(d.prom, buf, sizeof(buf));
	assert_non_null(strstr(buf, "# TYPE agentsyncd_runs gauge\n"));
	dir_list(&d, buf, sizeof(buf));
	assert_string_equal(buf, "agentsyncd.prom agentsyncd.prom.tmp victim ");
	dir_remove(&d, "victim");
}

/* The rename fails (the target is a directory): -1, the temporary gone,
 * someone else's PATH.tmp still there. */
static void
test_failure_removes_only_its_temporary(void **state)
{
	char buf[4096];
	struct dir d = { 0 };

	(void)state;
	dir_make(&d);
	assert_int_equal(mkdir(d.prom, 0755), 0);
	put(d.tmp, "someone else's\n");
	assert_int_equal(write_one(d.prom), -1);
	dir_list(&d, buf, sizeof(buf));
	assert_string_equal(buf, "agentsyncd.prom agentsyncd.prom.tmp ");
	get(d.tmp, buf, sizeof(buf));
	assert_string_equal(buf, "someone else's\n");
	dir_remove(&d, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stale_tmp_is_not_reused),
		cmocka_unit_test(test_symlink_at_tmp_is_not_in_the_way),
		cmocka_unit_test(test_failure_removes_only_its_temporary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
