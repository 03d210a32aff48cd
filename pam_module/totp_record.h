/* SPDX-License-Identifier: MIT */
/* The per-user TOTP record: one small text file, strict parser and formatter. Shared by
 * pam_mynaguard.so, mynaguard-totp-check and mynaguardctl. Pure: no I/O, never logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* File format, version 2 (exactly these lines, in this order, each ending in '\n', one space
 * between fields, nothing else; numbers in the first part are plain decimal without leading
 * zeros). The lifecycle lines come before the secret so that a reader that needs only them (the
 * compliance check) stops before it:
 *
 *   mynaguard-totp 2
 *   type totp                                  (totp: an app; hardware: a hardware token)
 *   serial -                                   (totp: "-"; hardware: the token's serial,
 *                                               1..64 of [A-Za-z0-9._:-], starting alnum)
 *   enrolled 1764097538                        (Unix seconds)
 *   verified 0                                 (Unix seconds of `totp verify`; 0 = pending)
 *   secret JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP    (RFC 4648 base32, upper case, no padding)
 *   digits 6                                   (6, 7 or 8)
 *   period 30                                  (seconds per time step, 10..300)
 *   state0 SEQ LAST_STEP FAILURES LOCKED_UNTIL LAST_USED CRC
 *   state1 SEQ LAST_STEP FAILURES LOCKED_UNTIL LAST_USED CRC
 *
 * Version 1 (still read, and updated in place in its own layout; never written new):
 *
 *   mynaguard-totp 1
 *   secret ... / digits ... / period ... / enrolled ...
 *   state0 SEQ LAST_STEP FAILURES LOCKED_UNTIL CRC
 *   state1 SEQ LAST_STEP FAILURES LOCKED_UNTIL CRC
 *
 * A version 1 record is type totp, no serial, verified at its enrollment time (it predates the
 * verification step, and its users have been logging in with it), last use unknown (0).
 * A record whose first line names a version above TOTP_RECORD_VERSION is refused with
 * -EPROTONOSUPPORT (written by a newer mynaguard), whatever follows.
 *
 * The two state lines are slots of fixed width, rewritten in place (pwrite + fdatasync, no new
 * blocks, no rename) under the user's lock: SEQ (20 digits, zero-padded) counts writes, the slot
 * with the higher SEQ and a good CRC is current, the other one is overwritten next. LAST_STEP (20
 * digits) is the last accepted time-step counter (0 = none), FAILURES (4 digits) the consecutive
 * wrong codes, LOCKED_UNTIL (20 digits) Unix seconds (0 = not locked), LAST_USED (20 digits,
 * version 2 only) Unix seconds of the last accepted code (0 = never). CRC is the CRC-32 (IEEE,
 * as zlib's crc32) of the line up to the space before it, as 8 lower-case hex digits. A slot torn
 * by a crash fails its CRC and the other slot is used; both bad, or equal SEQs, is corrupt.
 *
 * A record is named after the user (STORE/USER); its lock file is STORE/.USER.lock. */
#define TOTP_RECORD_MAGIC	  "mynaguard-totp"
#define TOTP_RECORD_VERSION	  2
#define TOTP_RECORD_MAX_SIZE	  1024
#define TOTP_SECRET_MIN_BYTES	  16 /* 128 bits, RFC 4226 section 4 R6 */
#define TOTP_SECRET_MAX_BYTES	  64
#define TOTP_SECRET_DEFAULT_BYTES 20 /* 160 bits: 32 base32 characters */
#define TOTP_SECRET_B32_MAX	  ((TOTP_SECRET_MAX_BYTES * 8 + 4) / 5)
#define TOTP_USER_MAX		  64
#define TOTP_SERIAL_MAX		  64
#define TOTP_FAILURES_MAX	  1000
#define TOTP_PERIOD_MIN		  10
#define TOTP_PERIOD_MAX		  300
#define TOTP_LAST_STEP_MAX	  (UINT64_C(1) << 40)
#define TOTP_SLOT_LEN_V1	  84  /* one state line including the newline, version 1 */
#define TOTP_SLOT_LEN_V2	  105 /* ... version 2 (with LAST_USED) */
#define TOTP_SLOT_LEN_MAX	  TOTP_SLOT_LEN_V2
#define TOTP_SEQ_MAX		  (UINT64_C(1) << 62)

