/* SPDX-License-Identifier: ISC */
/*
 * source.c: what the adapters share: looking one up, run state names and
 * time normalization.  (Pages are released by page_free() in json.c,
 * beside the arena they live in.)
 *
 * Times are parsed by hand, not with strptime/timegm, so that neither the
 * locale nor TZ can change a result.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "source.h"

static const char *const state_names[] = {
	[RUN_PENDING] = "pending",
	[RUN_RUNNING] = "running",
	[RUN_WAITING] = "waiting",
	[RUN_SUCCEEDED] = "succeeded",
	[RUN_FAILED] = "failed",
	[RUN_CANCELLED] = "cancelled",
	[RUN_UNKNOWN] = "unknown",
};

const char *
run_state_name(enum run_state state)
{
	if ((unsigned)state >= sizeof(state_names) / sizeof(state_names[0]))
		return "unknown";
	return state_names[state];
}

int
run_state_terminal(enum run_state state)
{
	char quoted[16];

	snprintf(quoted, sizeof(quoted), "'%s'", run_state_name(state));
	return strstr(RUN_TERMINAL_SQL, quoted) != NULL;
}

const struct source_type *
source_type_find(const char *name)
{
	size_t i;

	for (i = 0; source_types[i] != NULL; i++)
		if (strcmp(source_types[i]->name, name) == 0)
			return source_types[i];
	return NULL;
}

void
source_type_names(char *buf, size_t len)
{
	size_t i, off = 0;
	int n;

	buf[0] = '\0';
	for (i = 0; source_types[i] != NULL && off < len; i++) {
		n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "",
		    source_types[i]->name);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

/* Read exactly n digits. */
static int
digits(const char **p, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

/* Write v (0 <= v < 10^n) as exactly n digits. */
static void
put_digits(char *out, int v, int n)
{
	while (n-- > 0) {
		out[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

static void
format_ms(int64_t ms, char *out)
{
	int64_t days, rem;
	int y, mo, d;

	days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
	rem = ms - days * 86400000;
	civil_from_days(days, &y, &mo, &d);
	if (y < 1 || y > 9999) {
		out[0] = '\0';
		return;
	}
	/* Digits by hand: snprintf was a tenth of an idle poll's
	 * instructions (callgrind), two timestamps a run. */
	put_digits(out, y, 4);
	out[4] = '-';
	put_digits(out + 5, mo, 2);
	out[7] = '-';
	put_digits(out + 8, d, 2);
	out[10] = 'T';
	put_digits(out + 11, (int)(rem / 3600000), 2);
	out[13] = ':';
	put_digits(out + 14, (int)(rem / 60000 % 60), 2);
	out[16] = ':';
	put_digits(out + 17, (int)(rem / 1000 % 60), 2);
	out[19] = '.';
	put_digits(out + 20, (int)(rem % 1000), 3);
	out[23] = 'Z';
	out[TS_LEN - 1] = '\0';
}

/* ":SS" and an optional fraction at *pp, if any (else 0 and 0), into *s
 * and *ms: 0, or -1. */
static int
parse_seconds(const char **pp, int *s, int *ms)
{
	const char *p = *pp;
	int n;

	*s = 0;
	*ms = 0;
	if (*p != ':')
		return 0;
	p++;
	if (digits(&p, 2, s))
		return -1;
	if (*p == '.' || *p == ',') {
		p++;
		for (n = 0; *p >= '0' && *p <= '9'; n++, p++) {
			if (n >= 9)
				return -1;
			if (n < 3)
				*ms = *ms * 10 + (*p - '0');
		}
		if (n == 0)
			return -1;
		for (; n < 3; n++)
			*ms *= 10;
	}
	*pp = p;
	return 0;
}

/* "Z", "+HH:MM", "-HHMM", "+HH" or nothing at *pp into *oh and *om (signed
 * hours and minutes east of UTC): 0, or -1. */
static int
parse_zone(const char **pp, int *oh, int *om)
{
	const char *p = *pp;
	int sign;

	*oh = 0;
	*om = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (digits(&p, 2, oh))
			return -1;
		if (*p == ':') {
			p++;
			if (digits(&p, 2, om))
				return -1;
		} else if (*p >= '0' && *p <= '9') {
			if (digits(&p, 2, om))
				return -1;
		}
		if (*oh > 23 || *om > 59)
			return -1;
		*oh *= sign;
		*om *= sign;
	}
	*pp = p;
	return 0;
}

/* Parse as time_normalize() does, into milliseconds since the epoch. */
static int
time_parse_ms(const char *text, int64_t *ms_out)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
		31 };
	const char *p = text;
	int y, mo, d, h, mi, s, ms, oh, om, leap;
	int64_t t;

	if (text == NULL)
		return -1;
	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) ||
	    *p++ != '-' || digits(&p, 2, &d))
		return -1;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return -1;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) ||
	    parse_seconds(&p, &s, &ms) || parse_zone(&p, &oh, &om))
		return -1;
	if (*p != '\0')
		return -1;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	/* A leap second (:60) is refused: no upstream of ours emits one,
	 * and folding it into :59 would invent a time. */
	if (y < 1 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] + (mo == 2 && leap) || h > 23 || mi > 59 ||
	    s > 59)
		return -1;
	t = days_from_civil(y, mo, d) * 86400000 +
	    ((int64_t)h * 3600 + (int64_t)mi * 60 + s - (int64_t)oh * 3600 -
		(int64_t)om * 60) *
		1000 +
	    ms;
	*ms_out = t;
	return 0;
}

