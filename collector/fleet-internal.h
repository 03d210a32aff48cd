/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: what fleet-store.c and fleet-api.c share. */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

#include "bundle.h"
#include "fleet.h"
#include "policy.h"

struct fleet {
	struct collector *c;
	pthread_mutex_t lock; /* around db */
	sqlite3 *db;
	struct bundle_signer *grant;
	uint8_t grant_pub[BUNDLE_PUBKEY_LEN];
	uint8_t root_pub[BUNDLE_PUBKEY_LEN];
};

int fleet_db_exec(struct fleet *f, const char *sql);
sqlite3_stmt *fleet_db_prepare(struct fleet *f, const char *sql);
void fleet_db_finalize(sqlite3_stmt **st);
/* NULL for SQL NULL */
const char *fleet_col_text(sqlite3_stmt *st, int i);

/* Queues an event of the collector itself (source id mynaguard-collector); takes data. */
void fleet_emit(struct fleet *f, enum event_kind kind, json_t *data);
/* SHA-256 of a || b (b may be NULL) as lowercase hex. */
void fleet_sha256_hex(const void *a, size_t alen, const void *b, size_t blen, char out[65]);

/* The group's signed base (and the parsed base). -ENOENT: no such group; -ENODATA: no base. */
int fleet_load_base(struct fleet *f, const char *group, uint8_t **ret_blob, size_t *ret_len,
		    struct policy **ret_base);

/* The terminal's bundle: the stored one when nothing it is built from changed, else a new one
 * with the next version. -ENOENT with a reason when it has none (no group, no base, not
 * covered). Caller holds the lock. */
int fleet_bundle_for(struct fleet *f, const char *terminal, int64_t now, uint8_t **ret,
		     size_t *ret_len, uint64_t *ret_version, char *reason, size_t reasonsz);
