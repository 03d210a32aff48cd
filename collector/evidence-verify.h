/* SPDX-License-Identifier: MIT */
/* The audit evidence bundle's format and its offline check (docs/evidence.md "Evidence bundle"):
 * pure, no database, no collector; the public key is all it needs. Fuzzed as fuzz-evidence. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVIDENCE_FORMAT	    "mynaguard-evidence"
#define EVIDENCE_VERSION    1
#define EVIDENCE_CONTEXT    "mynaguard-evidence-v1" /* signed: this, its NUL, the manifest */
#define EVIDENCE_KEY_ID_LEN 16			    /* hex digits of SHA-256(public key) */
#define EVIDENCE_ERR_MAX    256
#define EVIDENCE_FILE_MAX   (1024LL * 1024 * 1024) /* what the verifier reads */

enum {
	EVIDENCE_HEADER,
	EVIDENCE_STATUS,
	EVIDENCE_FAILURE,
	EVIDENCE_REVIEW,
	EVIDENCE_POLICY,
	EVIDENCE_CHAIN_HEAD,
	EVIDENCE_SECTIONS,
};
/* The "type" of each record line, in section order. */
extern const char *const evidence_sections[EVIDENCE_SECTIONS];

/* The first EVIDENCE_KEY_ID_LEN hex digits of SHA-256 of the raw 32-byte public key. */
void evidence_key_id(const uint8_t pub[32], char out[EVIDENCE_KEY_ID_LEN + 1]);

struct evidence_summary {
	unsigned long long lines;
	unsigned long long count[EVIDENCE_SECTIONS];
	char from[11], to[11];
};

/* Checks a whole bundle against the public key: the signature line, the signature over the
 * manifest, then every line (a JSON object of a known type, the header first) against the
 * manifest's counts and SHA-256 sums. 0 when everything holds; -EBADMSG with err naming the
 * first thing that does not (the line, the section, the signature); -ENOMEM. */
int evidence_bundle_verify(const uint8_t *buf, size_t len, const uint8_t pub[32],
			   struct evidence_summary *ret, char *err, size_t errsz);

/* The same checks without the signature (the manifest is taken as it is): for the fuzz
 * target and tests only; it proves nothing about who wrote the file. */
int evidence_check_unsigned(const uint8_t *buf, size_t len, struct evidence_summary *ret, char *err,
			    size_t errsz);
