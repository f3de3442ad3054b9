/* SPDX-License-Identifier: ISC */
/*
 * reload.h: a synchronous `systemctl reload`.
 *
 * systemd 252 (Debian 12) predates Type=notify-reload: with
 * `ExecReload=kill -HUP $MAINPID` a reload "succeeds" whatever the daemon
 * makes of the new file.  So ExecReload= runs `agentsyncd --reload`, which
 * signals the daemon and waits for its answer; the daemon writes that
 * answer to $RUNTIME_DIRECTORY/reload once the reload is done or refused.
 * The file holds one line, "PID.N ok" or "PID.N refused: WHY": PID.N is new
 * for every answer of every daemon instance, so a waiting client knows the
 * answer is to its own signal.
 */
#ifndef AGENTSYNCD_RELOAD_H
#define AGENTSYNCD_RELOAD_H

/* The longest wait for an answer, in seconds (under systemd's default
 * TimeoutSec= of 90 s). */
#define RELOAD_WAIT 60

/*
 * Daemon side: record the outcome of reload number seq (ok, or refused for
 * why).  Does nothing without $RUNTIME_DIRECTORY (not under systemd, or no
 * RuntimeDirectory=).  Failures are logged, never fatal.
 */
void reload_answer(unsigned long seq, int ok, const char *why);

/*
 * Client side (agentsyncd --reload, for ExecReload=): send SIGHUP to
 * $MAINPID and wait up to RELOAD_WAIT seconds for the answer.  Prints what
 * happened and returns an exit status: 0 reloaded, 1 refused or no answer,
 * 64 when $MAINPID or $RUNTIME_DIRECTORY is missing (not run by systemd).
 */
int reload_request(void);

#endif
