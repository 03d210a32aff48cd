/* SPDX-License-Identifier: MIT */
/* The daemons' one way to write a log line: stderr, with the line's syslog priority.
 * Not part of the base library proper (base/ never logs): it is its own small library, mglog
 * (log_dep), linked only by the daemons (mynaguardd, mynaguard-uplink, mynaguard-collector) and
 * called only from their entry and event-loop code; library code returns -errno instead. */
#pragma once

#include <stdarg.h>
#include <syslog.h> /* LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG */

/* Write one line (fmt, then '\n') to stderr with one write(2), so threads never interleave.
 * When stderr is the systemd journal's stream ($JOURNAL_STREAM names its device and inode) the
 * line starts with the sd-daemon prefix "<N>" (sd-daemon(3)), N = priority (LOG_ERR = 3,
 * LOG_WARNING = 4, LOG_INFO = 6), so the journal files an error as an error; on a terminal or a
 * pipe the text alone. Lines longer than LOG_LINE_MAX are cut there; a '\n' inside the text is
 * written as a space, so one call is always one journal entry. Never fails, keeps errno. */
#define LOG_LINE_MAX 2048
void log_line(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vline(int priority, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Whether stderr is the journal stream named by $JOURNAL_STREAM ("DEV:INODE"). */
int log_stderr_is_journal(void);
