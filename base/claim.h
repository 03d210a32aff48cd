/* SPDX-License-Identifier: MIT */
/* One-time across terminals (docs/fleet.md, "One-time across terminals"): before the PAM module
 * accepts a code it claims (user, time step) at the collector through the uplink's local
 * socket (SOCK_SEQPACKET, SPOOL/inbox/claim.sock by default), with a bounded wait. libc only; never
 * logs.
 *
 *   request: u64 step (big-endian) || user (1..64 of [A-Za-z0-9._@-], not starting . or -)
 *   reply:   one byte: 'o' ok, 'u' used on another terminal, 'r' revoked, 'n' not enrolled
 *            centrally (the terminal decides alone), 'x' the collector cannot be asked now */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLAIM_USER_MAX	  64
#define CLAIM_REQUEST_MAX (8 + CLAIM_USER_MAX)
#define CLAIM_TIMEOUT_MS  1500
/* A recovery code's use is claimed as the step CLAIM_RECOVERY_STEP + its rid. */
#define CLAIM_RECOVERY_STEP (UINT64_C(1) << 62)
#define CLAIM_SOCKET_NAME   "inbox/claim.sock" /* in the spool, where the uplink may write */

enum claim_result {
	CLAIM_OK,
	CLAIM_USED,
	CLAIM_REVOKED,
	CLAIM_UNKNOWN, /* not enrolled centrally */
	CLAIM_OFFLINE, /* no answer in time, no uplink, or the collector cannot be reached */
	_CLAIM_MAX,
};

/* "ok", "used", "revoked", "unknown", "offline" */
const char *claim_result_name(enum claim_result r);

/* Encode a request into buf (CLAIM_REQUEST_MAX); returns its length or -EINVAL. */
int claim_request_encode(const char *user, uint64_t step, uint8_t *buf);
/* Strict decode (pure, fuzzed): user is NUL-terminated into user_out (CLAIM_USER_MAX + 1).
 * -EBADMSG for anything else, step 0 included. */
int claim_request_decode(const uint8_t *buf, size_t len, char *user_out, uint64_t *ret_step);
/* A reply's byte (pure, fuzzed): -EBADMSG unless exactly one known byte. */
int claim_reply_decode(const uint8_t *buf, size_t len, enum claim_result *ret);
uint8_t claim_reply_byte(enum claim_result r);

/* Ask the uplink at socket_path, waiting at most timeout_ms in all (connect, send, answer).
 * Anything but an answer in time is CLAIM_OFFLINE. */
enum claim_result claim_ask(const char *socket_path, const char *user, uint64_t step,
			    unsigned timeout_ms);
