/* SPDX-License-Identifier: ISC */
/*
 * log.c: leveled logging to stderr, journald-aware, with secret redaction.
 *
 * systemd connects a service's stderr to the journal and says so through
 * JOURNAL_STREAM="DEV:INODE"; when that matches stderr we prefix each line
 * with "<N>" (sd-daemon(3)) so the journal records the priority, and leave
 * the timestamp to the journal.  Anywhere else a line is
 * "2026-11-24T20:11:03.123Z warning: message".
 *
 * This is not a general logging library: one line per call, no buffering,
 * no files.  Lines longer than LOG_LINE_MAX are cut.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

#define LOG_LINE_MAX 4096

static enum log_level log_level = LOG_LEVEL_INFO;
static int log_journal;
/* Tokens of every source; a cap no configuration reaches (one a source). */
#define LOG_SECRETS_MAX 65536
static char **log_secrets;
static size_t log_nsecrets, log_secrets_cap;

void
log_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char *end;

	log_journal = 0;
	if (js == NULL)
		return;
	errno = 0;
	dev = strtoull(js, &end, 10);
	if (errno != 0 || end == js || *end != ':')
		return;
	ino = strtoull(end + 1, &end, 10);
	if (errno != 0 || *end != '\0')
		return;
	if (fstat(STDERR_FILENO, &st) == -1)
		return;
	if ((unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino)
		log_journal = 1;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

const char *
log_journal_prefix(enum log_level level)
{
	static const char *const prefixes[8] = { "<0>", "<1>", "<2>", "<3>",
		"<4>", "<5>", "<6>", "<7>" };

	return log_journal ? prefixes[level & 7] : "";
}

int
log_level_parse(const char *name)
{
	if (strcmp(name, "error") == 0)
		return LOG_LEVEL_ERROR;
	if (strcmp(name, "warning") == 0 || strcmp(name, "warn") == 0)
		return LOG_LEVEL_WARNING;
	if (strcmp(name, "info") == 0)
		return LOG_LEVEL_INFO;
	if (strcmp(name, "debug") == 0)
		return LOG_LEVEL_DEBUG;
	return -1;
}

int
log_add_secret(const char *secret)
{
	size_t i;

	if (secret == NULL || *secret == '\0')
		return 0;
	if (strlen(secret) > LOG_SECRET_MAX)
		return -1;
	for (i = 0; i < log_nsecrets; i++)
		if (strcmp(log_secrets[i], secret) == 0)
			return 0;
	if (buf_grow((void **)&log_secrets, &log_secrets_cap, log_nsecrets + 1,
		sizeof(*log_secrets), LOG_SECRETS_MAX) == -1)
		return -1;
	log_secrets[log_nsecrets] = strdup(secret);
	if (log_secrets[log_nsecrets] == NULL)
		return -1;
	log_nsecrets++;
	return 0;
}

void
log_clear_secrets(void)
{
	size_t i;

	for (i = 0; i < log_nsecrets; i++) {
		explicit_bzero(log_secrets[i], strlen(log_secrets[i]));
		free(log_secrets[i]);
		log_secrets[i] = NULL;
	}
	log_nsecrets = 0;
}

void
log_redact(char *buf)
{
	static const char mark[] = "[REDACTED]";
	size_t i, slen, mlen = sizeof(mark) - 1;
	char *p;

	for (i = 0; i < log_nsecrets; i++) {
		slen = strlen(log_secrets[i]);
		p = buf;
		while ((p = strstr(p, log_secrets[i])) != NULL) {
			if (slen >= mlen) {
				memcpy(p, mark, mlen);
				memmove(p + mlen, p + slen,
				    strlen(p + slen) + 1);
				p += mlen;
			} else {
				/* A short secret: mask it in place. */
				memset(p, '*', slen);
				p += slen;
			}
		}
	}
}

void
log_excerpt(const char *p, size_t len, size_t max, char *out, size_t outlen)
{
	char raw[LOG_EXCERPT_MAX + LOG_SECRET_MAX + 1];
	size_t i, n, j = 0;

	if (outlen == 0)
		return;
	/* Redact before cutting: a secret that starts inside the excerpt
	 * lies wholly in raw.  A NUL would end the redaction's view. */
	if (max > LOG_EXCERPT_MAX)
		max = LOG_EXCERPT_MAX;
	n = len < max + LOG_SECRET_MAX ? len : max + LOG_SECRET_MAX;
	for (i = 0; i < n; i++) {
		raw[i] = p[i];
		if (raw[i] == '\0')
			raw[i] = '?';
	}
	raw[n] = '\0';
	log_redact(raw);
	for (i = 0; i < max && raw[i] != '\0' && j + 5 < outlen; i++) {
		unsigned char ch = (unsigned char)raw[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			out[j++] = (char)ch;
		else
			j += (size_t)snprintf(out + j, outlen - j, "\\x%02x",
			    ch);
	}
	out[j] = '\0';
}

/* The length of the UTF-8 sequence at p (1 to 4), or 0 when the bytes
 * there are not one (RFC 3629: no overlong forms, no surrogates). */
static size_t
utf8_len(const unsigned char *p)
{
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		return (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (p[0] >= 0xe0 && p[0] <= 0xef) {
		if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[0] == 0xe0 && p[1] < 0xa0) ||
		    (p[0] == 0xed && p[1] >= 0xa0))
			return 0;
		return 3;
	}
	if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80 || (p[0] == 0xf0 && p[1] < 0x90) ||
		    (p[0] == 0xf4 && p[1] >= 0x90))
			return 0;
		return 4;
	}
	return 0;
}

