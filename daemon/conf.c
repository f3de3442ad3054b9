/* SPDX-License-Identifier: ISC */
/*
 * conf.c: agentsyncd.conf -> struct conf, with every problem reported as
 * "FILE:LINE: message".
 *
 * Debian's inih is built without INI_HANDLER_LINENO, so the line reader
 * handed to ini_parse_stream() counts lines itself; it also notes every
 * section header, because inih does not call the handler for a section
 * without keys, and a repeated header would otherwise merge silently.
 * Values are collected first and checked once the whole file is read, when
 * each source's type (and so its defaults) is known.
 *
 * This file holds the table of keys, the reading of the file and what is
 * answered from the table (reload equality, defaults).  A value into its
 * typed place is conf_value.c; what a value names outside the file (URLs,
 * directories, the file's mode) is checked in conf_check.c; the token_*
 * keys are read in conf_token.c.  They share conf_int.h.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "buf.h"
#include "conf.h"
#include "conf_int.h"
#include "log.h"
#include "source.h"

#define MAX_SOURCES  1024		/* [source NAME] sections in one file */
#define MAX_SECTIONS (MAX_SOURCES + 64) /* headers of any kind */

#define SRC(m) offsetof(struct conf_source, m)
#define TOP(m) offsetof(struct conf, m)
#define D      CONF_SECTION_DAEMON
#define S      CONF_SECTION_SOURCE

/*
 * Every key, in the order its problems are reported.  A [source NAME]
 * section's keys are parsed after its type (base_url, org_id, page_size,
 * rate_limit depend on the adapter), proxy after base_url (a loopback one
 * is never proxied).
 */