enum totp_kind {
	TOTP_KIND_APP,	    /* "totp" */
	TOTP_KIND_HARDWARE, /* "hardware" */
};

struct totp_record {
	unsigned version; /* as read (1 or 2); a new record is always written as version 2 */
	enum totp_kind kind;
	char serial[TOTP_SERIAL_MAX + 1]; /* "" for none */
	int64_t verified;		  /* 0: pending (not yet proved with `totp verify`) */
	uint8_t secret[TOTP_SECRET_MAX_BYTES];
	size_t secret_len;
	unsigned digits;
	unsigned period;
	int64_t enrolled;
	/* The current state slot: */
	uint64_t last_step;
	unsigned failures;
	int64_t locked_until;
	int64_t last_used; /* 0: never (and always 0 in a version 1 record) */
	/* Where it lives (filled in by the parser; used to write the next state in place): */
	uint64_t seq;	       /* SEQ of the current slot */
	unsigned current;      /* 0 or 1 */
	size_t slot_offset[2]; /* byte offsets of the state0 and state1 lines */
};

/* Parse len bytes (need not be NUL-terminated). Returns 0 and fills *ret, or -EBADMSG for any
 * deviation from the format, -EFBIG when longer than TOTP_RECORD_MAX_SIZE, -EPROTONOSUPPORT
 * when the first line names a newer version than this build knows. *ret is wiped on failure. */
int totp_record_parse(const char *text, size_t len, struct totp_record *ret);

/* Format a whole new record, always version 2, into buf (size bytes, NUL-terminated): the
 * state goes to state0 with SEQ max(r->seq, 1), state1 is an empty slot with SEQ 0. -EINVAL when r is out of range,
 * -ENOBUFS when buf is too small. The caller wipes buf after use (it holds the secret). */
int totp_record_format(const struct totp_record *r, char *buf, size_t size, size_t *ret_len);

/* The next state of r for an in-place update: the line for the slot that is not current, with
 * SEQ r->seq + 1, in r's own version's layout. Writes the line (plus a NUL), its length
 * (TOTP_SLOT_LEN_V1 or _V2) and the slot's offset. -EINVAL when r is out of range. */
int totp_record_next_slot(const struct totp_record *r, char line[static TOTP_SLOT_LEN_MAX + 1],
			  size_t *ret_len, size_t *ret_offset);

/* The version named by the first line of text ("mynaguard-totp N\n"), or -EBADMSG when the first
 * line is not of that shape. Looks at nothing else. */
int totp_record_version(const char *text, size_t len);

/* "totp", "hardware" */
const char *totp_kind_name(enum totp_kind k);

/* A hardware serial: 1..TOTP_SERIAL_MAX of [A-Za-z0-9._:-], starting with a letter or digit. */
bool totp_serial_valid(const char *s, size_t len);

/* After the next slot was written durably: make it current in r. */
void totp_record_slot_written(struct totp_record *r);

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32(0, ...)). */
uint32_t totp_crc32(const void *data, size_t len);

void totp_record_wipe(struct totp_record *r);

/* A user name that may name a record: 1..TOTP_USER_MAX of [A-Za-z0-9._@-], not starting with
 * '.' or '-'. */
bool totp_user_valid(const char *user);

/* Strict base32 (RFC 4648 alphabet, upper case, no padding, unused trailing bits zero).
 * Returns the number of bytes written, -EINVAL for a bad string, -ENOBUFS when out is too small. */
int totp_base32_decode(const char *s, size_t len, uint8_t *out, size_t out_size);

/* Upper case, no padding, NUL-terminated. -ENOBUFS when out is too small. */
int totp_base32_encode(const uint8_t *in, size_t len, char *out, size_t out_size);
