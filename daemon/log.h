/* SPDX-License-Identifier: ISC */
/*
 * log.h: leveled logging to stderr.
 *
 * When stderr is the systemd journal (JOURNAL_STREAM names stderr's device
 * and inode) every line starts with its sd-daemon priority prefix ("<3>" to
 * "<7>") and carries no timestamp; otherwise lines are timestamped.  Every
 * function saves and restores errno.
 *
 * Secrets: log_add_secret() registers a string (a token) that is replaced by
 * "[REDACTED]" wherever it would appear in a log line.
 */
#ifndef AGENTSYNCD_LOG_H
#define AGENTSYNCD_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_ERROR = 3,
	LOG_LEVEL_WARNING = 4,
	LOG_LEVEL_NOTICE = 5,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

/* Decide journal or plain output from the environment; call once early. */
void log_init(void);
void log_set_level(enum log_level level);
/* "<N>" when stderr is the journal, else "": for lines written to stderr
 * by other printers (configuration problems), so that the journal records
 * their priority too. */
const char *log_journal_prefix(enum log_level level);
/* "error", "warning", "info", "debug" -> level; -1 if unknown. */
int log_level_parse(const char *name);
/* The longest secret log_add_secret() takes, in bytes. */
#define LOG_SECRET_MAX 4096
/* The longest excerpt log_excerpt() makes, in bytes of input. */
#define LOG_EXCERPT_MAX 1024

/* Register a secret to redact (copied); empty strings are ignored.
 * Returns 0, or -1 (out of memory, or longer than LOG_SECRET_MAX). */
int log_add_secret(const char *secret) __attribute__((warn_unused_result));
/* Forget every registered secret (on reload, before adding the new ones). */
void log_clear_secrets(void);
/* Redact every registered secret in buf in place (for other printers). */
void log_redact(char *buf);
/*
 * A printable excerpt of upstream bytes for a log line or a stored error:
 * at most max (up to LOG_EXCERPT_MAX) bytes of p, secrets redacted BEFORE
 * the cut (so no secret's head survives it), then bytes outside printable
 * ASCII and backslashes written as \xNN.  out is always NUL-terminated.
 */
/*
 * Make text safe for a terminal and one log line, in place, keeping its
 * length: newline, CR and tab become spaces; other C0 controls, DEL, C1
 * controls (U+0080-U+009F) and bytes that are not UTF-8 become '?'.
 */
void log_sanitize(char *s);
void log_excerpt(const char *p, size_t len, size_t max, char *out,
    size_t outlen);
/*
 * A span of secs as a person reads it, in buf (at most len bytes).  With
 * parts 1, rounded in the largest unit it holds twice: "3h", "45m", "90s"
 * (--status); with parts 2, in whole seconds, in the largest unit it
 * reaches and the next: "1h02m", "3m40s", "12s", and "0s" for a negative
 * span or one of 1e9 s or more (an ETA in a progress line).
 */
void log_duration(double secs, int parts, char *buf, size_t len);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like log_warnx, with ": strerror(errno)" appended. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log at error level and exit(1). */
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
