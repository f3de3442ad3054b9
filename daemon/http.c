/* SPDX-License-Identifier: ISC */
/*
 * http.c: libcurl multi <-> libev glue.
 *
 * The shape is curl's docs/examples/evhiperfifo.c: one context for the
 * multi handle (struct http), one per transfer (struct http_request, linked
 * with CURLOPT_PRIVATE), one per socket (struct http_sock, linked with
 * curl_multi_assign and freed on CURL_POLL_REMOVE).  libcurl is never called
 * from inside its own timer callback: that callback only arms an ev_timer.
 *
 * This file knows HTTP and nothing of the APIs: status codes are handed to
 * the caller as they came.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <ev.h>

#include "buf.h"
#include "http.h"
#include "log.h"

/* "Authorization: Bearer " and the longest token log.c can redact. */
#define HTTP_AUTH_MAX (sizeof("Authorization: Bearer ") + LOG_SECRET_MAX)

struct http {
	struct ev_loop *loop;
	CURLM *multi;
	ev_timer timer; /* CURLMOPT_TIMERFUNCTION */
	struct http_request *reqs;
};

struct http_sock {
	struct http *http;
	curl_socket_t fd;
	ev_io io; /* CURLMOPT_SOCKETFUNCTION */
};

struct http_request {
	struct http *http;
	CURL *easy;
	struct curl_slist *headers;
	struct buf body; /* capped at http_options.max_body */
	int too_large;
	int stalled;	     /* no byte for idle_timeout: aborted */
	double idle_timeout; /* seconds */
	double last_byte;    /* http_mono_now() of the last byte (or start) */
	double deadline;     /* seconds, the whole request */
	int saw_retry_after;
	double date; /* the Date header, or -1 */
	http_done_cb *cb;
	void (*sent_cb)(void *arg);
	void *arg;
	char errbuf[CURL_ERROR_SIZE];
	struct http_request *prev, *next;
};

static void http_check_done(struct http *http);

/* Not ev_now(): libev's is the wall clock, which a clock step (NTP, an
 * operator) moves by hours, cutting every request or none. */
double
http_mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 1 when a curl_multi_* call succeeded; else log it (CURLMcode stays in
 * this file) and return 0. */
static int
http_multi_ok(const char *what, CURLMcode rc)
{
	if (rc == CURLM_OK)
		return 1;
	log_error("http: %s: %s", what, curl_multi_strerror(rc));
	return 0;
}

/* curl_slist_free_all() with every string wiped first: one holds the
 * token ("Authorization: Bearer ..."), and libcurl frees its copies as
 * they are. */
static void
http_headers_free(struct curl_slist *headers)
{
	struct curl_slist *h;

	for (h = headers; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(headers);
}

static void
http_request_free(struct http_request *req)
{
	struct http *http = req->http;

	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		http->reqs = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	http_multi_ok("curl_multi_remove_handle",
	    curl_multi_remove_handle(http->multi, req->easy));
	curl_easy_cleanup(req->easy);
	http_headers_free(req->headers);
	buf_free(&req->body);
	free(req);
}

/* ev_io watcher of one socket: tell curl what happened on it. */
static void
http_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct http_sock *sock = w->data;
	struct http *http = sock->http;
	int action = 0, running;

	(void)loop;
	if (revents & EV_READ)
		action |= CURL_CSELECT_IN;
	if (revents & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	http_multi_ok("curl_multi_socket_action",
	    curl_multi_socket_action(http->multi, sock->fd, action, &running));
	http_check_done(http);
}

/* ev_timer armed by http_timer_cb: curl's timeout has expired. */
static void
http_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct http *http = w->data;
	int running;

	(void)loop;
	(void)revents;
	http_multi_ok("curl_multi_socket_action",
	    curl_multi_socket_action(http->multi, CURL_SOCKET_TIMEOUT, 0,
		&running));
	http_check_done(http);
}

/* CURLMOPT_TIMERFUNCTION: arm (or disarm) our timer; never call curl. */
static int
http_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http *http = userp;

	(void)multi;
	ev_timer_stop(http->loop, &http->timer);
	if (timeout_ms >= 0) {
		/* milliseconds -> seconds, as a fraction (the example file's
		 * integer division turns 999 ms into 0) */
		ev_timer_set(&http->timer, (double)timeout_ms / 1000.0, 0.);
		ev_timer_start(http->loop, &http->timer);
	}
	return 0;
}

