/* SPDX-License-Identifier: MIT */
/* One login attempt from policy to event (see totp_attempt.h). Never logs. */
#include "totp_attempt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "claim.h"
#include "macro.h"
#include "policy.h"
#include "totp_store.h"

void totp_attempt_init(struct totp_attempt *a)
{
	a->dirfd = -1;
	a->owner = geteuid();
	a->clock = totp_clock_wall;
	a->outcome = TOTP_OUT_ERROR;
	a->reason = "internal_error";
	a->message[0] = '\0';
	a->err = 0;
	a->locked_until = 0;
	a->now = 0;
	a->contact[0] = '\0';
}

void totp_contact_clean(const char *in, char out[static TOTP_CONTACT_MAX + 1])
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)(in ? in : ""); *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			continue;
		if (n >= TOTP_CONTACT_MAX)
			break;
		out[n++] = (char)*p;
	}
	/* Cut an incomplete last character. */
	if (n > 0) {
		size_t i = n;
		while (i > 0 && ((unsigned char)out[i - 1] & 0xc0) == 0x80)
			i--;
		if (i == 0)
			n = 0;
		else {
			unsigned char lead = (unsigned char)out[i - 1];
			size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
			if (i - 1 + need > n)
				n = i - 1;
		}
	}
	out[n] = '\0';
}

unsigned totp_lock_minutes(int64_t locked_until, int64_t now)
{
	int64_t left;

	if (locked_until <= 0)
		return 0;
	left = locked_until > now ? locked_until - now : 0;
	if (left > INT64_C(60) * 1000000)
		return 1000000;
	return left <= 60 ? 1 : (unsigned)((left + 59) / 60);
}

_printf_(5, 6) static void decide(struct totp_attempt *a, enum totp_outcome o, const char *reason,
				  int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	a->outcome = o;
	a->reason = reason;
	a->err = err;
	/* User names that cannot name a record are never echoed into the log. */
	n = snprintf(a->message, sizeof(a->message),
		     "user %s: ", totp_user_valid(a->user) ? a->user : "(invalid name)");
	if (n < 0 || (size_t)n >= sizeof(a->message))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(a->message + n, sizeof(a->message) - (size_t)n, fmt, ap);
	va_end(ap);
}

const char *totp_outcome_kind(enum totp_outcome o)
{
	switch (o) {
	case TOTP_OUT_SUCCESS:
	case TOTP_OUT_NULLOK:
		return "auth.success";
	case TOTP_OUT_REPLAY:
		return "auth.replay";
	case TOTP_OUT_LOCKED:
		return "auth.locked";
	case TOTP_OUT_WRONG:
	case TOTP_OUT_NO_RECORD:
	case TOTP_OUT_CONFIG:
	case TOTP_OUT_ERROR:
	case TOTP_OUT_NOMEM:
		return "auth.failure";
	}
	return "auth.failure";
}

static void store_error(struct totp_attempt *a, int r, const char *what)
{
	if (r == -ENOMEM)
		decide(a, TOTP_OUT_NOMEM, "no_memory", r, "%s: out of memory, failing closed",
		       what);
	else if (r == -EPROTONOSUPPORT)
		decide(a, TOTP_OUT_ERROR, "record_error", r,
		       "%s was written by a newer mynaguard (unknown record version); upgrade "
		       "mynaguard on this terminal; failing closed",
		       what);
	else if (r == -EBADMSG || r == -EFBIG || r == -EPERM || r == -EACCES || r == -ELOOP ||
		 r == -EBADFD)
		decide(a, TOTP_OUT_ERROR, "record_error", r, "%s %s, failing closed", what,
		       totp_store_strerror(r));
	else
		decide(a, TOTP_OUT_ERROR, "store_error", r,
		       "cannot read or update the %s: %s, failing closed", what,
		       totp_store_strerror(r));
}

static void totp_attempt_set_contact(struct totp_attempt *a, const struct policy *p)
{
	totp_contact_clean(p->terminal_contact, a->contact);
}

