/* SPDX-License-Identifier: ISC */
/*
 * notify.c: sd_notify without libsystemd.
 *
 * Messages are short and rare (state changes, a watchdog ping every few
 * seconds), so each one opens, sends and closes its socket: no descriptor
 * to keep across fork or reload, nothing to go stale.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

static struct sockaddr_un notify_addr;
static socklen_t notify_addrlen;
static double notify_watchdog;
static int notify_warned;

void
notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	size_t len;

	notify_addrlen = 0;
	notify_watchdog = 0;
	if (path != NULL && (path[0] == '/' || path[0] == '@')) {
		len = strlen(path);
		if (len < sizeof(notify_addr.sun_path)) {
			memset(&notify_addr, 0, sizeof(notify_addr));
			notify_addr.sun_family = AF_UNIX;
			memcpy(notify_addr.sun_path, path, len);
			if (path[0] == '@')
				notify_addr.sun_path[0] = '\0';
			/* abstract names are not NUL-terminated */
			notify_addrlen =
			    (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				len + (path[0] == '/'));
		} else {
			log_warnx("NOTIFY_SOCKET is too long; not notifying");
		}
	}
	if (usec != NULL &&
	    (pid == NULL || strtol(pid, NULL, 10) == (long)getpid())) {
		char *end;
		double v = strtod(usec, &end);

		if (*end == '\0' && v > 0)
			notify_watchdog = v / 1e6;
	}
}

int
notify_enabled(void)
{
	return notify_addrlen != 0;
}

double
notify_watchdog_interval(void)
{
	return notify_watchdog;
}

int
notify_send(const char *text)
{
	int fd;
	ssize_t n;

	if (notify_addrlen == 0)
		return 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	n = sendto(fd, text, strlen(text), MSG_NOSIGNAL,
	    (struct sockaddr *)&notify_addr, notify_addrlen);
	close(fd);
	if (n == (ssize_t)strlen(text)) {
		notify_warned = 0;
		return 0;
	}
fail:
	if (!notify_warned)
		log_warn("cannot notify the service manager");
	notify_warned = 1;
	return -1;
}

int
notify_sendf(const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return notify_send(buf);
}
