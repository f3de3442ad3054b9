/* SPDX-License-Identifier: ISC */
/*
 * source.h: the normalized record and the adapter interface an API implements.
 *
 * An adapter knows one API's URLs and JSON and nothing of SQLite or libev.
 * It turns a response body into a struct page of normalized struct run
 * records.  Strings in a page point into the page's own parsed tree or body
 * copy: they live exactly as long as the page (page_free()).
 *
 * Adding a third API means one new file that defines a struct source_type
 * (its name, defaults, capabilities, URLs, JSON and the typed fields it
 * declares as data: struct field) and one entry in source_types[]
 * (adapters.c), and a migration for any column of its own.  Nothing else
 * asks which API a source is: the configuration, the walk and the store
 * ask the adapter, and the store builds its statements from every
 * adapter's fields[] when it opens (store_columns.c).
 */
#ifndef AGENTSYNCD_SOURCE_H
#define AGENTSYNCD_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

/* "YYYY-MM-DDTHH:MM:SS.sssZ" + NUL */
#define TS_LEN 25

/* Limits on what upstream controls. */
#define SOURCE_MAX_BODY	  (32u * 1024 * 1024) /* bytes in one page */
#define SOURCE_MAX_DEPTH  64		      /* JSON nesting */
#define SOURCE_MAX_STRING (1024 * 1024)	      /* bytes in one JSON string */
#define SOURCE_MAX_ID	  128		      /* bytes in an external id */
/*
 * A page may hold at most one JSON value per SOURCE_MIN_VALUE_BYTES bytes of
 * body (plus SOURCE_FREE_VALUES): each value costs cJSON a 64-byte node, and
 * its name and string a copy each in 8-byte granules (json.c's arena), so
 * the parsed tree stays under 8.2 times the body (members "abcd":"" are
 * 8; "abcdefg":"" among bare numbers, 8.15).  A parse also holds the copy
 * of the body it parses (1) and, while it seeks names given twice, a sort
 * of one run's members (1.6): 10.6 times the body of resident memory, the
 * most scripts/bench_hostile.py measures for any of its shapes; the
 * daemon adds libcurl's buffer and the answer it keeps for its turn
 * (README "Errors and limits": 12.6 times plus 13 MiB, and 14.1 while a
 * run with a metadata object that dense is written).  Pages of runs hold
 * about one value per 20 to 25 bytes (both APIs, measured on the fake
 * API's pages); a body like [0,0,0,...] holds one per 2 and would cost 32
 * times its size.
 */
#define SOURCE_MIN_VALUE_BYTES 10
#define SOURCE_FREE_VALUES     1024
/* Limits on what the configuration holds. */
#define SOURCE_MAX_BASE_URL 1024 /* bytes in a base_url */
/* A page URL: the base URL, the path and the query an adapter adds. */
#define SOURCE_MAX_PAGE_URL (SOURCE_MAX_BASE_URL + 256)

enum run_state {
	RUN_PENDING,
	RUN_RUNNING,
	RUN_WAITING,
	RUN_SUCCEEDED,
	RUN_FAILED,
	RUN_CANCELLED,
	RUN_UNKNOWN,
};

/* "pending", "running", ... */
const char *run_state_name(enum run_state state);
/*
 * The states a run does not leave once in (it has finished), as the list
 * SQL's IN takes; the one statement of them: run_state_terminal() reads it.
 */
#define RUN_TERMINAL_SQL "('succeeded', 'failed', 'cancelled')"
/* 1 when a run in state has finished (RUN_TERMINAL_SQL names it), else 0. */
int run_state_terminal(enum run_state state);

/*
 * One convention for a value upstream left out or sent as null: a pointer
 * (a string, an array, a time) is NULL; a number or a boolean is one of
 * these with set 0.
 */
struct opt_int {
	int set;
	int64_t v;
};

struct opt_num {
	int set;
	double v;
};

struct opt_bool {
	int set;
	int v; /* 0 or 1 */
};

struct pull_request {
	char external_id[24]; /* integer id as decimal text */
	const char *title;    /* NULL when null/absent */
	const char *url;
	const char *head_branch_name;
	const char *created_at; /* normalized; NULL when null or unparseable */
};

/*
 * A field of a stored run that could not be used: its column (or child
 * row) is left out and this says why (run_field_problems).  A run is
 * rejected whole only when it has no usable id.
 */
struct field_problem {
	const char *field; /* "totalToolCount", "github_pull_requests[2].id" */
	const char *problem; /* "is not an integer" */
	const char *value;   /* the JSON value as served, cut to
			      * SOURCE_MAX_PROBLEM_VALUE bytes; or NULL */
};

