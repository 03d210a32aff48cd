/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the enrollment database (SQLite, apart from the event store): one-time
 * enrollment tokens, kept only as SHA-256 hashes, and the last known client certificate of each
 * terminal (serial, not-after). Used by the collector and by mynaguard-collector-token. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "event.h"

/* A token: "mge1-" + 16 hex digits of id (public, the lookup key) + "-" + 32 hex digits of
 * secret (128 random bits; only its SHA-256 is stored). */
#define ENROLL_TOKEN_LEN 54
#define ENROLL_ID_LEN	 16

struct enroll_db;

enum enroll_refusal {
	ENROLL_OK,
	ENROLL_MALFORMED,     /* not the token format */
	ENROLL_UNKNOWN,	      /* no such id, or the secret does not match */
	ENROLL_USED,	      /* consumed before */
	ENROLL_EXPIRED,	      /* past its expiry */
	ENROLL_WRONG_TERMINAL /* made for another terminal id */
};
const char *enroll_refusal_name(enum enroll_refusal r);

/* create: make the file (0600) and the tables when missing. */
int enroll_db_open(const char *path, bool create, struct enroll_db **ret);
void enroll_db_close(struct enroll_db *db);

/* A new token valid until expires (unix seconds), for any terminal or only for terminal.
 * ret_token gets ENROLL_TOKEN_LEN characters and a NUL. */
int enroll_token_create(struct enroll_db *db, int64_t now, int64_t expires, const char *terminal,
			char ret_token[static ENROLL_TOKEN_LEN + 1]);
/* Checks and consumes a token in one transaction (the secret compared in constant time).
 * Returns 0 and ENROLL_OK in *ret_why, or -EACCES with the reason (for the log only: the peer
 * gets one answer for all), or another -errno for a database fault. ret_id (may be NULL) gets
 * the token's id (ENROLL_ID_LEN + 1) whenever the token was well-formed. */
int enroll_token_consume(struct enroll_db *db, const char *token, const char *terminal, int64_t now,
			 enum enroll_refusal *ret_why, char *ret_id);
/* Gives a consumed token back (the certificate could not be made after all). */
int enroll_token_restore(struct enroll_db *db, const char *id);
/* Deletes a token by id (or all unused expired ones when id is NULL). Returns how many. */
int enroll_token_delete(struct enroll_db *db, const char *id, int64_t now);
/* One line per token: id, state, expiry, terminal. */
int enroll_token_list(struct enroll_db *db, int64_t now, FILE *out);

/* The client certificate a terminal was last seen with (or issued), kept when not_after is not
 * older than the one known. */
int enroll_cert_note(struct enroll_db *db, const char *terminal, const char *serial,
		     int64_t not_after, int64_t now);
/* Calls fn for every terminal's certificate. */
int enroll_cert_each(struct enroll_db *db,
		     void (*fn)(const char *terminal, const char *serial, int64_t not_after,
				void *arg),
		     void *arg);