void
log_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t n;

	while (*p != '\0') {
		n = utf8_len(p);
		if (n == 0) {
			*p++ = '?'; /* a lone byte 0x80-0xff: C1 to some */
		} else if (n == 2 && p[0] == 0xc2 && p[1] <= 0x9f) {
			p[0] = p[1] = '?'; /* U+0080-U+009F: C1 controls */
			p += 2;
		} else if (n > 1) {
			p += n;
		} else {
			if (*p == '\n' || *p == '\r' || *p == '\t')
				*p = ' ';
			else if (*p < 0x20 || *p == 0x7f)
				*p = '?';
			p++;
		}
	}
}

void
log_duration(double secs, int parts, char *buf, size_t len)
{
	static const struct {
		long secs;
		char name;
	} unit[] = { { 3600, 'h' }, { 60, 'm' }, { 1, 's' } };
	size_t i = 0;
	long s;

	if (parts == 1) {
		while (i < 2 && !(secs >= 2.0 * (double)unit[i].secs))
			i++;
		snprintf(buf, len, "%.0f%c", secs / (double)unit[i].secs,
		    unit[i].name);
		return;
	}
	s = secs > 0 && secs < 1e9 ? (long)(secs + 0.5) : 0;
	while (i < 2 && s < unit[i].secs)
		i++;
	if (i == 2)
		snprintf(buf, len, "%lds", s);
	else
		snprintf(buf, len, "%ld%c%02ld%c", s / unit[i].secs,
		    unit[i].name, s % unit[i].secs / unit[i + 1].secs,
		    unit[i + 1].name);
}

static void __attribute__((format(printf, 2, 0)))
log_vwrite(enum log_level level, const char *fmt, va_list ap,
    const char *suffix)
{
	static const char *names[8] = { "emerg", "alert", "crit", "error",
		"warning", "notice", "info", "debug" };
	/* Formatted with room for a whole secret past the cut, redacted,
	 * then cut: cutting first could leave a secret's head behind. */
	char line[LOG_LINE_MAX + LOG_SECRET_MAX], ts[32];
	struct timeval tv;
	struct tm tm;
	size_t len;
	int saved = errno;

	if (level > log_level) {
		errno = saved;
		return;
	}
	vsnprintf(line, sizeof(line), fmt, ap);
	if (suffix != NULL) {
		len = strlen(line);
		snprintf(line + len, sizeof(line) - len, ": %s", suffix);
	}
	log_redact(line);
	line[LOG_LINE_MAX - 1] = '\0';
	/* One line per call: a newline from upstream text must not forge
	 * one, nor an escape sequence reach an operator's terminal. */
	log_sanitize(line);
	if (log_journal) {
		fprintf(stderr, "<%d>%s\n", (int)level, line);
	} else {
		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03dZ %s: %s\n", ts,
		    (int)(tv.tv_usec / 1000), names[level], line);
	}
	fflush(stderr);
	errno = saved;
}

#define LOG_FN(fn, level)                         \
	void fn(const char *fmt, ...)             \
	{                                         \
		va_list ap;                       \
                                                  \
		va_start(ap, fmt);                \
		log_vwrite(level, fmt, ap, NULL); \
		va_end(ap);                       \
	}

LOG_FN(log_error, LOG_LEVEL_ERROR)
LOG_FN(log_warnx, LOG_LEVEL_WARNING)
LOG_FN(log_info, LOG_LEVEL_INFO)
LOG_FN(log_debug, LOG_LEVEL_DEBUG)

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_WARNING, fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
