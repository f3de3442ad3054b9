/* SPDX-License-Identifier: ISC */
/*
 * main.c: command line, wiring and signals; nothing else.
 */
#include <getopt.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <curl/curl.h>
#include <ev.h>

#include "conf.h"
#include "http.h"
#include "log.h"
#include "notify.h"
#include "reload.h"
#include "status.h"
#include "store.h"
#include "sync.h"
#include "writer.h"

#define EX_OK	    0
#define EX_USAGE    64
#define EX_TEMPFAIL 75
#define EX_CONFIG   78
#define EX_FAIL	    1

/* How often the WAL is checkpointed, and STATUS= refreshed. */
#define CHECKPOINT_INTERVAL 30.0
#define STATUS_INTERVAL	    5.0
/* The pass history is pruned this often (and 2 s after start), at most
 * PRUNE_BATCHES transactions of PRUNE_BATCH rows each time: off the hot
 * path, never a long lock. */
#define PRUNE_INTERVAL 3600.0
#define PRUNE_BATCH    1000
#define PRUNE_BATCHES  10

struct daemon {
	struct ev_loop *loop;
	const char *conf_path;
	int verbose;
	struct conf *conf;
	struct store *store;
	struct http *http;
	struct sync *sync;
	ev_signal sigterm, sigint, sighup;
	ev_timer watchdog, status, checkpoint, prune;
	char last_status[2048];
	int stopping;
	unsigned long reloads;	/* SIGHUPs handled, for reload_answer() */
	const char *source_arg; /* --rename-source OLD, --forget-source N */
	const char *new_name;	/* --rename-source ... NEW */
	int yes;		/* --yes */
	int json;		/* --status --json */
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: agentsyncd [-c FILE]\n"
	    "                  [--once | --check-config | --migrate |\n"
	    "                   --status [--json] | --reload |\n"
	    "                   --rename-source OLD NEW |\n"
	    "                   --forget-source NAME --yes]\n"
	    "                  [-v] [--version] [--help]\n"
	    "  -c, --config FILE   configuration (default %s)\n"
	    "      --once          one complete pass over every source, then exit\n"
	    "  -t, --check-config  validate the configuration and exit\n"
	    "      --migrate       apply pending database migrations and exit\n"
	    "      --status        print each source's sync state and health; exit 0 OK,\n"
	    "                      1 WARNING, 2 CRITICAL, 3 UNKNOWN\n"
	    "      --json          (with --status) one JSON document\n"
	    "      --reload        (ExecReload=) signal the daemon, wait for its answer\n"
	    "      --rename-source OLD NEW\n"
	    "                      rename a source in the database, keeping its history\n"
	    "      --forget-source NAME --yes\n"
	    "                      delete the rows of a source no longer configured\n"
	    "  -v, --verbose       log at debug level\n"
	    "      --version       print the version and exit\n"
	    "  -h, --help          print this help and exit\n",
	    CONF_DEFAULT_PATH);
}

static void
apply_log_settings(const struct daemon *d)
{
	size_t i;

	log_set_level(
	    d->verbose ? LOG_LEVEL_DEBUG : (enum log_level)d->conf->log_level);
	log_clear_secrets();
	/* No redaction, no run: a token must never reach a log line. */
	for (i = 0; i < d->conf->nsources; i++)
		if (log_add_secret(d->conf->sources[i].token) == -1)
			fatalx(
			    "out of memory: cannot register the token of source '%s' for redaction",
			    d->conf->sources[i].name);
	/* the database password likewise; then what the store needs */
	if (log_add_secret(d->conf->database_password) == -1 ||
	    store_options(d->conf->database_schema,
		d->conf->database_password) == -1)
		fatalx("out of memory: cannot keep the database settings");
}

static void
send_status(struct daemon *d)
{
	char buf[sizeof(d->last_status)];

	if (d->conf->nsources == 0)
		snprintf(buf, sizeof(buf),
		    "idle: no [source NAME] in %s (add one, then systemctl reload agentsyncd)",
		    d->conf->path);
	else
		sync_status(d->sync, buf, sizeof(buf));
	if (strcmp(buf, d->last_status) != 0) {
		memcpy(d->last_status, buf, sizeof(buf));
		notify_sendf("STATUS=%s", buf);
	}
}