/* Bytes of a bad value kept in run_field_problems.value. */
#define SOURCE_MAX_PROBLEM_VALUE 200
/*
 * Problems kept per run.  Past them one more row, field SOURCE_MORE_FIELD,
 * counts the rest (its value is the count).  64 holds every top-level
 * field of either API wrong at once with room for dozens of bad array
 * elements; a run with more is upstream sending something else entirely,
 * and 64 rows of it say so as well as 400,000 would (a 4 MiB run can hold
 * that many, each row 100 bytes or more of memory and of the file).
 */
#define SOURCE_MAX_PROBLEMS 64
#define SOURCE_MORE_FIELD   "(more)"

/*
 * The shared members of struct run a declared field may fill instead of a
 * typed column of its own (an API's name for the title, its time of
 * creation).
 */
enum run_member {
	MEMBER_NONE, /* the field has a column of its own */
	MEMBER_STATUS,
	MEMBER_TITLE,
	MEMBER_WEB_URL,
	MEMBER_CREATED_AT,
	MEMBER_UPDATED_AT,
};

/*
 * What a declared field holds, and how json_run.c reads it.  A member of
 * another type is a problem of the run (run_field_problems), its column
 * NULL.  Absent or null is NULL, not a problem.
 */
enum field_type {
	FIELD_TEXT,    /* a string ("is not a string") */
	FIELD_TIME,    /* a time, normalized by time_normalize() */
	FIELD_INT,     /* an integer below 2^53 */
	FIELD_REAL,    /* a finite number */
	FIELD_BOOL,    /* true or false, stored 1 or 0 */
	FIELD_JSON,    /* an object, stored as its compact JSON text */
	FIELD_PRESENT, /* an object (even {}): 1; null or absent: 0 */
	/* Arrays, each element a row of the child table `table`
	 * (run_id, position, then the items' columns); the field's own
	 * column counts the rows kept, NULL when no array was sent (so
	 * "not evaluated" and "evaluated, nothing found" stay apart). */
	FIELD_STRINGS, /* strings (null kept as NULL); items[0] names the
			* child table's column */
	FIELD_OBJECTS, /* objects, each read by items[] */
};

/*
 * One field of an API's run that its adapter declares as data: its column
 * of runs, where it is in the item and its type.  The store builds its
 * statements from every adapter's table when it opens (store_columns.c),
 * so a third API's typed columns are its table and one migration that
 * adds them.
 */
struct field {
	const char *column; /* runs' (or the child table's) column; NULL
			     * when member names where it goes */
	const char *path;   /* the member, "agentId", or one level down,
			     * "criticalIssue.category" */
	enum field_type type;
	enum run_member member;	   /* MEMBER_NONE, or the shared member (of a
				 * FIELD_TEXT or FIELD_TIME) it fills */
	const char *table;	   /* FIELD_STRINGS and FIELD_OBJECTS */
	const struct field *items; /* their elements' fields */
	size_t nitems;
};

/*
 * A declared field's value in one run (page arena), 16 bytes: a page may
 * hold a million of them.  set 0 is NULL.  An array's value is its rows:
 * set when the array was sent (even []), len the rows kept.
 */
struct value {
	union {
		const char *s;	     /* TEXT, TIME, JSON */
		int64_t i;	     /* INT, BOOL, PRESENT */
		double d;	     /* REAL */
		const char **strs;   /* STRINGS: len of them */
		struct value *cells; /* OBJECTS: len * nitems, by row */
	} v;
	uint32_t len; /* JSON: bytes of s; arrays: rows */
	uint8_t set;
};

struct run {
	/* Common columns. */
	const char *external_id; /* never NULL; points to idbuf or tree */
	char idbuf[24];
	const char *status; /* upstream status verbatim, or NULL */
	enum run_state state;
	const char *title;	/* e.g. cotool: runTitle; NULL when the API
				 * has none */
	const char *web_url;	/* e.g. codegen: web_url */
	const char *created_at; /* normalized (TS_LEN); NULL when null or
				 * unparseable */
	const char *updated_at; /* likewise; NULL when the API has no such
				 * field (codegen) */
	const char *raw;	/* the upstream object, verbatim bytes */
	size_t raw_len;
	/* Pull requests, a table any API may fill (codegen does). */
	struct pull_request *prs; /* distinct by id, in upstream order */
	size_t nprs;
	int prs_sent; /* the array was sent (even []) */
	/* The adapter's declared fields (struct source_type's fields[]),
	 * a value each in its order (page arena); NULL when it declares
	 * none. */
	struct value *values;

	/* What could not be used (page arena): at most SOURCE_MAX_PROBLEMS,
	 * then one SOURCE_MORE_FIELD row when problems_more > 0. */
	struct field_problem *problems;
	size_t nproblems;
	size_t problems_cap;
	size_t problems_more;	   /* found past SOURCE_MAX_PROBLEMS */
	unsigned char *problem_ix; /* json_fields.c: problems by field */
};