static void not_enrolled(struct totp_attempt *a, bool pending)
{
	if (a->nullok)
		decide(a, TOTP_OUT_NULLOK, "nullok", 0, "%s, let through by nullok",
		       pending ? "enrollment pending (not verified with mynaguardctl totp verify)"
			       : "not enrolled");
	else if (pending)
		decide(a, TOTP_OUT_NO_RECORD, "pending", -ENOENT,
		       "enrollment pending (not verified with mynaguardctl totp verify), "
		       "failing closed");
	else
		decide(a, TOTP_OUT_NO_RECORD, "no_record", -ENOENT,
		       "not enrolled (no TOTP record), failing closed");
}

static int load_policy(struct totp_attempt *a)
{
	_cleanup_policy_ struct policy *p = NULL;
	struct policy_errors *errs;
	int r;

	errs = calloc(1, sizeof(*errs));
	if (!errs) {
		decide(a, TOTP_OUT_NOMEM, "no_memory", -ENOMEM,
		       "policy: out of memory, failing closed");
		return 0;
	}
	r = policy_load(a->policy, &p, errs);
	if (r == -ENOENT && !a->policy_explicit) {
		/* The default path is missing: use the built-in defaults, which are the shipped
		 * strict policy (window 1, 5 failures, 15 min lockout, no nullok). Documented in
		 * pam_mynaguard(8); the agent reports the missing policy as non-compliant. */
		policy_errors_clear(errs);
		free(errs);
		r = policy_new_default(&p);
		if (r < 0) {
			decide(a, TOTP_OUT_NOMEM, "no_memory", r,
			       "policy: out of memory, failing closed");
			return 0;
		}
	} else if (r < 0) {
		char line[256] = "";
		if (errs->n > 0)
			policy_error_format(errs, 0, line, sizeof(line));
		policy_errors_clear(errs);
		free(errs);
		if (r == -ENOMEM)
			decide(a, TOTP_OUT_NOMEM, "no_memory", r,
			       "policy: out of memory, failing closed");
		else
			decide(a, TOTP_OUT_CONFIG, "policy_error", r,
			       "policy %s unusable (%s), failing closed", a->policy,
			       line[0] ? line : strerror(-r));
		return 0;
	} else {
		policy_errors_clear(errs);
		free(errs);
	}
	a->params.window = p->mfa_window;
	a->params.max_failures = p->mfa_max_failures ? p->mfa_max_failures : 1;
	a->params.lockout_sec = p->mfa_lockout_sec;
	a->params.claim_socket = a->claim_socket;
	if (p->mfa_nullok)
		a->nullok = true;
	totp_attempt_set_contact(a, p);
	return 1;
}

int totp_attempt_prepare(struct totp_attempt *a)
{
	struct totp_record rec;
	bool pending;
	int r;

	if (!totp_user_valid(a->user)) {
		decide(a, TOTP_OUT_ERROR, "bad_user", -EINVAL,
		       "name cannot have a TOTP record, failing closed");
		return 0;
	}
	if (load_policy(a) == 0)
		return 0;
	r = totp_store_open(a->store, a->owner, &a->dirfd);
	if (r < 0) {
		a->dirfd = -1;
		if (r == -EACCES)
			decide(
			    a, TOTP_OUT_ERROR, "store_error", r,
			    "store %s is writable by group or other (or not accessible), failing closed",
			    a->store);
		else
			decide(a, r == -ENOMEM ? TOTP_OUT_NOMEM : TOTP_OUT_ERROR,
			       r == -ENOMEM ? "no_memory" : "store_error", r,
			       "store %s %s, failing closed", a->store, totp_store_strerror(r));
		return 0;
	}
	r = totp_store_exists(a->dirfd, a->user);
	if (r < 0) {
		store_error(a, r, "record");
		return 0;
	}
	if (r == 0 && totp_recovery_exists(a->dirfd, a->user))
		return 1; /* no record, but a helpdesk recovery code: ask */
	if (r == 0) {
		not_enrolled(a, false);
		return 0;
	}
	/* Read it (without the lock: a torn slot falls back to the other) to know, before the
	 * prompt, whether it counts: a record of a newer version fails closed even with nullok,
	 * a pending one counts as no record. totp_check looks again under the lock. */
	r = totp_store_read(a->dirfd, a->user, a->owner, &rec);
	if (r == -ENOENT) {
		not_enrolled(a, false);
		return 0;
	}
	if (r < 0) {
		store_error(a, r, "record");
		return 0;
	}
	pending = rec.verified == 0;
	totp_record_wipe(&rec);
	if (pending && !totp_recovery_exists(a->dirfd, a->user)) {
		not_enrolled(a, true);
		return 0;
	}
	return 1;
}