/* A fresh install's configuration has no source yet: run, idle, and say
 * so, rather than fail in a loop until someone edits the file. */
static void
warn_no_source(const struct daemon *d)
{
	if (d->conf->nsources == 0)
		log_warnx(
		    "'%s' has no [source NAME] section: nothing to sync; idling until one is added and the configuration reloaded",
		    d->conf->path);
}

/* ev_signal for SIGTERM and SIGINT: finish what is in hand and stop. */
static void
stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct daemon *d = w->data;

	(void)revents;
	log_info("signal %d: stopping", w->signum);
	d->stopping = 1;
	notify_send("STOPPING=1");
	ev_break(loop, EVBREAK_ALL);
}

/* ev_signal for SIGHUP: reload the configuration, keep progress. */
static void
reload_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct daemon *d = w->data;
	struct conf *conf;
	struct timespec ts;
	const char *why = NULL, *fixed;
	char buf[128];

	(void)loop;
	(void)revents;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	notify_sendf("RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
		(unsigned long long)ts.tv_nsec / 1000ULL);
	log_info("reloading '%s'", d->conf_path);
	d->reloads++;
	conf = conf_load(d->conf_path, stderr, CONF_CHECK_DATABASE);
	if (conf == NULL) {
		why =
		    "the configuration has errors (journalctl -u agentsyncd -p err)";
	} else if ((fixed = conf_reload_refused(d->conf, conf)) != NULL) {
		snprintf(buf, sizeof(buf),
		    "%s cannot change while running (restart instead)", fixed);
		why = buf;
		conf_free(conf);
	} else if (sync_configure(d->sync, conf) == -1) {
		why = "out of memory";
		conf_free(conf);
	} else {
		conf_free(d->conf);
		d->conf = conf;
		apply_log_settings(d);
		log_info("configuration reloaded: %zu sources", conf->nsources);
		warn_no_source(d);
	}
	if (why != NULL)
		log_error(
		    "reload of '%s' refused: %s; keeping the running configuration",
		    d->conf_path, why);
	reload_answer(d->reloads, why == NULL, why);
	notify_send("READY=1");
	send_status(d);
}

/* ev_timer: WATCHDOG=1 at half of WatchdogSec; it only fires while the
 * loop turns, which is the progress systemd asks about. */
static void
watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	notify_send("WATCHDOG=1");
}

static void
status_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	send_status(w->data);
}

/* ev_timer: sync_runs rows older than history_retention go. */
static void
prune_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon *d = w->data;
	char cutoff[TS_LEN];
	int64_t n;
	double t0 = http_mono_now();

	(void)revents;
	if (d->conf->history_retention <= 0)
		return;
	time_format(ev_time() - d->conf->history_retention, cutoff);
	n = writer_prune_history(sync_writer(d->sync), cutoff, PRUNE_BATCH,
	    PRUNE_BATCHES);
	/* deletes and a commit: not the requests' silence; and the timer
	 * below is armed from a fresh time */
	http_loop_was_busy(d->http, http_mono_now() - t0);
	if (n > 0)
		log_info(
		    "pruned %lld rows of sync_runs finished before %s (history_retention)",
		    (long long)n, cutoff);
	if (n == (int64_t)PRUNE_BATCH * PRUNE_BATCHES) {
		/* more to go: again soon, the loop turning in between */
		ev_timer_stop(loop, w);
		ev_timer_set(w, 5., PRUNE_INTERVAL);
		ev_timer_start(loop, w);
	}
}

/* ev_timer: keep the WAL small even when readers come and go. */
static void
checkpoint_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon *d = w->data;
	double t0 = http_mono_now();

	(void)loop;
	(void)revents;
	writer_checkpoint(sync_writer(d->sync), 1);
	/* fsyncs, which a slow disk makes seconds: not the requests'
	 * silence; the callbacks after this one arm timers from a fresh
	 * time */
	http_loop_was_busy(d->http, http_mono_now() - t0);
}

