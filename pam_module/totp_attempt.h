/* SPDX-License-Identifier: MIT */
/* One login attempt from policy to event, shared by the module (as root) and the helper:
 * prepare (policy, store, record present?), check (locked read-verify-write), report (event).
 * Never logs: the caller logs attempt.message once. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "totp_notify.h"
#include "totp_record.h"
#include "totp_verify.h"

/* Bytes of the policy's contact text kept for the lockout message (cut at a UTF-8 boundary). */
#define TOTP_CONTACT_MAX 256 /* the policy allows 256 */

enum totp_outcome {
	TOTP_OUT_SUCCESS,
	TOTP_OUT_NULLOK, /* no record (or a pending one), nullok: PAM_IGNORE */
	TOTP_OUT_WRONG,
	TOTP_OUT_REPLAY,
	TOTP_OUT_LOCKED,
	TOTP_OUT_NO_RECORD, /* also a pending (unverified) enrollment: reason "pending" */
	TOTP_OUT_CONFIG,    /* options or policy: PAM_SERVICE_ERR */
	TOTP_OUT_ERROR,	    /* store, record, disk: PAM_AUTH_ERR */
	TOTP_OUT_NOMEM,	    /* PAM_BUF_ERR */
};

struct totp_attempt {
	/* Set by the caller. */
	const char *user;
	const char *store;
	const char *policy;
	bool policy_explicit; /* policy= given: a missing file is an error */
	const char *socket;
	const char *claim_socket; /* base/claim.h; NULL = do not claim */
	bool nullok;
	struct notify_info info;
	/* Seconds since the epoch, read once under the record's lock after the code arrived
	 * (totp_check). totp_attempt_init sets totp_clock_wall; tests may set their own. */
	int64_t (*clock)(void);

	/* Filled in. */
	int dirfd;
	uid_t owner;
	struct totp_params params;
	enum totp_outcome outcome;
	const char *reason; /* event token: "ok", "wrong_code", "store_error", ... */
	char message[320];  /* one log line's text (no code, no secret) */
	int err;	    /* -errno behind an error outcome, 0 otherwise */
	/* For the lockout message: when the lock ends (0 = unknown) and the time that counted. */
	int64_t locked_until;
	int64_t now;
	/* The policy's [terminal] contact (whom to ask), cleaned for a terminal; "" = none. */
	char contact[TOTP_CONTACT_MAX + 1];
};

/* Initialise the derived fields (dirfd = -1). */
void totp_attempt_init(struct totp_attempt *a);

/* Load the policy and open the store. Returns 1 when the caller should go on and ask for the
 * code, 0 when the attempt is already decided (outcome, reason, message set). */
int totp_attempt_prepare(struct totp_attempt *a);

/* Decide with the code. Always sets outcome, reason, message. */
void totp_attempt_check(struct totp_attempt *a, const char *code);

/* Decide without a code (e.g. the conversation failed). */
void totp_attempt_fail(struct totp_attempt *a, enum totp_outcome o, const char *reason, int err,
		       const char *what);

/* Send the one event of this attempt (datagram, else fallback file). Returns notify_deliver's
 * result. */
int totp_attempt_report(struct totp_attempt *a);

/* Copy a contact text for a terminal: control bytes dropped, at most TOTP_CONTACT_MAX bytes
 * cut at a UTF-8 character boundary. NULL gives "". */
void totp_contact_clean(const char *in, char out[static TOTP_CONTACT_MAX + 1]);

/* Whole minutes left of a lock, rounded up, at least 1; 0 when unknown (locked_until 0). */
unsigned totp_lock_minutes(int64_t locked_until, int64_t now);

/* "auth.success", "auth.failure", "auth.replay", "auth.locked". */
const char *totp_outcome_kind(enum totp_outcome o);

void totp_attempt_done(struct totp_attempt *a);