const struct conf_key conf_keys[] = {
	/* name, section, kind, offset, default, min, max, reload, hint */
	{ "database", D, CONF_KIND_DATABASE, TOP(database),
	    "/var/lib/agentsyncd/agentsyncd.db", 0, 0, CONF_RELOAD_REFUSED,
	    NULL },
	{ "database_schema", D, CONF_KIND_SCHEMA, TOP(database_schema),
	    "agentsyncd", 0, 0, CONF_RELOAD_REFUSED, NULL },
	{ "database_password_file", D, CONF_KIND_DB_PASSWORD_FILE,
	    TOP(database_password), NULL, 0, 0, CONF_RELOAD_REFUSED, NULL },
	{ "database_password_credential", D, CONF_KIND_DB_PASSWORD_CREDENTIAL,
	    TOP(database_password), NULL, 0, 0, CONF_RELOAD_REFUSED, NULL },
	{ "log_level", D, CONF_KIND_LOG_LEVEL, TOP(log_level), "info", 0, 0,
	    CONF_RELOAD_APPLY, NULL },
	{ "history_retention", D, CONF_KIND_DURATION, TOP(history_retention),
	    "90d", 0, 0, CONF_RELOAD_APPLY, "0 keeps everything" },
	{ "metrics_file", D, CONF_KIND_METRICS, TOP(metrics_file), NULL, 0, 0,
	    CONF_RELOAD_APPLY, NULL },
	{ "type", S, CONF_KIND_TYPE, SRC(type), NULL, 0, 0, CONF_RELOAD_RESTART,
	    NULL },
	{ "base_url", S, CONF_KIND_URL, SRC(base_url), NULL, 0, 0,
	    CONF_RELOAD_RESTART, NULL },
	{ "proxy", S, CONF_KIND_PROXY, SRC(proxy_mode), "none", 0, 0,
	    CONF_RELOAD_RESTART, NULL },
	{ "org_id", S, CONF_KIND_ORG_ID, SRC(org_id), NULL, 1, 0, /* no max */
	    CONF_RELOAD_RESTART, NULL },
	{ "token_env", S, CONF_KIND_TOKEN_ENV, SRC(token), NULL, 0, 0,
	    CONF_RELOAD_RESTART, NULL },
	{ "token_file", S, CONF_KIND_TOKEN_FILE, SRC(token), NULL, 0, 0,
	    CONF_RELOAD_RESTART, NULL },
	{ "token_credential", S, CONF_KIND_TOKEN_CREDENTIAL, SRC(token), NULL,
	    0, 0, CONF_RELOAD_RESTART, NULL },
	{ "token", S, CONF_KIND_TOKEN, SRC(token), NULL, 0, 0,
	    CONF_RELOAD_RESTART, NULL },
	{ "poll_interval", S, CONF_KIND_DURATION, SRC(poll_interval), "60s", 1,
	    0, CONF_RELOAD_RESTART, NULL },
	{ "page_size", S, CONF_KIND_PAGE_SIZE, SRC(page_size), "100", 1, 100,
	    CONF_RELOAD_RESTART, NULL },
	{ "rate_limit", S, CONF_KIND_RATE, SRC(rate_requests), NULL, 1, 100000,
	    CONF_RELOAD_RESTART, NULL },
	{ "refresh_window", S, CONF_KIND_DURATION, SRC(refresh_window), "24h",
	    0, 0, CONF_RELOAD_RESTART, NULL },
	{ "refresh_max_interval", S, CONF_KIND_DURATION,
	    SRC(refresh_max_interval), "5m", 0.001, 0, CONF_RELOAD_RESTART,
	    NULL },
	{ "full_resync_interval", S, CONF_KIND_DURATION,
	    SRC(full_resync_interval), "24h", 0, 0, CONF_RELOAD_RESTART, NULL },
	{ "backoff_initial", S, CONF_KIND_DURATION, SRC(backoff_initial), "1s",
	    0.001, 0, CONF_RELOAD_RESTART, NULL },
	{ "backoff_max", S, CONF_KIND_DURATION, SRC(backoff_max), "5m", 0.001,
	    0, CONF_RELOAD_RESTART, NULL },
	{ "max_retries", S, CONF_KIND_INT, SRC(max_retries), "5", 0, 1000,
	    CONF_RELOAD_RESTART, NULL },
	{ "max_pass_pages", S, CONF_KIND_INT, SRC(max_pass_pages), "100000", 1,
	    100000000, CONF_RELOAD_RESTART, NULL },
	{ "requests_in_flight", S, CONF_KIND_INT, SRC(requests_in_flight), "4",
	    1, CONF_MAX_IN_FLIGHT, CONF_RELOAD_RESTART, NULL },
	{ "auth_backoff", S, CONF_KIND_DURATION, SRC(auth_backoff), "15m", 1, 0,
	    CONF_RELOAD_RESTART, NULL },
	{ "request_timeout", S, CONF_KIND_DURATION, SRC(request_timeout), "60s",
	    1, 0, CONF_RELOAD_RESTART, NULL },
	{ "request_deadline", S, CONF_KIND_DURATION, SRC(request_deadline),
	    "2m", 1, 0, CONF_RELOAD_RESTART, NULL },
};

#define NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

const size_t conf_nkeys = NKEYS;

#undef SRC
#undef TOP
#undef D
#undef S

/* The values of one section as written, by key (index in conf_keys). */
struct raw_source {
	char *section; /* "source NAME" as written */
	int line;      /* of the header */
	char *val[NKEYS];
	int vline[NKEYS];
};

/* The value of key in the struct at base (struct conf or conf_source). */
static const void *
key_at_c(const void *base, const struct conf_key *key)
{
	return (const char *)base + key->offset;
}