/* The signal watchers and the timers of the daemon's loop (libev). */
static void
start_watchers(struct daemon *d, int once)
{
	double wd;

	signal(SIGPIPE, SIG_IGN);
	ev_signal_init(&d->sigterm, stop_cb, SIGTERM);
	ev_signal_init(&d->sigint, stop_cb, SIGINT);
	ev_signal_init(&d->sighup, reload_cb, SIGHUP);
	d->sigterm.data = d->sigint.data = d->sighup.data = d;
	ev_signal_start(d->loop, &d->sigterm);
	ev_signal_start(d->loop, &d->sigint);
	if (!once)
		ev_signal_start(d->loop, &d->sighup);

	ev_timer_init(&d->checkpoint, checkpoint_cb, CHECKPOINT_INTERVAL,
	    CHECKPOINT_INTERVAL);
	d->checkpoint.data = d;
	ev_timer_start(d->loop, &d->checkpoint);
	if (!once) {
		ev_timer_init(&d->prune, prune_cb, 2., PRUNE_INTERVAL);
		d->prune.data = d;
		ev_timer_start(d->loop, &d->prune);
	}
	if (notify_enabled()) {
		ev_timer_init(&d->status, status_cb, STATUS_INTERVAL,
		    STATUS_INTERVAL);
		d->status.data = d;
		ev_timer_start(d->loop, &d->status);
		wd = notify_watchdog_interval();
		if (wd > 0) {
			ev_timer_init(&d->watchdog, watchdog_cb, wd / 2,
			    wd / 2);
			ev_timer_start(d->loop, &d->watchdog);
		}
	}
}

static int
run(struct daemon *d, int once)
{
	int rc = EX_OK;

	/* Keep freed memory up to 8 MiB instead of trimming the heap after
	 * every page: glibc's trim and regrow was two brk calls and fresh
	 * zeroed pages per poll, 38% of an idle daemon's system-call time
	 * (strace).  Fixing the trim threshold also fixes the mmap threshold,
	 * so it is set too: page bodies below 4 MiB stay on the heap. */
	(void)mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
	(void)mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("cannot initialize libcurl");
		return EX_FAIL;
	}
	d->loop = ev_default_loop(EVFLAG_AUTO);
	if (d->loop == NULL) {
		log_error("cannot initialize libev");
		return EX_FAIL;
	}
	/* Pending migrations run before READY=1, and on a large mirror they
	 * take a while (0008: 4.3 s for 200,000 runs, measured): systemd's
	 * start timeout (90 s by default) must not kill one, roll it back
	 * and do the same on every restart. */
	notify_send(
	    "EXTEND_TIMEOUT_USEC=1800000000\n"
	    "STATUS=opening the database (migrations may take minutes)");
	d->store = store_open(d->conf->database, 0);
	if (d->store == NULL)
		return EX_FAIL;
	d->http = http_new(d->loop);
	if (d->http == NULL)
		return EX_FAIL;
	d->sync = sync_new(d->loop, d->store, d->http, once);
	if (d->sync == NULL || sync_configure(d->sync, d->conf) == -1)
		return EX_FAIL;

	start_watchers(d, once);
	log_info("agentsyncd %s started: %zu sources, database '%s'",
	    AGENTSYNCD_VERSION, d->conf->nsources, d->conf->database);
	warn_no_source(d);
	notify_send("READY=1\nSTATUS=starting");
	send_status(d);

	ev_run(d->loop, 0);

	sync_stop(d->sync);
	if (once && !d->stopping && sync_failed(d->sync))
		rc = EX_TEMPFAIL;
	if (once && d->stopping)
		rc = EX_TEMPFAIL;
	writer_checkpoint(sync_writer(d->sync), 1);
	log_info("stopped");
	return rc;
}

static void
cleanup(struct daemon *d)
{
	sync_free(d->sync);
	http_free(d->http);
	store_close(d->store);
	conf_free(d->conf);
	log_clear_secrets();
	if (d->loop != NULL)
		ev_loop_destroy(d->loop);
	curl_global_cleanup();
}

