/* SPDX-License-Identifier: ISC */
/*
 * reload.c: the daemon's answer to a reload, and the ExecReload= client
 * that waits for it (see reload.h).  Not a control channel: one file, one
 * line, written with rename() so that a reader sees the old answer or the
 * new one, never half of one.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "reload.h"

#define ANSWER_MAX 512

/* "$RUNTIME_DIRECTORY/reload" (its first entry: the variable may list
 * several, separated by ':'), or -1. */
static int
answer_path(char *buf, size_t len, const char *suffix)
{
	const char *dir = getenv("RUNTIME_DIRECTORY");
	size_t n;
	int w;

	if (dir == NULL || *dir != '/')
		return -1;
	n = strcspn(dir, ":");
	w = snprintf(buf, len, "%.*s/reload%s", (int)n, dir, suffix);
	return w < 0 || (size_t)w >= len ? -1 : 0;
}

void
reload_answer(unsigned long seq, int ok, const char *why)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	FILE *f;
	int rc;

	if (answer_path(path, sizeof(path), "") == -1 ||
	    answer_path(tmp, sizeof(tmp), ".tmp") == -1)
		return;
	f = fopen(tmp, "we");
	if (f == NULL) {
		log_warn("cannot write the reload answer '%s'", tmp);
		return;
	}
	if (ok)
		fprintf(f, "%ld.%lu ok\n", (long)getpid(), seq);
	else
		fprintf(f, "%ld.%lu refused: %s\n", (long)getpid(), seq, why);
	rc = ferror(f);
	if (fclose(f) != 0 || rc != 0 || rename(tmp, path) == -1) {
		log_warn("cannot write the reload answer '%s'", path);
		(void)unlink(tmp);
	}
}

/* The answer's first line into buf ("" when there is none yet). */
static void
read_answer(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");

	buf[0] = '\0';
	if (f == NULL)
		return;
	if (fgets(buf, (int)len, f) == NULL)
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

int
reload_request(void)
{
	char path[PATH_MAX], before[ANSWER_MAX], now[ANSWER_MAX], *end;
	const char *mainpid = getenv("MAINPID"), *verdict;
	struct timespec tick = { 0, 50 * 1000 * 1000 };
	long pid;
	int i;

	errno = 0;
	pid = mainpid != NULL ? strtol(mainpid, &end, 10) : 0;
	if (mainpid == NULL || errno != 0 || *end != '\0' || pid <= 1 ||
	    answer_path(path, sizeof(path), "") == -1) {
		fprintf(stderr,
		    "%sagentsyncd: --reload is run by systemd (ExecReload=), which sets $MAINPID and $RUNTIME_DIRECTORY; use: systemctl reload agentsyncd\n",
		    log_journal_prefix(LOG_LEVEL_ERROR));
		return 64;
	}
	read_answer(path, before, sizeof(before));
	if (kill((pid_t)pid, SIGHUP) == -1) {
		fprintf(stderr, "%sagentsyncd: cannot signal PID %ld: %s\n",
		    log_journal_prefix(LOG_LEVEL_ERROR), pid, strerror(errno));
		return 1;
	}
	for (i = 0; i < RELOAD_WAIT * 20; i++) {
		nanosleep(&tick, NULL);
		read_answer(path, now, sizeof(now));
		if (now[0] == '\0' || strcmp(now, before) == 0)
			continue;
		verdict = strchr(now, ' ');
		verdict = verdict != NULL ? verdict + 1 : now;
		if (strcmp(verdict, "ok") == 0) {
			printf("configuration reloaded\n");
			return 0;
		}
		fprintf(stderr, "%sagentsyncd: reload %s\n",
		    log_journal_prefix(LOG_LEVEL_ERROR), verdict);
		return 1;
	}
	fprintf(stderr,
	    "%sagentsyncd: no answer to the reload from PID %ld in %d s\n",
	    log_journal_prefix(LOG_LEVEL_ERROR), pid, RELOAD_WAIT);
	return 1;
}
