/* SPDX-License-Identifier: ISC */
/*
 * notify.h: the sd_notify(3) datagram protocol, spoken directly.
 *
 * The protocol is documented as stable and meant to be reimplemented: one
 * datagram of "KEY=VALUE\n" lines to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a leading '@' names an abstract socket).  Without
 * NOTIFY_SOCKET every call does nothing.
 */
#ifndef AGENTSYNCD_NOTIFY_H
#define AGENTSYNCD_NOTIFY_H

/* Read NOTIFY_SOCKET and WATCHDOG_USEC (honouring WATCHDOG_PID). */
void notify_init(void);
/* Send text ("READY=1\nSTATUS=..."); returns 0, or -1 (logged once). */
int notify_send(const char *text);
/* printf-style notify_send. */
int notify_sendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The watchdog interval in seconds that systemd expects, or 0. */
double notify_watchdog_interval(void);
int notify_enabled(void);

#endif