/* The mode options; 0 is the daemon. */
enum mode {
	MODE_DAEMON,
	MODE_ONCE = 256,
	MODE_CHECK,
	MODE_MIGRATE,
	MODE_STATUS,
	MODE_RELOAD,
	MODE_RENAME,
	MODE_FORGET,
	OPT_YES,
	OPT_JSON,
	OPT_VERSION,
};

/* Runs a --forget-source transaction deletes at most (measured: README). */
#define FORGET_BATCH 1000

/* getopt_long(3)'s table of the long options */
static const struct option longopts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "once", no_argument, NULL, MODE_ONCE },
	{ "check-config", no_argument, NULL, 't' },
	{ "migrate", no_argument, NULL, MODE_MIGRATE },
	{ "status", no_argument, NULL, MODE_STATUS },
	{ "reload", no_argument, NULL, MODE_RELOAD },
	{ "rename-source", required_argument, NULL, MODE_RENAME },
	{ "forget-source", required_argument, NULL, MODE_FORGET },
	{ "yes", no_argument, NULL, OPT_YES },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "verbose", no_argument, NULL, 'v' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* What follows the options, and the options that go together: -1 when
 * the command line is good, else EX_USAGE (said on stderr). */
static int
args_rest(int argc, char *argv[], struct daemon *d, enum mode mode, int nmodes)
{
	if (mode == MODE_RENAME && optind + 1 == argc)
		d->new_name = argv[optind++];
	if (mode == MODE_RENAME && d->new_name == NULL)
		fprintf(stderr,
		    "agentsyncd: --rename-source OLD NEW: NEW is missing\n");
	else if (optind != argc)
		fprintf(stderr, "agentsyncd: unexpected argument '%s'\n",
		    argv[optind]);
	else if (nmodes > 1)
		fprintf(stderr,
		    "agentsyncd: --once, --check-config, --migrate, --status, --reload, --rename-source and --forget-source exclude each other\n");
	else if (d->yes && mode != MODE_FORGET)
		fprintf(stderr,
		    "agentsyncd: --yes goes with --forget-source\n");
	else
		return -1;
	usage(stderr);
	return EX_USAGE;
}

/*
 * Read the command line into d and *mode.  Returns -1 to go on, or the
 * exit status (--help, --version, a usage error).
 */
