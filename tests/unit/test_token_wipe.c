/* SPDX-License-Identifier: ISC */
/*
 * test_token_wipe.c: the token's copy in libcurl's header list is wiped
 * before libcurl frees it (issue 25, item 6).
 *
 * libcurl is given allocation callbacks (curl_global_init_mem) whose free
 * looks for the token in every block it is handed.  A request is started
 * and cancelled before the loop runs: libcurl has built nothing of its own
 * from the header list yet, so the only copy of the token it frees is the
 * list's "Authorization: Bearer ..." string, which http.c must have wiped.
 * A list freed without the wipe is caught by the same check (checked
 * first), so the check can fail.
 */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <ev.h>

#include "http.h"
#include "log.h"

#define TOKEN "wipe-SECRET-0123456789abcdef"

static int watching;
static int seen; /* blocks freed holding TOKEN */

static void
look(void *p)
{
	if (watching && p != NULL &&
	    memmem(p, malloc_usable_size(p), TOKEN, strlen(TOKEN)) != NULL)
		seen++;
}

static void *
t_malloc(size_t n)
{
	return malloc(n);
}

static void
t_free(void *p)
{
	look(p);
	free(p);
}

static void *
t_realloc(void *p, size_t n)
{
	look(p); /* it may move: the old block is freed as it is */
	return realloc(p, n);
}

static char *
t_strdup(const char *s)
{
	return strdup(s);
}

static void *
t_calloc(size_t n, size_t size)
{
	return calloc(n, size);
}

static void
never_cb(void *arg, const struct http_response *resp)
{
	(void)arg;
	(void)resp;
	fail_msg("a cancelled request's callback ran");
}

/* The check sees a list freed as libcurl frees it: 1 block. */
static int
unwiped_list_seen(void)
{
	struct curl_slist *h;

	h = curl_slist_append(NULL, "Authorization: Bearer " TOKEN);
	assert_non_null(h);
	seen = 0;
	watching = 1;
	curl_slist_free_all(h);
	watching = 0;
	return seen;
}

static void
test_cancelled_request_frees_no_token(void **state)
{
	struct http_options opt = { .token = TOKEN,
		.timeout = 5,
		.deadline = 10,
		.max_body = 1024,
		.proxy = "" };
	struct http *http;
	struct http_request *req;

	(void)state;
	assert_int_equal(unwiped_list_seen(), 1); /* the check can fail */
	http = http_new(EV_DEFAULT);
	assert_non_null(http);
	req = http_get(http, "http://127.0.0.1:9/", &opt, never_cb, NULL);
	assert_non_null(req);
	seen = 0;
	watching = 1;
	http_cancel(req);
	watching = 0;
	http_free(http);
	assert_int_equal(seen, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cancelled_request_frees_no_token),
	};

	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, t_malloc, t_free,
		t_realloc, t_strdup, t_calloc) != CURLE_OK)
		return 1;
	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
