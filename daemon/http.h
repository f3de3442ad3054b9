/* SPDX-License-Identifier: ISC */
/*
 * http.h: asynchronous HTTP GET on one libcurl multi handle driven by libev.
 *
 * Nothing here blocks the loop.  A request's completion callback runs from
 * the loop (never from inside a libcurl callback), so it may start the
 * next request at once.  TLS verification is always on; redirects are not
 * followed (a redirect could lead a token to another host).
 */
#ifndef AGENTSYNCD_HTTP_H
#define AGENTSYNCD_HTTP_H

#include <stddef.h>

struct ev_loop;
struct http;
struct http_request;

struct http_response {
	long status;	  /* HTTP status; 0 when no response came */
	const char *body; /* NUL-terminated; owned by the request */
	size_t len;
	double retry_after;	  /* seconds from Retry-After, or -1 */
	const char *content_type; /* or NULL */
	int too_large;		  /* body passed max_body and was cut */
	double date;		  /* the Date header (unix time), or -1 */
	const char *error;	  /* transport error text, or NULL */
};

/* Called once per request with the outcome; resp lives until it returns. */
typedef void http_done_cb(void *arg, const struct http_response *resp);

struct http_options {
	const char *token; /* Authorization: Bearer; never logged */
	double timeout;	   /* low-speed abort and connect timeout, s */
	double deadline;   /* the whole request, s */
	size_t max_body;   /* bytes */
	const char *proxy; /* "": none; NULL: libcurl's from the environment
			    * (http_proxy, ALL_PROXY, NO_PROXY...); else the
			    * proxy's URL */
	/* Called with the request's arg when the request is about to be
	 * sent (connected, nothing written yet), or NULL.  It runs inside
	 * libcurl: it must not call into http. */
	void (*sent_cb)(void *arg);
};

/* Returns NULL after logging why.  Caller frees with http_free(). */
struct http *http_new(struct ev_loop *loop) __attribute__((warn_unused_result));
/* Cancels every request still in flight (their callbacks do not run). */
void http_free(struct http *http);

/*
 * Start a GET.  Returns the request (owned by http: it is freed after its
 * callback returns, or by http_cancel()), or NULL after logging why.
 */
struct http_request *http_get(struct http *http, const char *url,
    const struct http_options *opt, http_done_cb *cb, void *arg)
    __attribute__((warn_unused_result));
/* Seconds on CLOCK_MONOTONIC, the clock of every request's idle timer
 * (request_timeout): a step of the wall clock moves neither.  Measure the
 * time the loop was blocked with it for http_loop_was_busy(). */
double http_mono_now(void);
/*
 * Say that the loop was kept busy for seconds (parsing a large page, a
 * slow database write): refresh the loop's cached time and take that time
 * off every request's request_timeout idle clock, since no byte could be
 * read meanwhile.  Without it, bytes waiting in a socket during a 60 s
 * write would look like 60 s of silence.
 */
void http_loop_was_busy(struct http *http, double seconds);
/* Abort a request; its callback does not run.  NULL is a no-op. */
void http_cancel(struct http_request *req);

#endif
