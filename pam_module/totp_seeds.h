/* SPDX-License-Identifier: MIT */
/* The hardware-token seed file that `mynaguardctl totp import` reads: a strict parser. The file
 * holds secrets and comes from a vendor: untrusted bytes. Pure: no I/O, never logs, and no
 * error message ever quotes a secret.
 *
 * Format (ASCII text, LF or CRLF line ends, at most TOTP_SEEDS_MAX_BYTES; a UTF-8 byte order
 * mark at the start, as spreadsheets write, is skipped):
 *
 *   # a comment line; blank lines are skipped
 *   user,serial,secret[,digits[,period]]
 *
 * user: a record name (totp_user_valid); serial: totp_serial_valid; secret: hex (only 0-9 a-f
 * A-F, an even number of them) or else base32 (RFC 4648, either case, '=' padding allowed);
 * "hex:" or "base32:" in front forces the reading. 16..64 bytes. digits: 6..8 (default 6);
 * period: 10..300 seconds (default 30). No spaces around fields, no quoting. A user or a
 * serial may appear only once in a file. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "totp_record.h"

#define TOTP_SEEDS_MAX_BYTES (1024 * 1024)
#define TOTP_SEEDS_MAX_LINE  512
#define TOTP_SEEDS_MAX	     10000

struct totp_seed {
	char user[TOTP_USER_MAX + 1];
	char serial[TOTP_SERIAL_MAX + 1];
	uint8_t secret[TOTP_SECRET_MAX_BYTES];
	size_t secret_len;
	unsigned digits;
	unsigned period;
	unsigned line; /* 1-based line number in the file */
};

struct totp_seed_error {
	unsigned line;
	char what[128]; /* never the secret; a user name only when it is a valid one */
};

/* Parse the whole file. On success returns 0 with *ret (n entries, calloc'd) — free it with
 * totp_seeds_free. When any line is bad returns -EBADMSG, *ret = NULL, and the first
 * max_errs errors in errs (*ret_nerrs counts all of them). -EFBIG: larger than
 * TOTP_SEEDS_MAX_BYTES or more than TOTP_SEEDS_MAX entries; -ENODATA: no entry at all;
 * -ENOMEM. Everything it decoded is wiped on failure. */
int totp_seeds_parse(const char *text, size_t len, struct totp_seed **ret, size_t *ret_n,
		     struct totp_seed_error *errs, size_t max_errs, size_t *ret_nerrs);

/* Wipe and free. */
void totp_seeds_free(struct totp_seed *seeds, size_t n);