void totp_attempt_check(struct totp_attempt *a, const char *code)
{
	struct totp_check_info info = {0};
	enum totp_result res;
	int r;

	r = totp_check(a->dirfd, a->user, a->owner, code, a->clock, &a->params, &res, &info);
	if (r == -ENOENT) {
		/* Removed between prepare and check. */
		not_enrolled(a, false);
		return;
	}
	if (r < 0) {
		store_error(a, r, "record");
		return;
	}
	if (info.step) { /* a claimed code: the event says which step and what the claim said */
		a->info.step = info.step;
		a->info.claim = claim_result_name((enum claim_result)info.claim);
	}
	switch (res) {
	case TOTP_SUCCESS:
		if (info.recovery)
			decide(a, TOTP_OUT_SUCCESS, "recovery", 0,
			       "helpdesk recovery code accepted (it is used up)");
		else
			decide(a, TOTP_OUT_SUCCESS, "ok", 0, "code accepted");
		break;
	case TOTP_WRONG:
		if (info.step && info.claim == CLAIM_REVOKED) {
			decide(a, TOTP_OUT_WRONG, "revoked", 0,
			       "the central enrollment is revoked (the collector said so)");
			break;
		}
		decide(a, TOTP_OUT_WRONG, info.recovery ? "wrong_recovery_code" : "wrong_code", 0,
		       info.recovery ? "wrong or expired recovery code" : "wrong code");
		break;
	case TOTP_REPLAY:
		if (info.step && info.claim == CLAIM_USED) {
			decide(a, TOTP_OUT_REPLAY, "used_elsewhere", 0,
			       "code already used on another terminal (the collector said so)");
			break;
		}
		if (info.recovery)
			decide(a, TOTP_OUT_REPLAY, "recovery_used", 0,
			       "recovery code already used");
		else
			decide(a, TOTP_OUT_REPLAY, "replay", 0,
			       "code of an already used time step (replay or clock moved back)");
		break;
	case TOTP_LOCKED:
		decide(a, TOTP_OUT_LOCKED, "locked", 0,
		       "locked after too many wrong codes; code not checked");
		break;
	case TOTP_PENDING:
		/* Re-enrolled between prepare and check. */
		not_enrolled(a, true);
		break;
	}
	a->now = info.now;
	a->locked_until = info.locked_until;
}

void totp_attempt_fail(struct totp_attempt *a, enum totp_outcome o, const char *reason, int err,
		       const char *what)
{
	decide(a, o, reason, err, "%s, failing closed", what);
}

int totp_attempt_report(struct totp_attempt *a)
{
	char buf[NOTIFY_MAX];
	size_t len;
	int r;

	r = notify_format(buf, sizeof(buf), totp_outcome_kind(a->outcome), notify_now_ms(),
			  &a->info, a->reason, &len);
	if (r < 0)
		return r;
	return notify_deliver(a->socket, a->dirfd, a->owner, buf, len);
}

void totp_attempt_done(struct totp_attempt *a)
{
	closep(&a->dirfd);
	a->dirfd = -1;
}
