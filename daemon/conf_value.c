/* SPDX-License-Identifier: ISC */
/*
 * conf_value.c: a key's value as written into its typed place in struct
 * conf or struct conf_source: durations, bounded integers, page_size (as
 * the adapter allows it) and rate_limit, or the key's default when it is
 * not given.
 *
 * It is not the parser (conf.c reads the file and decides which key a
 * value belongs to) nor the checks of what a value names (conf_check.c).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_int.h"
#include "source.h"

/* The value of key in the struct at base (struct conf or conf_source). */
void *
conf_key_at(void *base, const struct conf_key *key)
{
	return (char *)base + key->offset;
}

int
conf_parse_int(const char *text, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (text == NULL || !(isdigit((unsigned char)*text) || *text == '-'))
		return -1;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
conf_parse_duration(const char *text, double *seconds)
{
	char *end;
	double v, mult;

	if (text == NULL || !isdigit((unsigned char)*text))
		return -1;
	errno = 0;
	v = strtod(text, &end);
	if (errno != 0 || !isfinite(v) || v < 0)
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		mult = 1;
	else if (strcmp(end, "ms") == 0)
		mult = 0.001;
	else if (strcmp(end, "m") == 0)
		mult = 60;
	else if (strcmp(end, "h") == 0)
		mult = 3600;
	else if (strcmp(end, "d") == 0)
		mult = 86400;
	else
		return -1;
	v *= mult;
	if (v > 366.0 * 86400 * 100) /* a century is plenty */
		return -1;
	*seconds = v;
	return 0;
}

/* A duration key at its offset in base: the default, or the value. */
void
conf_duration_key(struct ctx *ctx, const struct kv *kv, void *base)
{
	const struct conf_key *k = kv->key;
	double v;

	if (conf_parse_duration(k->dflt, &v) == -1)
		v = 0; /* not reached: every default is a duration */
	if (kv->val != NULL && conf_parse_duration(kv->val, &v) == -1)
		conf_problem(ctx, kv->line, "%s '%s' is not a duration (%s)",
		    k->name, kv->val,
		    k->hint != NULL ? k->hint :
				      "like 45, 45s, 250ms, 5m, 2h, 1d");
	else if (kv->val != NULL && v < k->min)
		conf_problem(ctx, kv->line, "%s must be at least %gs", k->name,
		    k->min);
	memcpy(conf_key_at(base, k), &v, sizeof(v));
}

/* An integer key from min to the key's max at its offset in base: the
 * default, or the value. */
void
conf_int_key(struct ctx *ctx, const struct kv *kv, long long min, void *base)
{
	const struct conf_key *k = kv->key;
	long long v;
	int out;

	if (conf_parse_int(k->dflt, min, (long long)k->max, &v) == -1)
		v = 0; /* not reached: every default is within its bounds */
	if (kv->val != NULL &&
	    conf_parse_int(kv->val, min, (long long)k->max, &v) == -1)
		conf_problem(ctx, kv->line,
		    "%s '%s' must be an integer from %lld to %lld", k->name,
		    kv->val, min, (long long)k->max);
	out = (int)v;
	memcpy(conf_key_at(base, k), &out, sizeof(out));
}

/*
 * page_size: 1..100, but at least 2 where the adapter takes any offset:
 * there each page after the first starts with the previous page's last
 * item (the drift check), so a page of one would hold only that item and
 * the walk would never move.
 */
void
conf_page_size_key(struct ctx *ctx, const struct kv *kv, struct conf_source *s)
{
	const struct kv dflt = { kv->key, NULL, kv->line };
	long long v, min = (long long)kv->key->min;

	if (!s->type->any_offset) {
		conf_int_key(ctx, kv, min, s);
	} else if (conf_parse_int(kv->val, 1, 1, &v) == 0) {
		conf_int_key(ctx, &dflt, min, s);
		conf_problem(ctx, kv->line,
		    "page_size '%s' must be an integer from 2 to %lld for %s sources: each page repeats the last run of the page before it, so a page of 1 would never move on",
		    kv->val, (long long)kv->key->max, s->type->name);
	} else {
		conf_int_key(ctx, kv, min > 2 ? min : 2, s);
	}
}

/* rate_limit = N/DURATION or off; the adapter's default otherwise. */
void
conf_rate_key(struct ctx *ctx, const struct kv *kv, struct conf_source *s)
{
	const char *p = kv->val, *slash;
	char num[32];
	long long v;
	double win;

	s->rate_requests = s->type->rate_requests;
	s->rate_window = s->type->rate_window;
	if (p == NULL)
		return;
	if (strcmp(p, "0") == 0 || strcmp(p, "off") == 0) {
		s->rate_requests = 0;
		s->rate_window = 0;
		return;
	}
	slash = strchr(p, '/');
	if (slash == NULL || (size_t)(slash - p) >= sizeof(num) ||
	    (memcpy(num, p, (size_t)(slash - p)), num[slash - p] = '\0',
		conf_parse_int(num, (long long)kv->key->min,
		    (long long)kv->key->max, &v)) == -1 ||
	    conf_parse_duration(slash + 1, &win) == -1 || win <= 0) {
		conf_problem(ctx, kv->line,
		    "rate_limit '%s' must be REQUESTS/DURATION (like 60/30s) or off",
		    p);
		return;
	}
	s->rate_requests = (int)v;
	s->rate_window = win;
}
