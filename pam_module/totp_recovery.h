/* SPDX-License-Identifier: MIT */
/* A helpdesk recovery code for one user (docs/fleet.md, "Recovery codes"): installed by the
 * agent's monitor from the fleet bundle as STORE/.USER.recovery (root 0600), accepted once by
 * the module, offline too, until it expires. libc + base only; never logs.
 *
 * The file is exactly TOTP_RECOVERY_SIZE bytes:
 *   "MGRECOV1" || u64 rid || i64 until || 16 ASCII digits (the code) || i64 used
 * (big-endian; used = Unix seconds of the use, 0 = not used). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define TOTP_RECOVERY_MAGIC  "MGRECOV1"
#define TOTP_RECOVERY_SIZE   48
#define TOTP_RECOVERY_DIGITS 16
#define TOTP_RECOVERY_SUFFIX ".recovery"

struct totp_recovery {
	uint64_t rid;  /* the collector's number of this code (rises) */
	int64_t until; /* Unix seconds, exclusive */
	char code[TOTP_RECOVERY_DIGITS + 1];
	int64_t used; /* 0 = not used yet */
};

/* Strict (pure, fuzzed): -EBADMSG unless len is TOTP_RECOVERY_SIZE, the magic, 16 digits. */
int totp_recovery_decode(const uint8_t *buf, size_t len, struct totp_recovery *ret);
void totp_recovery_encode(const struct totp_recovery *r, uint8_t out[TOTP_RECOVERY_SIZE]);

/* What a user typed as a recovery code: 16 digits, '-' and ' ' between them ignored. */
bool totp_recovery_normalize(const char *in, char out[TOTP_RECOVERY_DIGITS + 1]);

/* Whether STORE/.USER.recovery exists. */
bool totp_recovery_exists(int dirfd, const char *user);

/* Read STORE/.USER.recovery (checked like a record); -ENOENT when there is none. */
int totp_recovery_read(int dirfd, const char *user, uid_t owner, struct totp_recovery *ret);

/* Replace it atomically (mode 0600). Call with the user's lock held. */
int totp_recovery_write(int dirfd, const char *user, const struct totp_recovery *r);

enum totp_recovery_result {
	TOTP_RECOVERY_NONE,    /* no recovery code for this user */
	TOTP_RECOVERY_OK,      /* accepted; now marked used */
	TOTP_RECOVERY_WRONG,   /* another code */
	TOTP_RECOVERY_USED,    /* accepted once already */
	TOTP_RECOVERY_EXPIRED, /* until has passed */
};

/* Check code (normalized) at now, under the user's lock; marks it used (durably) on success. */
int totp_recovery_try(int dirfd, const char *user, uid_t owner, const char *code, int64_t now,
		      enum totp_recovery_result *ret, uint64_t *ret_rid);
