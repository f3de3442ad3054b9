/* SPDX-License-Identifier: ISC */
/*
 * test_http.c: time the event loop spent blocked is not upstream's silence
 * (issue 13, item 8).
 *
 * The daemon parses and writes a page inside a completion callback while
 * other requests are in flight (sync.c starts the next ones before it
 * writes).  Their idle clocks run on meanwhile: the next loop iteration
 * would see a request "idle" for the whole write and cut it as stalled
 * (request_timeout) before a byte could be read.  http_loop_was_busy()
 * (sync.c calls it after work that took longer than 0.5 s) takes the
 * blocked time off.  (A request started after the work is not touched by
 * it: its idle clock is monotonic and starts when it does.)
 *
 * A child process serves one answer on 127.0.0.1 after a delay; the test
 * starts the request, then blocks the loop for 2.5 s (request_timeout 1 s).
 * With the call, the answer arrives; without it the request is cut, which
 * is what the call is for.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <ev.h>

#include "http.h"
#include "log.h"

struct outcome {
	int done;
	long status;
	char body[64];
	char error[256];
};

struct run {
	struct http *http;
	char url[64];
	int call_busy;
	struct outcome out;
};

static void
done_cb(void *arg, const struct http_response *resp)
{
	struct outcome *o = arg;

	o->done = 1;
	o->status = resp->status;
	snprintf(o->body, sizeof(o->body), "%s", resp->body);
	snprintf(o->error, sizeof(o->error), "%s",
	    resp->error != NULL ? resp->error : "");
	ev_break(EV_DEFAULT, EVBREAK_ALL);
}

static void
sleep_s(double s)
{
	struct timespec ts = { (time_t)s,
		(long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) == -1)
		;
}

/* A completion callback that started a request, then wrote a page for
 * 2.5 s. */
static void
busy_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct run *r = w->data;
	struct http_options opt = { .token = NULL,
		.timeout = 1,
		.deadline = 30,
		.max_body = 1024,
		.proxy = "" };

	(void)loop;
	(void)revents;
	if (http_get(r->http, r->url, &opt, done_cb, &r->out) == NULL)
		fail_msg("http_get");
	sleep_s(2.5);
	if (r->call_busy)
		http_loop_was_busy(r->http, 2.5);
}

static void
guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* Serve one request on fd: wait delay seconds, then answer "hello". */
static pid_t
serve_once(int fd, double delay)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
				     "Connection: close\r\n\r\nhello";
	char req[2048];
	pid_t pid = fork();
	int c;

	assert_true(pid >= 0);
	if (pid > 0)
		return pid;
	c = accept(fd, NULL, NULL);
	if (c < 0)
		_exit(1);
	if (read(c, req, sizeof(req)) <= 0)
		_exit(1);
	sleep_s(delay);
	if (write(c, answer, sizeof(answer) - 1) < 0)
		_exit(1);
	sleep_s(0.5);
	_exit(0);
}

static void
run_case(int call_busy, struct outcome *out)
{
	struct sockaddr_in sa;
	socklen_t slen = sizeof(sa);
	struct ev_loop *loop = EV_DEFAULT;
	ev_timer t, guard;
	struct run r;
	pid_t pid;
	int fd, st;

	memset(&r, 0, sizeof(r));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &slen), 0);
	snprintf(r.url, sizeof(r.url), "http://127.0.0.1:%d/",
	    ntohs(sa.sin_port));
	pid = serve_once(fd, 0.3);
	r.http = http_new(loop);
	assert_non_null(r.http);
	r.call_busy = call_busy;
	ev_timer_init(&t, busy_cb, 0.01, 0.);
	t.data = &r;
	ev_timer_start(loop, &t);
	/* a bound on the whole case: the loop stops by itself */
	ev_timer_init(&guard, guard_cb, 20., 0.);
	ev_timer_start(loop, &guard);
	ev_run(loop, 0);
	ev_timer_stop(loop, &guard);
	ev_timer_stop(loop, &t);
	http_free(r.http);
	close(fd);
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	*out = r.out;
}

static void
test_busy_loop_is_not_silence(void **state)
{
	struct outcome o;

	(void)state;
	run_case(1, &o);
	assert_true(o.done);
	if (o.status != 200)
		fail_msg("with http_loop_was_busy: status %ld, error '%s'",
		    o.status, o.error);
	assert_string_equal(o.body, "hello");
}

static void
test_without_the_call_it_is_cut(void **state)
{
	struct outcome o;

	(void)state;
	run_case(0, &o);
	assert_true(o.done);
	assert_int_equal(o.status, 0);
	if (strstr(o.error, "request_timeout") == NULL)
		fail_msg("error '%s'", o.error);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_busy_loop_is_not_silence),
		cmocka_unit_test(test_without_the_call_it_is_cut),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