static void __attribute__((format(printf, 4, 0))) report(struct ctx *ctx,
    enum log_level level, int line, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* Values from the file are quoted in messages: a control character
	 * in one must not break the one-line FILE:LINE: form, nor reach the
	 * terminal (log_sanitize: C0, C1, bytes that are not UTF-8). */
	for (char *p = msg; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = '?';
	log_sanitize(msg);
	/* Under systemd (ExecReload=, a failed start) the journal keeps the
	 * line's priority, so `journalctl -p err` shows why. */
	fprintf(ctx->errf, "%s%s:%d: %s%s\n",
	    ctx->errf == stderr ? log_journal_prefix(level) : "", ctx->path,
	    line, level == LOG_LEVEL_ERROR ? "" : "note: ", msg);
}

/* A problem: the file is refused. */
void
conf_problem(struct ctx *ctx, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(ctx, LOG_LEVEL_ERROR, line, fmt, ap);
	va_end(ap);
	ctx->errors++;
}

/* Something --check-config cannot see from where it runs: said, not
 * counted as a problem. */
void
conf_note(struct ctx *ctx, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(ctx, LOG_LEVEL_NOTICE, line, fmt, ap);
	va_end(ap);
}

int
conf_source_name_ok(const char *name)
{
	return *name != '\0' && strlen(name) <= 64 &&
	    strspn(name,
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") ==
	    strlen(name);
}

const char *
conf_type_name(const struct conf_source *src)
{
	return src->type->name;
}

/* 1 when key k has the same value in a and b (struct conf or conf_source,
 * as k's section says). */
static int
key_same(const struct conf_key *k, const void *a, const void *b)
{
	const void *pa = key_at_c(a, k), *pb = key_at_c(b, k);
	const struct conf_source *sa = a, *sb = b;
	const char *stra, *strb;

	switch (k->kind) {
	case CONF_KIND_DURATION:
		return *(const double *)pa == *(const double *)pb;
	case CONF_KIND_ORG_ID:
		return *(const int64_t *)pa == *(const int64_t *)pb;
	case CONF_KIND_TYPE:
		return sa->type == sb->type;
	case CONF_KIND_RATE:
		return sa->rate_requests == sb->rate_requests &&
		    sa->rate_window == sb->rate_window;
	case CONF_KIND_PROXY:
		return sa->proxy_mode == sb->proxy_mode &&
		    (sa->proxy_mode != PROXY_URL ||
			strcmp(sa->proxy, sb->proxy) == 0);
	case CONF_KIND_INT:
	case CONF_KIND_PAGE_SIZE:
	case CONF_KIND_LOG_LEVEL:
		return *(const int *)pa == *(const int *)pb;
	default: /* strings: base_url, the token, paths */
		stra = *(const char *const *)pa;
		strb = *(const char *const *)pb;
		return stra == strb ||
		    (stra != NULL && strb != NULL && strcmp(stra, strb) == 0);
	}
}

int
conf_source_same(const struct conf_source *a, const struct conf_source *b)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (conf_keys[i].section == CONF_SECTION_SOURCE &&
		    conf_keys[i].reload == CONF_RELOAD_RESTART &&
		    !key_same(&conf_keys[i], a, b))
			return 0;
	return 1;
}

const char *
conf_reload_refused(const struct conf *old, const struct conf *next)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (conf_keys[i].section == CONF_SECTION_DAEMON &&
		    conf_keys[i].reload == CONF_RELOAD_REFUSED &&
		    !key_same(&conf_keys[i], old, next))
			return conf_keys[i].name;
	return NULL;
}

int
conf_key_default(const struct conf_key *k, const struct source_type *t,
    char *buf, size_t len)
{
	if (k->dflt != NULL)
		snprintf(buf, len, "%s", k->dflt);
	else if (k->kind == CONF_KIND_URL && t != NULL)
		snprintf(buf, len, "%s", t->default_base_url);
	else if (k->kind == CONF_KIND_RATE && t != NULL)
		snprintf(buf, len, "%d/%gs", t->rate_requests, t->rate_window);
	else
		return 0;
	return 1;
}

const struct conf_source *
conf_source_find(const struct conf *conf, const char *name)
{
	size_t i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < conf->nsources; i++)
		if (strcmp(conf->sources[i].name, name) == 0)
			return &conf->sources[i];
	return NULL;
}

/* Remember a section header (inih does not call the handler for a
 * section without keys, and a repeated header would merge silently). */