/* CURLMOPT_SOCKETFUNCTION: keep one ev_io per socket curl cares about. */
static int
http_sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct http *http = userp;
	struct http_sock *sock = socketp;
	int events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (sock != NULL) {
			ev_io_stop(http->loop, &sock->io);
			free(sock);
		}
		http_multi_ok("curl_multi_assign",
		    curl_multi_assign(http->multi, fd, NULL));
		return 0;
	}
	if (sock == NULL) {
		sock = calloc(1, sizeof(*sock));
		if (sock == NULL) {
			log_error("http: out of memory");
			return -1;
		}
		sock->http = http;
		sock->fd = fd;
		ev_init(&sock->io, http_io_cb);
		sock->io.data = sock;
		if (!http_multi_ok("curl_multi_assign",
			curl_multi_assign(http->multi, fd, sock))) {
			free(sock);
			return -1;
		}
	}
	if (what & CURL_POLL_IN)
		events |= EV_READ;
	if (what & CURL_POLL_OUT)
		events |= EV_WRITE;
	ev_io_stop(http->loop, &sock->io);
	ev_io_set(&sock->io, fd, events);
	ev_io_start(http->loop, &sock->io);
	return 0;
}

/* CURLOPT_PREREQFUNCTION: the request is about to leave. */
static int
http_prereq_cb(void *data, char *primary_ip, char *local_ip, int primary_port,
    int local_port)
{
	struct http_request *req = data;

	(void)primary_ip;
	(void)local_ip;
	(void)primary_port;
	(void)local_port;
	req->sent_cb(req->arg);
	return CURL_PREREQFUNC_OK;
}

/* CURLOPT_WRITEFUNCTION: append, within max_body. */
static size_t
http_write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_request *req = userp;
	size_t n = size * nmemb;

	req->last_byte = http_mono_now();
	if (buf_add(&req->body, data, n) == -1) {
		/* Either aborts the transfer (CURLE_WRITE_ERROR). */
		if (errno == E2BIG)
			req->too_large = 1;
		else
			log_error("http: out of memory for a response body");
		return 0;
	}
	return n;
}

/* An HTTP date (RFC 9110: IMF-fixdate and the obsolete forms, as
 * curl_getdate() reads them) as unix time, or -1. */
static double
http_date(const char *p, size_t n)
{
	char buf[64];
	time_t t;

	while (n > 0 && (*p == ' ' || *p == '\t')) {
		p++;
		n--;
	}
	while (
	    n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' '))
		n--;
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	t = curl_getdate(buf, NULL);
	return t == -1 ? -1 : (double)t;
}

/* CURLOPT_HEADERFUNCTION: note whether Retry-After came at all, since
 * CURLINFO_RETRY_AFTER says 0 both for "0" and for no header. */
static size_t
http_header_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_request *req = userp;
	size_t n = size * nmemb;

	req->last_byte = http_mono_now();
	if (n >= 12 && strncasecmp(data, "retry-after:", 12) == 0) {
		req->saw_retry_after = 1;
	} else if (n >= 5 && strncasecmp(data, "date:", 5) == 0) {
		req->date = http_date(data + 5, n - 5);
	} else if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		req->saw_retry_after = 0; /* a new response begins */
		req->date = -1;
	}
	return n;
}

/*
 * CURLOPT_XFERINFOFUNCTION: abort a transfer when no byte has come for
 * idle_timeout.  curl's own low-speed check averages over a 5 s window, so
 * a stall right after a burst was cut only about 5 s late (measured: 7 s
 * for a 1 s timeout); the low-speed options stay set so that curl keeps
 * waking us about once a second while nothing arrives.
 */
static int
http_xferinfo_cb(void *userp, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct http_request *req = userp;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (http_mono_now() - req->last_byte >= req->idle_timeout) {
		req->stalled = 1;
		return 1; /* CURLE_ABORTED_BY_CALLBACK */
	}
	return 0;
}

