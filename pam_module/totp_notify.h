/* SPDX-License-Identifier: MIT */
/* One event per login attempt: a JSON datagram to the agent socket, never blocking; when it
 * cannot be sent, one line appended to STORE/.pending-events. Used by the module and the
 * helper; JSON is written by hand (the module does not link jansson). Never logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The datagram (event/event.h, EVENT_DATAGRAM_MAX bytes at most):
 *   {"v":1,"kind":"auth.failure","ts_ms":N,"data":{"user":S,"service":S,"rhost":S,"tty":S,"reason":S}}
 * Strings are JSON-escaped, invalid UTF-8 becomes U+FFFD, and each field's escaped text is cut
 * at NOTIFY_FIELD_MAX bytes (so every event fits in NOTIFY_MAX whatever the strings are).
 * The fallback file holds the same text, one datagram per line ('\n'), at most
 * TOTP_STORE_PENDING_MAX bytes; what does not fit is counted in STORE/.pending-events.dropped
 * (decimal, '\n'). Writers and the collecting agent hold flock(LOCK_EX) on .pending-events. */
#define NOTIFY_MAX	 4096
#define NOTIFY_FIELD_MAX 256

/* An event written by the setuid helper mynaguard-totp-check: its caller (any local user) chose
 * service, rhost and tty. So that such an event can never pass for one of sshd or login, the
 * service is the helper's own name and the caller's words go under "caller_" keys, beside the
 * caller's real uid:
 *   "data":{"user":S,"service":"mynaguard-totp-check","caller_uid":N,"caller_service":S,
 *           "caller_rhost":S,"caller_tty":S,"reason":S}
 * The user is checked by the helper (a caller may check only their own name). */
#define NOTIFY_HELPER_SERVICE "mynaguard-totp-check"

struct notify_info {
	const char *user;
	const char *service;
	const char *rhost;
	const char *tty;
	bool via_helper;     /* written by the helper: use the shape above */
	unsigned caller_uid; /* the helper's real uid (getuid()), when via_helper */
	/* A claimed code (docs/fleet.md): ,"step":N,"claim":WORD after "reason"; step 0 = none. */
	uint64_t step;
	const char *claim;
};

/* kind: "auth.success", "auth.failure", "auth.replay" or "auth.locked". reason: a fixed token. */
int notify_format(char *buf, size_t size, const char *kind, int64_t ts_ms,
		  const struct notify_info *info, const char *reason, size_t *ret_len);

/* Send buf to the datagram socket at socket_path without blocking. 0 on success, -errno. */
int notify_send(const char *socket_path, const char *buf, size_t len);

/* Append buf + '\n' to STORE/.pending-events (created 0600 when missing, must be owned by owner
 * and carry no group/other bits). Returns 0 when appended, 1 when the file was full and the drop
 * counter was raised instead, -errno on failure. */
int notify_append_pending(int store_dirfd, unsigned owner, const char *buf, size_t len);

/* Send, or append to the fallback when sending fails and store_dirfd >= 0. Returns 0 sent,
 * 1 appended, 2 dropped (file full, counted), -errno when the event was lost. */
int notify_deliver(const char *socket_path, int store_dirfd, unsigned owner, const char *buf,
		   size_t len);

/* Milliseconds since the epoch (CLOCK_REALTIME). */
int64_t notify_now_ms(void);