static void
note_section(struct ctx *ctx, const char *line)
{
	const char *p = line, *end;
	struct section *sec;
	size_t len;

	while (isspace((unsigned char)*p))
		p++;
	if (*p != '[' || (end = strchr(p, ']')) == NULL)
		return;
	if (buf_grow((void **)&ctx->sections, &ctx->sections_cap,
		ctx->nsections + 1, sizeof(*ctx->sections),
		MAX_SECTIONS) == -1) {
		if (!ctx->too_many_sections)
			conf_problem(ctx, ctx->lineno,
			    errno == E2BIG ? "more than %d sections" :
					     "out of memory (%d sections)",
			    MAX_SECTIONS);
		ctx->too_many_sections = 1;
		return;
	}
	sec = &ctx->sections[ctx->nsections++];
	len = (size_t)(end - p - 1);
	if (len >= sizeof(sec->name))
		len = sizeof(sec->name) - 1;
	memcpy(sec->name, p + 1, len);
	sec->name[len] = '\0';
	sec->line = ctx->lineno;
}

/*
 * ini_reader: one whole line a call, counted.  inih reads into a buffer of
 * num bytes; fgets would split a longer line and inih parse its tail as a
 * line of its own (a long inline token cut short, or its tail echoed in an
 * "unknown key" message).  Such a line is reported by length only, never
 * echoed, and handed to inih as an empty line.
 *
 * str is inih's line buffer (on its stack in Debian's build): it is wiped
 * before every line and at the end, so no inline token stays in it (inih
 * keeps only section and key names elsewhere).
 */
static char *
conf_reader(char *str, int num, void *stream)
{
	struct ctx *ctx = stream;
	char rest[512];
	size_t len, total, n;

	explicit_bzero(str, (size_t)num);
	if (fgets(str, num, ctx->in) == NULL)
		return NULL;
	ctx->lineno++;
	len = strlen(str);
	if ((len > 0 && str[len - 1] == '\n') || feof(ctx->in)) {
		note_section(ctx, str);
		return str;
	}
	total = len;
	while (fgets(rest, sizeof(rest), ctx->in) != NULL) {
		n = strlen(rest);
		total += n;
		if (n > 0 && rest[n - 1] == '\n') {
			total--;
			break;
		}
	}
	explicit_bzero(rest, sizeof(rest));
	if (total <= (size_t)num - 1) {
		/* only the newline was left: the line fits */
		note_section(ctx, str);
		return str;
	}
	explicit_bzero(str, len);
	conf_problem(ctx, ctx->lineno, "line too long (%zu bytes, at most %d)",
	    total, num - 1);
	return str; /* "" */
}

static int
set_value(struct ctx *ctx, char **slot, int *lslot, const char *section,
    const char *name, const char *value)
{
	if (*slot != NULL) {
		conf_problem(ctx, ctx->lineno,
		    "'%s' given twice in [%s] (first at line %d)", name,
		    section, *lslot);
		return 1;
	}
	*slot = strdup(value);
	*lslot = ctx->lineno;
	if (*slot == NULL)
		conf_problem(ctx, ctx->lineno, "out of memory");
	return 1;
}

static struct raw_source *
raw_for(struct ctx *ctx, const char *section)
{
	struct raw_source *r;
	size_t i, j;

	for (i = 0; i < ctx->nraw; i++)
		if (strcmp(ctx->raw[i].section, section) == 0)
			return &ctx->raw[i];
	if (buf_grow((void **)&ctx->raw, &ctx->raw_cap, ctx->nraw + 1,
		sizeof(*ctx->raw), MAX_SOURCES) == -1)
		return NULL;
	r = &ctx->raw[ctx->nraw];
	memset(r, 0, sizeof(*r));
	r->section = strdup(section);
	if (r->section == NULL)
		return NULL;
	r->line = ctx->lineno;
	for (j = 0; j < ctx->nsections; j++)
		if (strcmp(ctx->sections[j].name, section) == 0) {
			r->line = ctx->sections[j].line;
			break;
		}
	ctx->nraw++;
	return r;
}

/* name = value in section r, a key of the table's section sec. */
static int
set_key(struct ctx *ctx, struct raw_source *r, enum conf_section sec,
    const char *section, const char *name, const char *value)
{
	size_t k;

	for (k = 0; k < NKEYS; k++)
		if (conf_keys[k].section == sec &&
		    strcmp(name, conf_keys[k].name) == 0)
			return set_value(ctx, &r->val[k], &r->vline[k], section,
			    name, value);
	conf_problem(ctx, ctx->lineno, "unknown key '%s' in [%s]", name,
	    section);
	return 1;
}

