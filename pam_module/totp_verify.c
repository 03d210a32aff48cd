/* SPDX-License-Identifier: MIT */
/* TOTP verification with one-time use and rate limit; the locked transaction. Never logs. */
#include "totp_verify.h"

#include <errno.h>
#include <fcntl.h>
#include <liboath/oath.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "claim.h"
#include "macro.h"
#include "secmem.h"
#include "totp_store.h"

const char *totp_result_name(enum totp_result r)
{
	switch (r) {
	case TOTP_SUCCESS:
		return "success";
	case TOTP_WRONG:
		return "failure";
	case TOTP_REPLAY:
		return "replay";
	case TOTP_LOCKED:
		return "locked";
	case TOTP_PENDING:
		return "pending";
	}
	return "?";
}

static bool code_wellformed(const char *code, unsigned digits)
{
	size_t n = strlen(code);

	if (n != digits)
		return false;
	for (size_t i = 0; i < n; i++)
		if (code[i] < '0' || code[i] > '9')
			return false;
	return true;
}

int totp_verify(struct totp_record *r, const char *code, int64_t now, const struct totp_params *p,
		enum totp_result *ret, int *ret_changed)
{
	char candidate[16];
	uint64_t cur, lo, hi, best = 0;
	bool any = false, changed = false, wellformed;
	int rc;

	if (now < 0 || r->period == 0)
		return -EINVAL;

	/* An expired lock is lifted before anything else; the count starts again. */
	if (r->locked_until != 0 && now >= r->locked_until) {
		r->locked_until = 0;
		r->failures = 0;
		changed = true;
	}
	if (r->locked_until != 0) {
		*ret = TOTP_LOCKED;
		*ret_changed = changed;
		return 0;
	}

	cur = (uint64_t)now / r->period;
	lo = cur > p->window ? cur - p->window : 0;
	hi = cur + p->window;
	wellformed = code_wellformed(code, r->digits);

	/* Compute every candidate in the window and compare each in constant time, without an early
	 * exit: the time taken does not depend on which step (if any) matched. We generate codes
	 * per counter (oath_hotp_generate) instead of oath_totp_validate4 because we need the
	 * newest matching step above last_step, and a constant-time comparison. */
	for (uint64_t s = lo; s <= hi; s++) {
		bool eq;
		rc = oath_hotp_generate((const char *)r->secret, r->secret_len, s, r->digits, false,
					SIZE_MAX, candidate);
		if (rc != OATH_OK) {
			secmem_wipe(candidate, sizeof(candidate));
			return -EIO;
		}
		eq = wellformed && secmem_equal(candidate, code, r->digits);
		if (eq) {
			any = true;
			if (s > r->last_step && s > best)
				best = s;
		}
	}
	secmem_wipe(candidate, sizeof(candidate));

	if (best > 0) {
		r->last_step = best;
		if (r->version != 1)
			r->last_used = now;
		r->failures = 0;
		r->locked_until = 0;
		*ret = TOTP_SUCCESS;
		*ret_changed = true;
		return 0;
	}
	if (any) {
		/* A code that was valid once proves no guessing; it neither counts nor resets. */
		*ret = TOTP_REPLAY;
		*ret_changed = changed;
		return 0;
	}
	if (r->failures < TOTP_FAILURES_MAX)
		r->failures++;
	if (r->failures >= p->max_failures) {
		uint64_t lock = p->lockout_sec > (uint64_t)INT64_MAX - (uint64_t)now
				    ? (uint64_t)INT64_MAX
				    : (uint64_t)now + p->lockout_sec;
		r->locked_until = lock == 0 ? 1 : (int64_t)lock;
	}
	*ret = TOTP_WRONG;
	*ret_changed = true;
	return 0;
}

int64_t totp_clock_wall(void)
{
	return (int64_t)time(NULL);
}

int totp_check(int dirfd, const char *user, uid_t owner, const char *code, int64_t (*clock)(void),
	       const struct totp_params *p, enum totp_result *ret, struct totp_check_info *info)
{
	_cleanup_close_ int lockfd = -1, fd = -1;
	struct totp_record rec;
	enum totp_result result;
	char norm[TOTP_RECOVERY_DIGITS + 1];
	int64_t now;
	int changed = 0, r;

	r = totp_store_lock(dirfd, user, owner, &lockfd);
	if (r < 0)
		return r;
	/* A helpdesk recovery code (16 digits): decided by STORE/.USER.recovery alone, so it works
	 * without a record (a revoked clerk) and leaves the record's state alone. */
	if (totp_recovery_normalize(code, norm)) {
		enum totp_recovery_result rr;
		uint64_t rid = 0;
		now = clock();
		r = totp_recovery_try(dirfd, user, owner, norm, now, &rr, &rid);
		secmem_wipe(norm, sizeof(norm));
		if (r < 0)
			return r;
		if (rr != TOTP_RECOVERY_NONE) {
			if (info) {
				info->now = now;
				info->locked_until = 0;
				info->recovery = true;
			}
			/* once across terminals too, where the collector answers (it is used up
			 * here already either way) */
			if (rr == TOTP_RECOVERY_OK && p->claim_socket) {
				enum claim_result cr = claim_ask(
				    p->claim_socket, user, CLAIM_RECOVERY_STEP + rid,
				    p->claim_timeout_ms ? p->claim_timeout_ms : CLAIM_TIMEOUT_MS);
				if (info) {
					info->step = CLAIM_RECOVERY_STEP + rid;
					info->claim = (int)cr;
				}
				if (cr == CLAIM_USED)
					rr = TOTP_RECOVERY_USED;
			}
			*ret = rr == TOTP_RECOVERY_OK	  ? TOTP_SUCCESS
			       : rr == TOTP_RECOVERY_USED ? TOTP_REPLAY
							  : TOTP_WRONG;
			return 0;
		}
	}
	r = totp_store_open_record(dirfd, user, owner, O_RDWR, &fd);
	if (r < 0)
		return r;
	r = totp_store_read_fd(fd, &rec);
	if (r < 0)
		return r;
	now = clock();
	if (rec.verified == 0) {
		/* Nobody has shown yet that the secret reached its owner: not a factor. */
		result = TOTP_PENDING;
	} else {
		r = totp_verify(&rec, code, now, p, &result, &changed);
		/* A good code is claimed at the collector before it counts (the step is used up
		 * here either way): another terminal's use, or a revoked enrollment, refuses it;
		 * no answer in time and this terminal decides alone (docs/fleet.md). */
		if (r >= 0 && result == TOTP_SUCCESS && p->claim_socket) {
			enum claim_result cr =
			    claim_ask(p->claim_socket, user, rec.last_step,
				      p->claim_timeout_ms ? p->claim_timeout_ms : CLAIM_TIMEOUT_MS);
			if (info) {
				info->step = rec.last_step;
				info->claim = (int)cr;
			}
			if (cr == CLAIM_USED)
				result = TOTP_REPLAY;
			else if (cr == CLAIM_REVOKED)
				result = TOTP_WRONG;
		}
		if (r >= 0 && changed)
			r = totp_store_update(fd, &rec);
	}
	if (info) {
		info->now = now;
		info->locked_until = rec.locked_until;
	}
	totp_record_wipe(&rec);
	if (r < 0)
		return r;
	*ret = result;
	return 0;
}