/* An item of a good page that could not be normalized. */
struct reject {
	const char *raw; /* the item, verbatim bytes */
	size_t raw_len;
	const char *external_id; /* when one could be read, else NULL */
	size_t pos;		 /* its index among the page's items */
	char reason[160];
};

/*
 * A page's items in listing order are its runs and its rejects merged by
 * position: runs[] and rejects[] each keep the listing's order, and a
 * reject says where it stood.
 */
struct page {
	struct run *runs;
	size_t nruns;
	struct reject *rejects;
	size_t nrejects;
	int64_t total; /* total / totalCount of the listing */
	size_t nitems; /* items in the page, runs + rejects */
	/* Owned storage, released by page_free(). */
	void *tree;  /* cJSON root */
	char *text;  /* NUL-terminated copy of the body */
	void *arena; /* adapter's allocations */
	void *owned; /* blocks from malloc the page frees (json_own()) */
	int oom;     /* a field reader ran out of memory */
};

/* Release what a parse left in *page (json.c); NULL is a no-op. */
void page_free(struct page *page);

/* The order a walk asks for. */
enum walk_order {
	ORDER_CREATED, /* newest created first */
	ORDER_UPDATED, /* most recently updated first */
};

struct source_type {
	/* The value of `type =` in the configuration, and runs.kind. */
	const char *name;
	/* Defaults of the base_url and rate_limit keys. */
	const char *default_base_url;
	int rate_requests;  /* requests ... */
	double rate_window; /* ... per this many seconds */
	/* 1: org_id is required (and part of the source's identity);
	 * 0: org_id is refused. */
	int needs_org_id;
	/* What to check after HTTP 401/403, after "the token is valid". */
	const char *auth_hint;
	/* 1 when any offset can be asked for; 0 when offsets must be
	 * multiples of the page size (page-number APIs). */
	int any_offset;
	/* 1 when the listing can be ordered by update time; 0 when a run's
	 * changes show only where a walk by creation passes it (then
	 * unfinished runs younger than refresh_window are fetched again on
	 * a schedule, by offset: recheck.c; with any_offset 0 too, they are
	 * not, until the next full resync). */
	int can_order_updated;
	/*
	 * Write the URL of the page that starts at offset (an item count)
	 * with limit items, in the given order, into buf.  Returns 0, or -1
	 * when it does not fit.
	 */
	int (*page_url)(const struct conf_source *src, int64_t offset,
	    int limit, enum walk_order order, char *buf, size_t len);
	/*
	 * Parse a 2xx response body, the answer to a request for max_items
	 * items.  On success fill *page (caller frees with page_free()) and
	 * return 0.  On a body that is not the expected page (not JSON,
	 * wrong shape, truncated, too deep, too large, too dense, ambiguous,
	 * more items than asked for) return -1 with a one-line reason in err
	 * and leave *page empty.
	 */
	int (*parse_page)(const char *body, size_t len, size_t max_items,
	    struct page *page, char *err, size_t errlen);
	/* Its fields beyond the id and its pull requests, in the order
	 * parse_page reads them (json_run_fields()). */
	const struct field *fields;
	size_t nfields;
};

extern const struct source_type source_codegen;
extern const struct source_type source_cotool;

/* Every adapter, NULL-terminated (adapters.c). */
extern const struct source_type *const source_types[];

/* The adapter named name, or NULL. */
const struct source_type *source_type_find(const char *name);

/* "codegen, cotool": the names of source_types[], for messages. */
void source_type_names(char *buf, size_t len);

/*
 * Normalize an upstream time to "YYYY-MM-DDTHH:MM:SS.sssZ" in out
 * (TS_LEN bytes).  Accepts "YYYY-MM-DD[T ]HH:MM[:SS[.fraction]][Z|+HH:MM|
 * -HH:MM|+HHMM]"; no zone means UTC; the fraction (0-9 digits) is truncated
 * to milliseconds.  Returns 0, or -1 (out set to "") when unparseable.
 */
int time_normalize(const char *text, char *out);

/* Parse a time as time_normalize() does into unix seconds; 0 or -1. */
int time_to_unix(const char *text, double *unix_seconds);

/* Format a unix time (seconds, with fraction) in the same form. */
void time_format(double unix_seconds, char *out);

/* Bytes of "owner/name" in a GitHub pull request URL, at most. */
#define GITHUB_REPO_LEN 256

/*
 * Parse a GitHub pull request URL, "http[s]://[www.]github.com/OWNER/
 * NAME/pull/NUMBER" (then nothing, or "/", "?", "#" and anything): write
 * "OWNER/NAME" into repo (GITHUB_REPO_LEN bytes) and the number into
 * *number, and return 0; -1 for any other URL.  The host is matched
 * without case; OWNER and NAME are what GitHub allows (letters, digits,
 * '-', and in NAME also '.' and '_').
 */
int github_pr_parse(const char *url, char *repo, int64_t *number);

#endif