/* ini_handler */
static int
conf_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct ctx *ctx = user;
	struct raw_source *r;

	if (strcmp(section, "agentsyncd") == 0)
		return set_key(ctx, ctx->top, CONF_SECTION_DAEMON, section,
		    name, value);
	if (strncmp(section, "source ", 7) != 0)
		return 1; /* reported once, at its header */
	r = raw_for(ctx, section);
	if (r == NULL && errno == E2BIG) {
		conf_problem(ctx, ctx->lineno,
		    "more than %d [source NAME] sections", MAX_SOURCES);
		return 1;
	}
	if (r == NULL) {
		conf_problem(ctx, ctx->lineno, "out of memory");
		return 1;
	}
	return set_key(ctx, r, CONF_SECTION_SOURCE, section, name, value);
}

/* Exactly one token_* key, read into s->token (never logged). */
static void
finish_token(struct ctx *ctx, const struct raw_source *r, struct conf_source *s)
{
	int n = 0, errors = ctx->errors;
	size_t i, k = 0;

	for (i = 0; i < NKEYS; i++)
		if (conf_is_token_kind(conf_keys[i].kind) &&
		    r->val[i] != NULL) {
			n++;
			k = i;
		}
	if (n != 1) {
		conf_problem(ctx, n == 0 ? r->line : r->vline[k],
		    n == 0 ?
			"[%s] needs a token: token_env, token_file, token_credential or token" :
			"[%s] has more than one token_* key",
		    r->section);
		return;
	}
	if (ctx->flags & CONF_NO_TOKENS) {
		s->token = strdup("");
		s->token_origin = strdup("(not read)");
		return;
	}
	conf_read_token(ctx, r->section, conf_keys[k].kind, r->val[k],
	    r->vline[k], s);
	if (s->token == NULL && ctx->errors == errors)
		conf_problem(ctx, r->vline[k], "out of memory");
}

/* type: an adapter.  Returns -1 when there is none. */
static int
type_key(struct ctx *ctx, const struct raw_source *r, const struct kv *kv,
    struct conf_source *s)
{
	char names[256];

	source_type_names(names, sizeof(names));
	if (kv->val == NULL) {
		conf_problem(ctx, r->line, "[%s] has no 'type' (%s)",
		    r->section, names);
		return -1;
	}
	s->type = source_type_find(kv->val);
	if (s->type == NULL) {
		conf_problem(ctx, kv->line, "unknown type '%s' (%s)", kv->val,
		    names);
		return -1;
	}
	return 0;
}

/* org_id as the adapter wants it: required, or refused. */
static void
org_id_key(struct ctx *ctx, const struct raw_source *r, const struct kv *kv,
    struct conf_source *s)
{
	long long v;

	if (!s->type->needs_org_id) {
		if (kv->val != NULL)
			conf_problem(ctx, kv->line,
			    "org_id is not a key of %s sources", s->type->name);
	} else if (kv->val == NULL) {
		conf_problem(ctx, r->line,
		    "[%s] is a %s source and needs org_id", r->section,
		    s->type->name);
	} else if (conf_parse_int(kv->val, (long long)kv->key->min, INT64_MAX,
		       &v) == -1) {
		conf_problem(ctx, kv->line,
		    "org_id '%s' is not a positive integer", kv->val);
	} else {
		s->org_id = v;
	}
}

/* Key i of [source NAME] r into s.  Returns -1 when r has no usable type
 * (nothing else of it is checked). */
static int
source_key(struct ctx *ctx, const struct raw_source *r, size_t i,
    struct conf_source *s)
{
	const struct kv kv = { &conf_keys[i], r->val[i],
		r->val[i] != NULL ? r->vline[i] : r->line };