int
time_normalize(const char *text, char *out)
{
	int64_t ms;

	out[0] = '\0';
	if (time_parse_ms(text, &ms) == -1)
		return -1;
	format_ms(ms, out);
	return out[0] != '\0' ? 0 : -1;
}

int
time_to_unix(const char *text, double *unix_seconds)
{
	int64_t ms;

	if (time_parse_ms(text, &ms) == -1)
		return -1;
	*unix_seconds = (double)ms / 1000.0;
	return 0;
}

void
time_format(double unix_seconds, char *out)
{
	format_ms((int64_t)floor(unix_seconds * 1000.0), out);
}

static int
github_owner_char(char c, int in_name)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' ||
	    (in_name && (c == '.' || c == '_'));
}

/* Past one path segment of allowed characters, or NULL when empty. */
static const char *
github_segment(const char *p, int in_name)
{
	const char *s = p;

	while (github_owner_char(*p, in_name))
		p++;
	return p > s && *p == '/' ? p : NULL;
}

int
github_pr_parse(const char *url, char *repo, int64_t *number)
{
	static const char *const prefixes[] = { "https://github.com/",
		"https://www.github.com/", "http://github.com/",
		"http://www.github.com/" };
	const char *p = NULL, *owner, *slash, *end;
	size_t i, len;
	int64_t n = 0;

	repo[0] = '\0';
	*number = 0;
	if (url == NULL)
		return -1;
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		len = strlen(prefixes[i]);
		if (strncasecmp(url, prefixes[i], len) == 0) {
			p = url + len;
			break;
		}
	}
	if (p == NULL || (slash = github_segment(owner = p, 0)) == NULL ||
	    (end = github_segment(slash + 1, 1)) == NULL ||
	    strncmp(end, "/pull/", 6) != 0)
		return -1;
	/* NAME "." and ".." are not repositories */
	if ((end - slash - 1 == 1 && slash[1] == '.') ||
	    (end - slash - 1 == 2 && slash[1] == '.' && slash[2] == '.'))
		return -1;
	len = (size_t)(end - owner);
	if (len >= GITHUB_REPO_LEN)
		return -1;
	p = end + 6;
	if (*p < '1' || *p > '9')
		return -1;
	for (i = 0; p[i] >= '0' && p[i] <= '9'; i++) {
		if (i >= 15) /* stays below 2^53 */
			return -1;
		n = n * 10 + (p[i] - '0');
	}
	if (p[i] != '\0' && p[i] != '/' && p[i] != '?' && p[i] != '#')
		return -1;
	memcpy(repo, owner, len);
	repo[len] = '\0';
	*number = n;
	return 0;
}
