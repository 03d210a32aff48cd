/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the walk along one terminal's hash chain that store_verify() makes, the
 * same for both stores (store.c, store-pg.c): they read the rows, this judges them
 * (docs/evidence.md). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct verify_walk {
	const struct store_verify_opts *o;
	struct store_verify *v;
	const char *name;
	struct store_head *want; /* the signed head of this terminal, if any */
	uint8_t link[STORE_CHAIN_LEN];
	uint64_t last_seq;
	int64_t last_received;
	char last_kind[STORE_KIND_MAX + 1];
	bool any, anchored;
};

/* anchor: the terminal's disposal anchor (NULL: none; a wrong length counts as zeros) */
void verify_walk_start(struct verify_walk *w, const struct store_verify_opts *o,
		       struct store_verify *v, const char *name, const uint8_t *anchor,
		       size_t anchor_len);

/* One stored row, in storage order. body: a tombstone's body digest (NULL: a kept event, whose
 * body is computed from clause and data); stored: the row's link. 1: the chain broke here
 * (v->broken, v->reason set: stop), 0: go on, < 0: error. */
int verify_walk_row(struct verify_walk *w, EVP_MD_CTX *md, uint64_t seq, int64_t ts,
		    int64_t received, const char *kind, const char *clause, size_t clause_len,
		    const char *data, size_t data_len, const uint8_t *body, size_t body_len,
		    const uint8_t *stored, size_t stored_len);

/* After the last row: head is the terminal's recorded chain head (NULL: none). */
void verify_walk_end(struct verify_walk *w, const uint8_t *head, size_t head_len);

/* After every terminal (not one): a signed terminal that is not in the store breaks. */
void verify_walk_missing(const struct store_verify_opts *o, struct store_verify *v);
