/* SPDX-License-Identifier: MIT */
/* mynaguard-signer protocol: the fixed request (a CSR and a terminal id) that the collector sends
 * over the signer's Unix socket, and the answer. Both ends decode strictly; no I/O here (fuzzed). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define SIGNER_MAGIC	   0x3153474dU /* "MGS1" little-endian */
#define SIGNER_CSR_MAX	   4096	       /* DER */
#define SIGNER_CERT_MAX	   8192	       /* DER */
#define SIGNER_SERIAL_MAX  48	       /* upper-case hex, NUL-terminated */
#define SIGNER_REQ_HEADER  88
#define SIGNER_ANS_HEADER  80
#define SIGNER_REQUEST_MAX (SIGNER_REQ_HEADER + SIGNER_CSR_MAX)
#define SIGNER_ANSWER_MAX  (SIGNER_ANS_HEADER + SIGNER_CERT_MAX)

enum signer_op {
	SIGNER_OP_ENROLL = 1, /* first certificate of a terminal (a token was consumed) */
	SIGNER_OP_RENEW = 2,  /* a terminal with a valid certificate asks for a new one */
};

struct signer_request {
	enum signer_op op;
	char terminal[EVENT_TERMINAL_MAX + 1];
	size_t csr_len;
	uint8_t csr[SIGNER_CSR_MAX];
};

struct signer_answer {
	int status; /* 0 or -errno from the signer */
	char serial[SIGNER_SERIAL_MAX];
	int64_t not_after; /* unix seconds */
	size_t cert_len;
	uint8_t cert[SIGNER_CERT_MAX];
};

/* Wire: little-endian u32 magic, u32 op, u32 csr_len, u32 0, char terminal[72] (NUL-padded), then
 * csr_len bytes of DER. Encode fails with -EINVAL on a bad id or op, -EMSGSIZE on a large CSR. */
int signer_request_encode(const struct signer_request *r, uint8_t *buf, size_t size,
			  size_t *ret_len);
/* -EBADMSG on a size, magic, op, padding or length mismatch; -EINVAL on a terminal id that is
 * not [A-Za-z0-9._-]{1,64} or is the collector's own source id. */
int signer_request_decode(const uint8_t *buf, size_t len, struct signer_request *ret);

/* Wire: u32 magic, i32 status, u32 cert_len, u32 0, i64 not_after, char serial[56], DER. */
int signer_answer_encode(const struct signer_answer *a, uint8_t *buf, size_t size, size_t *ret_len);
int signer_answer_decode(const uint8_t *buf, size_t len, struct signer_answer *ret);

/* Client side (collector): one request on a fresh connection to the signer's socket, timeout in
 * seconds. -ECONNREFUSED/-ENOENT when the signer is not running, -ETIMEDOUT, or the signer's own
 * error (answer.status). */
int signer_call(const char *socket_path, const struct signer_request *req, int timeout_s,
		struct signer_answer *ret);