static int
parse_args(int argc, char *argv[], struct daemon *d, enum mode *mode)
{
	int ch, nmodes = 0;

	while ((ch = getopt_long(argc, argv, "c:tvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			d->conf_path = optarg;
			break;
		case MODE_RENAME:
		case MODE_FORGET:
			d->source_arg = optarg;
			*mode = (enum mode)ch;
			nmodes++;
			break;
		case OPT_YES:
			d->yes = 1;
			break;
		case OPT_JSON:
			d->json = 1;
			break;
		case 't':
		case MODE_ONCE:
		case MODE_MIGRATE:
		case MODE_STATUS:
		case MODE_RELOAD:
			*mode = ch == 't' ? MODE_CHECK : (enum mode)ch;
			nmodes++;
			break;
		case 'v':
			d->verbose = 1;
			break;
		case OPT_VERSION:
			printf("agentsyncd %s\n", AGENTSYNCD_VERSION);
			return EX_OK;
		case 'h':
			usage(stdout);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	return args_rest(argc, argv, d, *mode, nmodes);
}

/*
 * What each mode may read of the configuration.  --status and --migrate
 * make no request: they need no token, and an operator runs them outside
 * the service's environment.  --check-config checks every token it can
 * reach from here and says which it cannot (a credential outside the
 * service).
 */
static int
conf_flags(enum mode mode)
{
	switch (mode) {
	case MODE_STATUS:
	case MODE_MIGRATE:
	case MODE_RENAME:
	case MODE_FORGET:
		return CONF_NO_TOKENS;
	case MODE_CHECK:
		return CONF_CHECK_ONLY | CONF_CHECK_DATABASE;
	default:
		return CONF_CHECK_DATABASE;
	}
}

/* --check-config, once the file loaded. */
static int
cmd_check(const struct daemon *d)
{
	if (d->conf->nsources == 0)
		fprintf(stderr,
		    "%s%s:0: note: no [source NAME] section: the daemon will start and idle until one is added\n",
		    log_journal_prefix(LOG_LEVEL_NOTICE), d->conf_path);
	printf("configuration OK\n");
	return EX_OK;
}

static int
cmd_migrate(struct daemon *d)
{
	struct writer w;
	int v;

	d->store = store_open(d->conf->database, STORE_NOMIGRATE);
	if (d->store == NULL)
		return EX_FAIL;
	writer_init(&w, d->store);
	if ((v = writer_migrate(&w)) < 0)
		return EX_FAIL;
	printf("database '%s': %d migration%s applied, schema version %d\n",
	    d->conf->database, v, v == 1 ? "" : "s", store_version(d->store));
	return EX_OK;
}

/*
 * Open the existing mirror with flags, at the schema this binary knows: 0,
 * or -1 with why saying what is wrong ("" when the store logged it).
 */
static int
open_existing(struct daemon *d, int flags, char *why, size_t len)
{
	int current;

	if (!store_is_server(d->conf->database) &&
	    access(d->conf->database, F_OK) != 0) {
		snprintf(why, len, "database '%s' does not exist yet",
		    d->conf->database);
		return -1;
	}
	d->store = store_open(d->conf->database, flags);
	if (d->store == NULL ||
	    (current = store_schema_current(d->store, why, len)) < 0) {
		why[0] = '\0';
		return -1;
	}
	return current ? 0 : -1;
}

/* The mirror for --rename-source and --forget-source, or say why not. */
static int
open_current(struct daemon *d)
{
	char why[PATH_MAX + 160];

	if (open_existing(d, STORE_NOMIGRATE, why, sizeof(why)) == -1) {
		if (why[0] != '\0')
			fprintf(stderr, "%sagentsyncd: %s\n",
			    log_journal_prefix(LOG_LEVEL_ERROR), why);
		return -1;
	}
	return 0;
}

/* Why --rename-source or --forget-source cannot go on, as its exit
 * status (said on stderr), or 0. */
static int
source_refused(const struct daemon *d, enum mode mode)
{
	const char *name = d->source_arg;

	if (!conf_source_name_ok(name) ||
	    (d->new_name != NULL && !conf_source_name_ok(d->new_name))) {
		fprintf(stderr,
		    "%sagentsyncd: a source name is 1-64 of A-Z a-z 0-9 _ . -\n",
		    log_journal_prefix(LOG_LEVEL_ERROR));
		return EX_USAGE;
	}
	if (conf_source_find(d->conf, name) != NULL) {
		fprintf(stderr,
		    "%sagentsyncd: [source %s] is still in %s: %s\n",
		    log_journal_prefix(LOG_LEVEL_ERROR), name, d->conf_path,
		    mode == MODE_RENAME ?
			"rename the section first, then run this, then reload" :
			"remove the section and reload first");
		return EX_CONFIG;
	}
	if (mode == MODE_FORGET && !d->yes) {
		fprintf(stderr,
		    "%sagentsyncd: --forget-source deletes every row of source '%s' for good: add --yes\n",
		    log_journal_prefix(LOG_LEVEL_ERROR), name);
		return EX_USAGE;
	}
	return 0;
}

/* --rename-source OLD NEW, through the writer w. */
static int
cmd_rename(const struct daemon *d, struct writer *w)
{
	const char *name = d->source_arg;
	char why[256];

	if (writer_rename_source(w, name, d->new_name, why, sizeof(why)) ==
	    -1) {
		if (why[0] != '\0')
			fprintf(stderr, "%sagentsyncd: %s\n",
			    log_journal_prefix(LOG_LEVEL_ERROR), why);
		return EX_FAIL;
	}
	printf(
	    "source '%s' renamed to '%s' with its runs, pull requests, history and cursor\n",
	    name, d->new_name);
	if (conf_source_find(d->conf, d->new_name) == NULL)
		printf("note: %s has no [source %s] yet\n", d->conf_path,
		    d->new_name);
	printf(
	    "now reload the daemon (systemctl reload agentsyncd): it goes on where '%s' was\n",
	    name);
	return EX_OK;
}

/* --forget-source NAME --yes, through the writer w, at time now. */
static int
cmd_forget(const struct daemon *d, struct writer *w, const char *now)
{
	const char *name = d->source_arg;
	char why[256];
	int64_t deleted;
	double t0 = (double)clock() / CLOCKS_PER_SEC;

	if (writer_forget_source(w, name, FORGET_BATCH, now, &deleted, why,
		sizeof(why)) == -1) {
		if (why[0] != '\0')
			fprintf(stderr, "%sagentsyncd: %s\n",
			    log_journal_prefix(LOG_LEVEL_ERROR), why);
		else
			fprintf(stderr,
			    "%sagentsyncd: interrupted after %lld runs: run the same command again to finish\n",
			    log_journal_prefix(LOG_LEVEL_ERROR),
			    (long long)deleted);
		return EX_FAIL;
	}
	printf(
	    "source '%s' forgotten: %lld runs deleted, at most %d a transaction (%.2f s of CPU)\n",
	    name, (long long)deleted, FORGET_BATCH,
	    (double)clock() / CLOCKS_PER_SEC - t0);
	return EX_OK;
}

/*
 * --rename-source OLD NEW and --forget-source NAME --yes.  Both work on the
 * database only, and refuse a name the configuration file still has: the
 * file is edited first, the daemon reloaded after (README "Operations").
 * A daemon still syncing the old name stops that source when it finds its
 * rows gone, and writes nothing under it.
 */
static int
cmd_source(struct daemon *d, enum mode mode)
{
	char now[TS_LEN];
	struct writer w;
	int rc = source_refused(d, mode);

	if (rc != 0)
		return rc;
	if (open_current(d) == -1)
		return EX_FAIL;
	writer_init(&w, d->store);
	time_format((double)time(NULL), now);
	if (mode == MODE_RENAME)
		return cmd_rename(d, &w);
	return cmd_forget(d, &w, now);
}

static int
cmd_status(struct daemon *d)
{
	char why[PATH_MAX + 160];

	if (open_existing(d, STORE_READONLY, why, sizeof(why)) == -1) {
		if (why[0] == '\0')
			snprintf(why, sizeof(why),
			    "cannot read database '%s' (the reason is on stderr)",
			    d->conf->database);
		return status_unknown(why, d->json, stdout);
	}
	return status_print(d->store, d->conf, d->conf->database, d->json,
	    stdout);
}

int
main(int argc, char *argv[])
{
	struct daemon d;
	enum mode mode = MODE_DAEMON;
	int rc;

	memset(&d, 0, sizeof(d));
	d.conf_path = CONF_DEFAULT_PATH;
	log_init();
	/*
	 * The process holds API tokens: no core dump may write them to disk,
	 * and no other process of the same user may read its memory through
	 * ptrace or /proc/PID/mem.  Done here, not only with LimitCORE=0 in the
	 * unit, so that it holds for --once and --check-config from a shell.
	 */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		log_warn("prctl(PR_SET_DUMPABLE, 0)");
	if ((rc = parse_args(argc, argv, &d, &mode)) != -1)
		return rc;
	/* --reload only signals the running daemon, which reads the file. */
	if (mode == MODE_RELOAD)
		return reload_request();
	d.conf = conf_load(d.conf_path, stderr, conf_flags(mode));
	if (d.conf == NULL)
		return EX_CONFIG;
	if (mode == MODE_ONCE && d.conf->nsources == 0) {
		fprintf(stderr,
		    "%s%s:0: no [source NAME] section: nothing to sync\n",
		    log_journal_prefix(LOG_LEVEL_ERROR), d.conf_path);
		conf_free(d.conf);
		return EX_CONFIG;
	}
	if (mode != MODE_CHECK) {
		apply_log_settings(&d);
		notify_init();
	}
	switch (mode) {
	case MODE_CHECK:
		rc = cmd_check(&d);
		break;
	case MODE_MIGRATE:
		rc = cmd_migrate(&d);
		break;
	case MODE_STATUS:
		rc = cmd_status(&d);
		break;
	case MODE_RENAME:
	case MODE_FORGET:
		rc = cmd_source(&d, mode);
		break;
	default:
		rc = run(&d, mode == MODE_ONCE);
		break;
	}
	cleanup(&d);
	return rc;
}