static void
http_finish(struct http_request *req, CURLcode result)
{
	struct http_response resp;
	curl_off_t retry = 0;
	char *ctype = NULL;

	memset(&resp, 0, sizeof(resp));
	resp.retry_after = -1;
	if (result == CURLE_OK || req->too_large ||
	    result == CURLE_PARTIAL_FILE)
		curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE,
		    &resp.status);
	if (result != CURLE_OK) {
		resp.status = req->too_large ? resp.status : 0;
		if (req->stalled)
			snprintf(req->errbuf, sizeof(req->errbuf),
			    "no data for %.0f s (request_timeout)",
			    req->idle_timeout);
		else if (result == CURLE_OPERATION_TIMEDOUT)
			snprintf(req->errbuf, sizeof(req->errbuf),
			    "not complete within %.0f s (request_deadline)",
			    req->deadline);
		resp.error = req->too_large ? "response body too large" :
		    req->errbuf[0] != '\0'  ? req->errbuf :
					      curl_easy_strerror(result);
	}
	if (req->saw_retry_after &&
	    curl_easy_getinfo(req->easy, CURLINFO_RETRY_AFTER, &retry) ==
		CURLE_OK)
		resp.retry_after = retry > 0 ? (double)retry : 0;
	if (curl_easy_getinfo(req->easy, CURLINFO_CONTENT_TYPE, &ctype) ==
	    CURLE_OK)
		resp.content_type = ctype;
	resp.too_large = req->too_large;
	resp.date = req->date;
	resp.body = req->body.p != NULL ? req->body.p : "";
	resp.len = req->body.len;
	req->cb(req->arg, &resp);
}

/*
 * After every curl_multi_socket_action: hand finished transfers over.
 * What a CURLMsg points to does not survive curl_multi_remove_handle()
 * (curl_multi_info_read(3)): its result and easy handle are read first.
 */