	switch (kv.key->kind) {
	case CONF_KIND_TYPE:
		return type_key(ctx, r, &kv, s);
	case CONF_KIND_URL:
		s->base_url = conf_check_url(ctx, kv.line,
		    kv.val != NULL ? kv.val : s->type->default_base_url,
		    &ctx->loopback);
		break;
	case CONF_KIND_PROXY:
		conf_check_proxy(ctx, &kv, ctx->loopback, s);
		break;
	case CONF_KIND_ORG_ID:
		org_id_key(ctx, r, &kv, s);
		break;
	case CONF_KIND_DURATION:
		conf_duration_key(ctx, &kv, s);
		break;
	case CONF_KIND_INT:
		conf_int_key(ctx, &kv, (long long)kv.key->min, s);
		break;
	case CONF_KIND_PAGE_SIZE:
		conf_page_size_key(ctx, &kv, s);
		break;
	case CONF_KIND_RATE:
		conf_rate_key(ctx, &kv, s);
		break;
	default: /* the token_* keys, read as one at the first of them */
		if (conf_is_token_kind(kv.key->kind) &&
		    (i == 0 || !conf_is_token_kind(conf_keys[i - 1].kind)))
			finish_token(ctx, r, s);
		break;
	}
	return 0;
}

static void
finish_source(struct ctx *ctx, const struct raw_source *r,
    struct conf_source *s)
{
	const char *name = r->section + 7;
	size_t i;

	s->line = r->line;
	s->org_id = -1;
	if (!conf_source_name_ok(name))
		conf_problem(ctx, r->line,
		    "source name '%s' must be 1-64 of A-Z a-z 0-9 _ . -", name);
	s->name = strdup(name);
	ctx->loopback = 0;
	for (i = 0; i < NKEYS; i++)
		if (conf_keys[i].section == CONF_SECTION_SOURCE &&
		    source_key(ctx, r, i, s) == -1)
			return;
	if (s->backoff_max < s->backoff_initial)
		s->backoff_max = s->backoff_initial;
}

/* Free a section's values, wiping an inline token. */
static void
raw_release(struct raw_source *r)
{
	size_t k;

	for (k = 0; k < NKEYS; k++) {
		if (r->val[k] != NULL && conf_keys[k].kind == CONF_KIND_TOKEN)
			explicit_bzero(r->val[k], strlen(r->val[k]));
		free(r->val[k]);
	}
	free(r->section);
}

static void
ctx_release(struct ctx *ctx)
{
	size_t i;

	for (i = 0; i < ctx->nraw; i++)
		raw_release(&ctx->raw[i]);
	raw_release(ctx->top);
	free(ctx->raw);
	free(ctx->sections);
}

/* Sections: known names, each once. */
static void
check_sections(struct ctx *ctx)
{
	size_t i, j;

	for (i = 0; i < ctx->nsections; i++) {
		const char *name = ctx->sections[i].name;

		if (strcmp(name, "agentsyncd") != 0 &&
		    strncmp(name, "source ", 7) != 0)
			conf_problem(ctx, ctx->sections[i].line,
			    "unknown section [%s] (expected [agentsyncd] or [source NAME])",
			    name);
		for (j = 0; j < i; j++)
			if (strcmp(ctx->sections[j].name, name) == 0) {
				conf_problem(ctx, ctx->sections[i].line,
				    "section [%s] repeats the one at line %d",
				    name, ctx->sections[j].line);
				break;
			}
		/* a [source NAME] without keys still needs checking */
		if (strncmp(name, "source ", 7) == 0)
			(void)raw_for(ctx, name);
	}
}

/* Key i of [agentsyncd] into conf. */
static void
daemon_key(struct ctx *ctx, size_t i, struct conf *conf)
{
	const struct kv kv = { &conf_keys[i], ctx->top->val[i],
		ctx->top->vline[i] };
	const char *v = kv.val != NULL ? kv.val : kv.key->dflt;
	char *str = NULL;
	int lvl;

	switch (kv.key->kind) {
	case CONF_KIND_LOG_LEVEL:
		lvl = log_level_parse(v);
		if (lvl == -1) {
			conf_problem(ctx, kv.line,
			    "%s '%s' must be error, warning, info or debug",
			    kv.key->name, v);
			lvl = log_level_parse(kv.key->dflt);
		}
		memcpy(conf_key_at(conf, kv.key), &lvl, sizeof(lvl));
		break;
	case CONF_KIND_METRICS:
		if (kv.val != NULL)
			str = conf_check_metrics_file(ctx, kv.val, kv.line);
		memcpy(conf_key_at(conf, kv.key), &str, sizeof(str));
		break;
	default:
		if (conf_database_key(ctx, &kv, conf) == 0)
			conf_duration_key(ctx, &kv, conf);
		break;
	}
}

