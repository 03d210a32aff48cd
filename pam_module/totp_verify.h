/* SPDX-License-Identifier: MIT */
/* TOTP verification (RFC 6238 via liboath) with one-time use and rate limit, and the locked
 * read-verify-write transaction. Used by the module and the helper. Never logs. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "totp_record.h"
#include "totp_recovery.h"

enum totp_result {
	TOTP_SUCCESS, /* a code of a time step newer than the last accepted one */
	TOTP_WRONG,   /* no step in the window matches (counts as a failure) */
	TOTP_REPLAY,  /* the code matches a step that is not newer than the last accepted one */
	TOTP_LOCKED,  /* locked by the rate limit; the code was not looked at */
	TOTP_PENDING, /* totp_check only: the enrollment is not verified yet (`mynaguardctl totp
		       * verify`), so the record does not count; the code was not looked at */
};

/* What totp_check saw, for the messages (filled in whenever the record was read). */
struct totp_check_info {
	int64_t now;	      /* the time that counted */
	int64_t locked_until; /* after the attempt: 0 = not locked */
	bool recovery;	      /* the code was a recovery code (totp_recovery.h) */
	uint64_t step;	      /* the step of an accepted code that was claimed (0 = none) */
	int claim;	      /* enum claim_result of that claim */
};

struct totp_params {
	unsigned window;       /* steps accepted on either side of now */
	unsigned max_failures; /* consecutive failures that lock, >= 1 */
	uint64_t lockout_sec;  /* how long */
	/* One-time across terminals (base/claim.h): the uplink's claim socket, NULL = do not
	 * claim; and the wait (0 = CLAIM_TIMEOUT_MS). */
	const char *claim_socket;
	unsigned claim_timeout_ms;
};

/* "success", "failure", "replay", "locked", "pending" */
const char *totp_result_name(enum totp_result r);

/* Decide one attempt against r at time now and update r in memory (last_step, failures,
 * locked_until, and last_used = now on success unless r is a version 1 record). *ret_changed tells whether r must be written back. code is the user's input
 * (ASCII digits; anything else is a wrong code). Returns -errno only for liboath failures. */
int totp_verify(struct totp_record *r, const char *code, int64_t now, const struct totp_params *p,
		enum totp_result *ret, int *ret_changed);

/* The wall clock in seconds: time(NULL). */
int64_t totp_clock_wall(void);

/* The whole attempt under the user's lock: lock STORE/.USER.lock, read the clock, read the
 * record, verify, write it back when it changed, unlock. owner: who must own the files (the
 * euid). clock is called once, after the lock is held: the time that counts is when the code is
 * checked, never when the prompt opened (a prompt can stay open for hours) nor before waiting
 * for a concurrent attempt. Pass totp_clock_wall; tests pass their own.
 * Store errors are returned as in totp_store_read/totp_store_write; the result is written only
 * on success. A wrong code is a result, not an error. A pending record (verified == 0) gives
 * TOTP_PENDING without looking at the code or writing anything. info may be NULL. */
int totp_check(int dirfd, const char *user, uid_t owner, const char *code, int64_t (*clock)(void),
	       const struct totp_params *p, enum totp_result *ret, struct totp_check_info *info);
