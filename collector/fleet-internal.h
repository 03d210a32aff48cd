/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: what fleet-store.c and fleet-api.c share. */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "bundle.h"
#include "fleet.h"
#include "policy.h"
#include "sqldb.h"

struct fleet {
	struct collector *c;
	pthread_mutex_t lock; /* around db */
	struct sqldb *db;
	struct bundle_signer *grant;
	uint8_t grant_pub[BUNDLE_PUBKEY_LEN];
	uint8_t root_pub[BUNDLE_PUBKEY_LEN];
	bool have_totp_key;
	uint8_t totp_key[32]; /* [fleet] totp_key: the at-rest key of the TOTP secrets */
};

int fleet_db_exec(struct fleet *f, const char *sql);
struct sqldb_stmt *fleet_db_prepare(struct fleet *f, const char *sql);
/* with another text for PostgreSQL where the dialects differ (sqldb_prepare()) */
struct sqldb_stmt *fleet_db_prepare_pg(struct fleet *f, const char *sql, const char *pg_sql);
void fleet_db_finalize(struct sqldb_stmt **st);
/* NULL for SQL NULL */
const char *fleet_col_text(struct sqldb_stmt *st, int i);

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

/* ---- central TOTP (fleet-totp.c) ---- */

/* A new random secret (160 bits). */
int fleet_totp_new_secret(struct bundle_totp_secret *s, unsigned digits, unsigned period,
			  int64_t now);
/* The at-rest encryption of s for fleet_totp.secret (AES-256-GCM under [fleet] totp_key). */
int fleet_totp_encrypt(struct fleet *f, const char *user, uint64_t gen,
		       const struct bundle_totp_secret *s, uint8_t **ret, size_t *ret_len);
/* The terminal's X25519 public key, as its uplink reported it on GET /v1/policy. */
int fleet_terminal_key_note(struct fleet *f, const char *terminal,
			    const uint8_t pub[BUNDLE_X25519_LEN], int64_t now);
/* What the terminal's TOTP entries are made of, for the bundle's content hash ("" when it gets
 * none: no totp_key, no terminal key or no enrollment for group). *ret malloc'd. */
int fleet_totp_describe(struct fleet *f, const char *terminal, const char *group, int64_t now,
			char **ret);
/* Seal every enrollment in force for group to the terminal's key into ex->totp. */
int fleet_totp_seal_for(struct fleet *f, const char *terminal, const char *group, int64_t now,
			struct bundle_exceptions *ex);
enum fleet_claim {
	FLEET_CLAIM_OK,	     /* first use of (user, step), or again by the same terminal */
	FLEET_CLAIM_USED,    /* another terminal used it first */
	FLEET_CLAIM_REVOKED, /* the user's central enrollment is revoked */
	FLEET_CLAIM_UNKNOWN, /* not enrolled centrally: the terminal decides alone */
};
/* One-time across terminals: claim (user, step) for terminal. */
int fleet_totp_claim(struct fleet *f, const char *user, uint64_t step, const char *terminal,
		     int64_t now, enum fleet_claim *ret);
/* Writer thread: an auth.success decided offline ("claim":"offline", "step") is claimed late;
 * a step another terminal used too is flagged (event fleet.totp, action double_use). */
void fleet_totp_note_success(struct fleet *f, const struct event *e);
/* The verification of a central enrollment (`mynaguardctl fleet totp verify`): the code is
 * checked against the enrollment's secret like a login (window of FLEET_TOTP_VERIFY_WINDOW
 * steps either side) and its step is claimed for FLEET_TOTP_VERIFY_CLAIMANT, so no terminal
 * accepts it afterwards. Until verified, an enrollment goes into no bundle. */
#define FLEET_TOTP_VERIFY_WINDOW       1
#define FLEET_TOTP_VERIFY_MAX_FAILURES 5
#define FLEET_TOTP_VERIFY_CLAIMANT     "(verify)"
enum fleet_verify {
	FLEET_VERIFY_OK,      /* right: verified now */
	FLEET_VERIFY_ALREADY, /* verified before; the code was not looked at */
	FLEET_VERIFY_WRONG,   /* no step in the window matches (counted) */
	FLEET_VERIFY_USED,    /* right, but its step was already used (a terminal or a verify) */
	FLEET_VERIFY_LOCKED,  /* FLEET_TOTP_VERIFY_MAX_FAILURES wrong codes: enroll again */
	FLEET_VERIFY_NONE,    /* no enrollment in force (never enrolled or revoked) */
};
/* *ret_failures: the wrong codes so far; *ret_verified: when verified (OK, ALREADY). */
int fleet_totp_verify(struct fleet *f, const char *user, const char *code, int64_t now,
		      enum fleet_verify *ret, unsigned *ret_failures, int64_t *ret_verified);
/* A new recovery code for user (16 digits, until now + seconds), stored encrypted; the code
 * goes to code (17 bytes) for the one answer that shows it. -ENOENT: never enrolled. */
int fleet_totp_recovery_new(struct fleet *f, const char *user, int64_t now, int64_t seconds,
			    const char *by, uint64_t *ret_rid, char code[17]);
