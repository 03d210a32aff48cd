/* SPDX-License-Identifier: MIT */
/* The per-user TOTP record: one small text file, strict parser and formatter. Shared by
 * pam_mynaguard.so, mynaguard-totp-check and mynaguardctl. Pure: no I/O, never logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* File format, version 1 (exactly these lines, in this order, each ending in '\n', one space
 * between key and value, nothing else; numbers are plain decimal without leading zeros):
 *
 *   mynaguard-totp 1
 *   secret JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP    (RFC 4648 base32, upper case, no padding)
 *   digits 6                                   (6, 7 or 8)
 *   period 30                                  (seconds per time step, 10..300)
 *   last_step 58803251                         (last accepted time step counter; 0 = none)
 *   failures 0                                 (consecutive wrong codes, 0..1000)
 *   locked_until 0                             (Unix seconds; 0 = not locked)
 *   enrolled 1764097538                        (Unix seconds)
 *
 * A record is named after the user (STORE/USER); its lock file is STORE/.USER.lock. */
#define TOTP_RECORD_MAGIC	  "mynaguard-totp"
#define TOTP_RECORD_VERSION	  1
#define TOTP_RECORD_MAX_SIZE	  1024
#define TOTP_SECRET_MIN_BYTES	  16 /* 128 bits, RFC 4226 section 4 R6 */
#define TOTP_SECRET_MAX_BYTES	  64
#define TOTP_SECRET_DEFAULT_BYTES 20 /* 160 bits: 32 base32 characters */
#define TOTP_SECRET_B32_MAX	  ((TOTP_SECRET_MAX_BYTES * 8 + 4) / 5)
#define TOTP_USER_MAX		  64
#define TOTP_FAILURES_MAX	  1000
#define TOTP_PERIOD_MIN		  10
#define TOTP_PERIOD_MAX		  300
#define TOTP_LAST_STEP_MAX	  (UINT64_C(1) << 40)

struct totp_record {
	uint8_t secret[TOTP_SECRET_MAX_BYTES];
	size_t secret_len;
	unsigned digits;
	unsigned period;
	uint64_t last_step;
	unsigned failures;
	int64_t locked_until;
	int64_t enrolled;
};

/* Parse len bytes (need not be NUL-terminated). Returns 0 and fills *ret, or -EBADMSG for any
 * deviation from the format, -EFBIG when longer than TOTP_RECORD_MAX_SIZE. *ret is wiped on
 * failure. */
int totp_record_parse(const char *text, size_t len, struct totp_record *ret);

/* Format r into buf (size bytes, NUL-terminated). -EINVAL when r is out of range, -ENOBUFS
 * when buf is too small. The caller wipes buf after use (it holds the secret). */
int totp_record_format(const struct totp_record *r, char *buf, size_t size, size_t *ret_len);

void totp_record_wipe(struct totp_record *r);

/* A user name that may name a record: 1..TOTP_USER_MAX of [A-Za-z0-9._@-], not starting with
 * '.' or '-'. */
bool totp_user_valid(const char *user);

/* Strict base32 (RFC 4648 alphabet, upper case, no padding, unused trailing bits zero).
 * Returns the number of bytes written, -EINVAL for a bad string, -ENOBUFS when out is too small. */
int totp_base32_decode(const char *s, size_t len, uint8_t *out, size_t out_size);

/* Upper case, no padding, NUL-terminated. -ENOBUFS when out is too small. */
int totp_base32_encode(const uint8_t *in, size_t len, char *out, size_t out_size);
