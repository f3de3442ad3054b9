/* SPDX-License-Identifier: ISC */
/*
 * status.h: agentsyncd --status, for an operator's terminal and for a
 * monitoring system.
 *
 * The exit status follows the monitoring-plugin convention (Nagios,
 * Icinga, Sensu): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.  Each configured
 * source is judged against its own poll_interval:
 *   CRITICAL  no success and no committed page for the stale time
 *             (STATUS_STALE_POLLS poll intervals, at least
 *             STATUS_STALE_MIN seconds), its last pass failed with no
 *             success within that time, or it is stopped because its rows
 *             were renamed or forgotten;
 *   WARNING   its last pass failed but it succeeded within the stale time,
 *             it has not polled or written a page yet, or no source is
 *             configured;
 *   OK        otherwise.
 * Retired sources are listed but not judged (an interrupted forget is a
 * WARNING).  The first line is the verdict ("agentsyncd OK - ..."), as
 * plugins print it; then one block per source.  With json, one JSON
 * document instead (README "Health").
 */
#ifndef AGENTSYNCD_STATUS_H
#define AGENTSYNCD_STATUS_H

#include <stdio.h>

struct conf;
struct store;

#define STATUS_OK	0
#define STATUS_WARNING	1
#define STATUS_CRITICAL 2
#define STATUS_UNKNOWN	3

#define STATUS_STALE_POLLS 3
#define STATUS_STALE_MIN   600.0

/* Print the status of every source to out; returns the exit status. */
int status_print(struct store *store, const struct conf *conf,
    const char *database, int json, FILE *out);

/* A JSON document or the verdict line for a status that could not be
 * read at all (UNKNOWN), then STATUS_UNKNOWN. */
int status_unknown(const char *why, int json, FILE *out);

#endif