/* [agentsyncd], and the database it names when ctx->flags ask. */
static void
finish_daemon(struct ctx *ctx, struct conf *conf)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (conf_keys[i].section == CONF_SECTION_DAEMON)
			daemon_key(ctx, i, conf);
	for (i = 0; i < NKEYS; i++)
		if (conf_keys[i].kind == CONF_KIND_DATABASE &&
		    (ctx->flags & CONF_CHECK_DATABASE))
			conf_check_database(ctx, conf->database,
			    ctx->top->vline[i]);
}

/* Every [source NAME] into conf->sources.  No source is not an error: a
 * fresh install idles until one is added (main.c says so); --once refuses
 * it. */
static void
finish_sources(struct ctx *ctx, struct conf *conf)
{
	conf->sources = calloc(ctx->nraw ? ctx->nraw : 1,
	    sizeof(*conf->sources));
	if (conf->sources == NULL) {
		conf_problem(ctx, 0, "out of memory");
		return;
	}
	for (; conf->nsources < ctx->nraw; conf->nsources++)
		finish_source(ctx, &ctx->raw[conf->nsources],
		    &conf->sources[conf->nsources]);
}

struct conf *
conf_load(const char *path, FILE *errf, int flags)
{
	struct raw_source top = { 0 };
	struct ctx ctx = { 0 };
	struct conf *conf;
	int rc;

	ctx.top = &top;
	ctx.path = path;
	ctx.flags = flags;
	ctx.errf = errf;
	ctx.in = fopen(path, "re");
	if (ctx.in == NULL) {
		fprintf(errf, "%s%s:0: cannot open: %s\n",
		    errf == stderr ? log_journal_prefix(LOG_LEVEL_ERROR) : "",
		    path, strerror(errno));
		return NULL;
	}
	/* stdio's buffer would hold the file (inline tokens too) freed
	 * unwiped: ours is wiped after fclose */
	setvbuf(ctx.in, ctx.inbuf, _IOFBF, sizeof(ctx.inbuf));
	conf = calloc(1, sizeof(*conf));
	if (conf != NULL)
		conf_check_mode(&ctx);
	if (conf == NULL) {
		fclose(ctx.in);
		explicit_bzero(ctx.inbuf, sizeof(ctx.inbuf));
		fprintf(errf, "%s%s:0: out of memory\n",
		    errf == stderr ? log_journal_prefix(LOG_LEVEL_ERROR) : "",
		    path);
		return NULL;
	}
	rc = ini_parse_stream(conf_reader, &ctx, conf_handler, &ctx);
	fclose(ctx.in);
	explicit_bzero(ctx.inbuf, sizeof(ctx.inbuf));
	if (rc > 0)
		conf_problem(&ctx, rc,
		    "syntax error (expected [section], key = value, or a comment)");
	else if (rc < 0)
		conf_problem(&ctx, 0, "cannot parse the file");

	check_sections(&ctx);
	conf->path = strdup(path);
	finish_daemon(&ctx, conf);
	finish_sources(&ctx, conf);
	ctx_release(&ctx);
	if (ctx.errors > 0) {
		conf_free(conf);
		return NULL;
	}
	return conf;
}

void
conf_free(struct conf *conf)
{
	size_t i;

	if (conf == NULL)
		return;
	/* sources is NULL when its calloc failed (nsources then 0) */
	for (i = 0; conf->sources != NULL && i < conf->nsources; i++) {
		struct conf_source *s = &conf->sources[i];

		if (s->token != NULL) {
			explicit_bzero(s->token, strlen(s->token));
			free(s->token);
		}
		free(s->name);
		free(s->base_url);
		free(s->proxy);
		free(s->token_origin);
	}
	free(conf->sources);
	free(conf->path);
	conf_database_free(conf);
	free(conf->metrics_file);
	free(conf);
}