static void
http_check_done(struct http *http)
{
	struct http_request *req;
	CURLMsg *msg;
	CURLcode result;
	CURL *easy;
	int left;

	while ((msg = curl_multi_info_read(http->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		easy = msg->easy_handle;
		result = msg->data.result;
		req = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &req);
		if (req == NULL)
			continue;
		http_multi_ok("curl_multi_remove_handle",
		    curl_multi_remove_handle(http->multi, easy));
		http_finish(req, result);
		http_request_free(req);
	}
}

struct http *
http_new(struct ev_loop *loop)
{
	struct http *http;

	http = calloc(1, sizeof(*http));
	if (http == NULL) {
		log_error("http: out of memory");
		return NULL;
	}
	http->loop = loop;
	http->multi = curl_multi_init();
	if (http->multi == NULL) {
		log_error("http: curl_multi_init failed");
		free(http);
		return NULL;
	}
	ev_init(&http->timer, http_timeout_cb);
	http->timer.data = http;
	if (!http_multi_ok("curl_multi_setopt",
		curl_multi_setopt(http->multi, CURLMOPT_SOCKETFUNCTION,
		    http_sock_cb)) ||
	    !http_multi_ok("curl_multi_setopt",
		curl_multi_setopt(http->multi, CURLMOPT_SOCKETDATA, http)) ||
	    !http_multi_ok("curl_multi_setopt",
		curl_multi_setopt(http->multi, CURLMOPT_TIMERFUNCTION,
		    http_timer_cb)) ||
	    !http_multi_ok("curl_multi_setopt",
		curl_multi_setopt(http->multi, CURLMOPT_TIMERDATA, http))) {
		curl_multi_cleanup(http->multi);
		free(http);
		return NULL;
	}
	return http;
}

void
http_free(struct http *http)
{
	struct http_request *req, *next;

	if (http == NULL)
		return;
	for (req = http->reqs; req != NULL; req = next) {
		next = req->next;
		http_request_free(req);
	}
	ev_timer_stop(http->loop, &http->timer);
	curl_multi_cleanup(http->multi);
	free(http);
}

#define SETOPT(req, opt, val)                                                  \
	do {                                                                   \
		if (curl_easy_setopt((req)->easy, (opt), (val)) != CURLE_OK) { \
			log_error("http: cannot set %s", #opt);                \
			goto fail;                                             \
		}                                                              \
	} while (0)

/* The request's headers (the token's, wiped from the stack): 0, or -1
 * when out of memory. */
static int
set_headers(struct http_request *req, const struct http_options *opt)
{
	struct curl_slist *h;
	char auth[HTTP_AUTH_MAX];

	h = curl_slist_append(NULL, "Accept: application/json");
	if (h == NULL)
		return -1;
	req->headers = h;
	if (opt->token != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
		    opt->token);
		h = curl_slist_append(req->headers, auth);
		explicit_bzero(auth, sizeof(auth));
		if (h == NULL)
			return -1;
		req->headers = h;
	}
	return 0;
}

/* Every libcurl option of req: 0, or -1 (logged). */
static int
set_options(struct http_request *req, const char *url,
    const struct http_options *opt, long timeout)
{
	SETOPT(req, CURLOPT_URL, url);
	SETOPT(req, CURLOPT_PRIVATE, req);
	SETOPT(req, CURLOPT_HTTPHEADER, req->headers);
	SETOPT(req, CURLOPT_USERAGENT, "agentsyncd/" AGENTSYNCD_VERSION);
	SETOPT(req, CURLOPT_WRITEFUNCTION, http_write_cb);
	SETOPT(req, CURLOPT_WRITEDATA, req);
	SETOPT(req, CURLOPT_HEADERFUNCTION, http_header_cb);
	SETOPT(req, CURLOPT_HEADERDATA, req);
	SETOPT(req, CURLOPT_ERRORBUFFER, req->errbuf);
	SETOPT(req, CURLOPT_NOSIGNAL, 1L);
	SETOPT(req, CURLOPT_ACCEPT_ENCODING, "");
	SETOPT(req, CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(req, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(req, CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(req, CURLOPT_SSL_VERIFYHOST, 2L);
	SETOPT(req, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SETOPT(req, CURLOPT_CONNECTTIMEOUT, timeout < 30 ? timeout : 30L);
	/* Only to be woken each second while nothing comes: the deadline
	 * and http_xferinfo_cb's idle check are what cut a request. */
	req->deadline = opt->deadline > 1 ? opt->deadline : 1;
	SETOPT(req, CURLOPT_LOW_SPEED_LIMIT, 1L);
	SETOPT(req, CURLOPT_LOW_SPEED_TIME, (long)ceil(req->deadline) + 1);
	req->idle_timeout = (double)timeout;
	req->last_byte = http_mono_now();
	SETOPT(req, CURLOPT_XFERINFOFUNCTION, http_xferinfo_cb);
	SETOPT(req, CURLOPT_XFERINFODATA, req);
	SETOPT(req, CURLOPT_NOPROGRESS, 0L);
	/* request_timeout counts from the last byte: a server dripping a
	 * byte a second would hold a request for ever without this. */
	SETOPT(req, CURLOPT_TIMEOUT_MS, (long)ceil(req->deadline * 1000));
	if (opt->proxy != NULL)
		SETOPT(req, CURLOPT_PROXY, opt->proxy);
	SETOPT(req, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)opt->max_body);
	SETOPT(req, CURLOPT_TCP_KEEPALIVE, 1L);
	if (opt->sent_cb != NULL) {
		req->sent_cb = opt->sent_cb;
		SETOPT(req, CURLOPT_PREREQFUNCTION, http_prereq_cb);
		SETOPT(req, CURLOPT_PREREQDATA, req);
	}
	return 0;
fail:
	return -1;
}

struct http_request *
http_get(struct http *http, const char *url, const struct http_options *opt,
    http_done_cb *cb, void *arg)
{
	struct http_request *req;
	long timeout;

	req = calloc(1, sizeof(*req));
	if (req == NULL) {
		log_error("http: out of memory");
		return NULL;
	}
	req->http = http;
	req->cb = cb;
	req->arg = arg;
	buf_init(&req->body, opt->max_body);
	req->date = -1;
	req->easy = curl_easy_init();
	if (req->easy == NULL) {
		log_error("http: curl_easy_init failed");
		free(req);
		return NULL;
	}
	timeout = (long)ceil(opt->timeout > 1 ? opt->timeout : 1);
	if (set_headers(req, opt) == -1)
		goto nomem;
	if (set_options(req, url, opt, timeout) == -1)
		goto fail;
	if (curl_multi_add_handle(http->multi, req->easy) != CURLM_OK) {
		log_error("http: cannot start request");
		goto fail;
	}
	req->next = http->reqs;
	if (http->reqs != NULL)
		http->reqs->prev = req;
	http->reqs = req;
	return req;
nomem:
	log_error("http: out of memory");
fail:
	curl_easy_cleanup(req->easy);
	http_headers_free(req->headers);
	free(req);
	return NULL;
}

void
http_loop_was_busy(struct http *http, double seconds)
{
	struct http_request *req;
	double now;

	/* for the timers armed next (STYLE.md); the idle clocks are
	 * monotonic and read their own time */
	ev_now_update(http->loop);
	now = http_mono_now();
	for (req = http->reqs; req != NULL; req = req->next) {
		req->last_byte += seconds;
		if (req->last_byte > now)
			req->last_byte = now;
	}
}

void
http_cancel(struct http_request *req)
{
	if (req != NULL)
		http_request_free(req);
}
