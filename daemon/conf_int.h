/* SPDX-License-Identifier: ISC */
/*
 * conf_int.h: what the parts of the configuration parser share (conf.c,
 * conf_check.c, conf_token.c), and nothing else includes: the parse's
 * context and the reporting of a problem as "FILE:LINE: message".
 */
#ifndef AGENTSYNCD_CONF_INT_H
#define AGENTSYNCD_CONF_INT_H

#include <stdio.h>
#include <sys/types.h>

#include "conf.h"

/* The values of one section as written (conf.c). */
struct raw_source;

struct section {
	char name[128];
	int line;
};

struct ctx {
	const char *path;
	int flags; /* CONF_* */
	FILE *errf;
	FILE *in;
	char inbuf[4096]; /* in's stdio buffer: ours, to wipe */
	mode_t mode;	  /* of the file read (fstat), 0 when unknown */
	int lineno;
	int errors;
	struct section *sections; /* every header, in file order */
	size_t nsections, sections_cap;
	int too_many_sections;
	struct raw_source *top; /* [agentsyncd] */
	struct raw_source *raw;
	size_t nraw, raw_cap;
	int loopback; /* the base_url of the source being finished */
};

/* One key of a section, as its parser sees it. */
struct kv {
	const struct conf_key *key;
	const char *val; /* as written, or NULL when not given */
	int line;	 /* of val, or of the section's header */
};

/* conf.c */
/* A problem at line of the file: it is refused (ctx->errors counts). */
void conf_problem(struct ctx *ctx, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Something --check-config cannot see from where it runs: said, not
 * counted as a problem. */
void conf_note(struct ctx *ctx, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* conf_value.c */
/* The value of key in the struct at base (struct conf or conf_source). */
void *conf_key_at(void *base, const struct conf_key *key);
/* text as an integer from min to max into *out: 0, or -1. */
int conf_parse_int(const char *text, long long min, long long max,
    long long *out);
/* A duration key at its offset in base: the default, or the value. */
void conf_duration_key(struct ctx *ctx, const struct kv *kv, void *base);
/* An integer key from min to the key's max at its offset in base: the
 * default, or the value. */
void conf_int_key(struct ctx *ctx, const struct kv *kv, long long min,
    void *base);
/* page_size into s, as s's adapter allows it. */
void conf_page_size_key(struct ctx *ctx, const struct kv *kv,
    struct conf_source *s);
/* rate_limit = N/DURATION or off into s; the adapter's default otherwise. */
void conf_rate_key(struct ctx *ctx, const struct kv *kv, struct conf_source *s);

/* conf_check.c */
/* base_url checked: a new string without trailing slashes, or NULL (a
 * problem reported, or out of memory); *loopback says whether its host is
 * a loopback one. */
char *conf_check_url(struct ctx *ctx, int line, const char *url, int *loopback);
/* proxy = none | env | URL into s->proxy_mode (and s->proxy). */
void conf_check_proxy(struct ctx *ctx, const struct kv *kv, int loopback,
    struct conf_source *s);
/* metrics_file checked: a copy of v, or NULL. */
char *conf_check_metrics_file(struct ctx *ctx, const char *v, int line);
/* The mode of the file being read, into ctx->mode; group or others
 * writable is a problem. */
void conf_check_mode(struct ctx *ctx);
/* The database's directory (and file) as far as can be known unopened. */
void conf_check_database(struct ctx *ctx, const char *path, int line);

/* conf_database.c */
/* 1 when v names a PostgreSQL database (postgresql://, postgres://). */
int conf_database_is_uri(const char *v);
/* The database, database_schema and database_password_* keys into conf:
 * 1, or 0 when kv is another key. */
int conf_database_key(struct ctx *ctx, const struct kv *kv, struct conf *conf);
/* Free (and wipe) what conf_database_key() set. */
void conf_database_free(struct conf *conf);

/* conf_token.c */
/* The password of database_password_file or _credential (kind) value v,
 * under the rules of token_file and token_credential; NULL (a problem,
 * or out of memory) or the caller's to wipe and free. */
char *conf_read_password(struct ctx *ctx, enum conf_kind kind, const char *v,
    int line);
/* 1 when kind is one of the token_* keys. */
int conf_is_token_kind(enum conf_kind kind);
/* The token of key kind (value v at line) of [section] into s->token and
 * s->token_origin; s->token stays NULL on a problem or out of memory. */
void conf_read_token(struct ctx *ctx, const char *section, enum conf_kind kind,
    const char *v, int line, struct conf_source *s);

#endif
