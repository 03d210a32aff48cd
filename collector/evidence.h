/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: retention by kind and the signed chain heads (docs/evidence.md), on top
 * of any store backend (store.h). Used by the writer, the CLI and the dashboard API. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "store.h"

#define EVIDENCE_HEADS_KEEP  60 /* signed head records kept in the store */
#define EVIDENCE_ERROR_MAX   512
#define EVIDENCE_SIGN_PERIOD 86400 /* seconds between the collector's own signings */

/* The signed text: "mynaguard-chain-heads-v1\n", "at=MS\n", then
 * "TERMINAL SEQ RECEIVED_MS KIND LINKHEX\n" per terminal, sorted by terminal (strcmp, each once). Parsed only after its signature checked
 * out; strict anyway (-EBADMSG). *ret is malloc'd. */
int evidence_heads_text(const struct store_head *heads, size_t n, int64_t at_ms, char **ret,
			size_t *ret_len);
int evidence_heads_parse(const char *body, struct store_head **ret, size_t *ret_n, int64_t *ret_at);

/* The configured periods as cutoffs at now_ms, and the legal hold. */
void evidence_policy(const struct collector_config *cfg, int64_t now_ms,
		     struct store_retention_policy *ret);
/* The shortest configured period (seconds), 0 when every kind is kept. */
uint64_t evidence_shortest_period(const struct collector_config *cfg);

/* Loads the configured heads keys (and checks that the two belong together): --check and start
 * refuse a key that would make every signing or verify fail. */
int evidence_check_keys(const struct collector_config *cfg, char err[static EVIDENCE_ERROR_MAX]);

struct evidence_verify {
	struct store_verify v;
	bool keyed;	   /* a heads key is configured: the signed heads were checked */
	int64_t signed_at; /* of the record checked; 0 when none */
	size_t signed_heads;
};

/* store_verify() with the retention policy and, when [evidence] names a key, against the
 * store's last signed heads (its signature checked first; a missing or forged record breaks
 * the store). collect: ret->v.heads is filled. Free with evidence_verify_done(). */
int evidence_verify(struct store *s, const struct collector_config *cfg, int64_t now_ms,
		    const char *terminal, bool collect, struct evidence_verify *ret,
		    char err[static EVIDENCE_ERROR_MAX]);
void evidence_verify_done(struct evidence_verify *v);

/* Verifies the whole store from ro (a read snapshot), then signs the heads it found with
 * [evidence] heads_key and stores the record through rw. -EBADMSG when the store does not
 * verify (nothing is signed: a broken store is not blessed). *ret_first: there was no earlier
 * record to check against. ret_digest: hex SHA-256 of the signed text, for the log. */
int evidence_sign(struct store *ro, struct store *rw, const struct collector_config *cfg,
		  int64_t now_ms, size_t *ret_heads, bool *ret_first, char ret_digest[65],
		  char err[static EVIDENCE_ERROR_MAX]);

/* The collector's own signing: at start and every EVIDENCE_SIGN_PERIOD, on its own connections
 * (the writer is not held up). No-op without [evidence] heads_key. */
struct evidence_signer;
int evidence_signer_start(const struct collector_config *cfg, struct evidence_signer **ret);
void evidence_signer_stop(struct evidence_signer *s);
